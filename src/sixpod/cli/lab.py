"""``sixpod lab up|status|test|down``: a whole pod in network namespaces on this machine."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sixpod import addr
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.inventory import current_lock_or_exit, load_or_exit
from sixpod.cli.output import plural
from sixpod.inventory.files import replace_tree
from sixpod.inventory.lock import lock_path_for
from sixpod.inventory.render import render
from sixpod.lab import monitoring
from sixpod.lab.drills import DRILLS
from sixpod.lab.journey import run_journey
from sixpod.lab.netns import LabError, wait_for
from sixpod.lab.overview import overview, print_overview
from sixpod.lab.pod import LabPod
from sixpod.routing.render import Paths

WORKDIR = click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/tmp/sixpod-lab"),
    show_default=True,
    help="Where the lab keeps its files and state.",
)


def _failed(problem: str | LabError) -> CommandFailed:
    """The lab command failed: ``sixpod lab: PROBLEM``, with a lab error's exit code."""
    code = problem.exit_code if isinstance(problem, LabError) else None
    return CommandFailed(f"sixpod lab: {problem}", exit_code=code)


def _attach(workdir: Path) -> LabPod:
    try:
        return LabPod.attach(workdir)
    except LabError as e:
        raise _failed(e) from None


@examples("sixpod lab up examples/pod.yaml", "sixpod lab status", "sixpod lab down")
@click.group()
def lab() -> None:
    """A whole pod in network namespaces on this machine (root).

    FRR ToRs, ExaBGP nodes, edges, Redis, the controller and a client."""


@examples("sixpod lab up", "sixpod lab up examples/small.yaml --workdir /var/tmp/lab2")
@lab.command()
@click.argument("pod", type=click.Path(dir_okay=False, path_type=Path), default="examples/pod.yaml")
@WORKDIR
def up(pod: Path, workdir: Path) -> None:
    """Render POD and bring it up, until `sixpod lab down`."""
    if (workdir / LabPod.STATE).exists():
        raise _failed(f"a lab is already up in {workdir}: `sixpod lab down` first")
    if (workdir / LabPod.JOURNAL).exists():
        raise _failed(
            f"a lab whose `lab up` was killed half-way is in {workdir}: `sixpod lab down` "
            "removes what it created"
        )
    from sixpod.lab import preflight

    if cannot := preflight.problems():
        raise CommandFailed(*(f"sixpod lab: {p}" for p in cannot))
    loaded = load_or_exit(pod)
    lock = current_lock_or_exit(pod, loaded)
    for old in ("logs", "nodes", "state", "ctl-redis", "ctl-controller"):  # a previous lab's
        shutil.rmtree(workdir / old, ignore_errors=True)
    rendered = workdir.resolve() / "rendered"
    sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
    paths = Paths(sixpod=sixpod_bin, etc=str(rendered / "nodes"), state=str(workdir / "state"))
    replace_tree(rendered, render(loaded.inventory, lock, paths))
    labpod = LabPod(
        rendered=rendered,
        workdir=workdir.resolve(),
        check_interval=None,
        speaker_timeout=2.0,  # a whole pod's daemons on a few cores: see LabPod.speaker_timeout
        check_timeout=2.0,
        lock=Path(lock_path_for(str(pod))).resolve(),
    )
    t0 = time.monotonic()

    interrupted = interrupt_handler()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        devices = len(list(rendered.glob("*/*/device.json")))
        click.echo(f"starting {plural(devices, 'device')} in namespaces ...", err=True)
        labpod.up()
        for name in labpod.spines:
            labpod.wait_spine(name, timeout=120)
            click.echo(f"{name}: every ToR's session is up", err=True)
        for rack in labpod.tors:
            labpod.wait_ready(rack, timeout=120)
            click.echo(f"{rack}: every BGP and BFD session is up", err=True)
        for rack, tor in labpod.tors.items():
            edges = {n.address for n in labpod.nodes.values() if n.edge and n.doc.rack == rack}
            want = [f"{v}/32" for v in tor.doc.vips.ipv4]
            want += [f"{v}/128" for v in tor.doc.vips.ipv6]
            if edges and want:
                wait_for(
                    _all_spread(labpod, rack, want, edges),
                    timeout=120,
                    interval=0.5,
                    what=f"every VIP of {rack} spread over its {plural(len(edges), 'edge node')}",
                )
                spread = f"{plural(len(want), 'VIP')} over {plural(len(edges), 'edge node')}"
                click.echo(f"{rack}: {spread}", err=True)
        wait_for(labpod.publisher_active, timeout=60, interval=0.5, what="the controller")
        click.echo("ctl: the tenants controller is publishing to the pod's Redis", err=True)
        labpod.wait_edges(timeout=120)
        n_edges = sum(1 for n in labpod.nodes.values() if n.edge)
        click.echo(f"{plural(n_edges, 'edge node')}: nginx serving, tenant state loaded", err=True)
        if labpod.monitoring:
            up_targets = monitoring.wait_all_up(labpod, timeout=120)
            click.echo(f"ctl: Prometheus: {plural(len(up_targets), 'target')}, all up", err=True)
        labpod.save()
        if (workdir / "fabric.yaml").exists():  # sixpod.lab.fabric: lldpd on every device
            click.echo(f"fabric: sixpod fabric lldp {pod} --config {workdir}/fabric.yaml", err=True)
    except BaseException as e:  # also Ctrl-C, SIGTERM, SIGHUP: never leave a half-built pod
        problems = labpod.down()
        what = str(e) or type(e).__name__
        raise _failed(
            f"{what}; everything was removed" + (f" (except: {problems})" if problems else "")
        ) from None
    click.echo(f"pod up in {time.monotonic() - t0:.1f} s; `sixpod lab status`, `sixpod lab down`")
    _print_status(labpod)


def interrupt_handler() -> Callable[[int, FrameType | None], None]:
    """A signal handler that ends the command through its cleanup (as Ctrl-C does) in this
    process only. A child forked from it (pyroute2 opens a socket inside a namespace from one,
    and stops it with SIGTERM) exits at once: it must never remove the pod being built."""
    owner = os.getpid()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise KeyboardInterrupt(f"signal {signum}")

    return interrupted


def _all_spread(
    labpod: LabPod, rack: str, prefixes: list[str], edges: set[str]
) -> Callable[[], bool]:
    def check() -> bool:
        routes = labpod.all_routes(rack)
        return all(routes.get(p) == edges for p in prefixes)

    return check


def status_of(labpod: LabPod) -> dict[str, Any]:
    racks: dict[str, Any] = {}
    for rack, tor in labpod.tors.items():
        nodes = [n for n in labpod.nodes.values() if n.doc.rack == rack]
        established, bfd = labpod.established(rack), labpod.bfd_up(rack)
        vips: dict[str, Any] = {}
        routes = labpod.all_routes(rack)
        for fam, plen in (("ipv4", 32), ("ipv6", 128)):
            counts: dict[int, int] = {}
            for vip in getattr(tor.doc.vips, fam):
                n = len(routes.get(f"{vip}/{plen}", set()))
                counts[n] = counts.get(n, 0) + 1
            vips[fam] = {str(k): v for k, v in sorted(counts.items())}
        racks[rack] = {
            "tor": tor.name,
            "nodes": {
                n.name: {
                    "address": n.address,
                    "edge": n.edge,
                    "bgp": n.address in established,
                    "bfd": n.address in bfd,
                }
                for n in nodes
            },
            "vips_by_path_count": vips,
        }
    spines: dict[str, Any] = {}
    for name, spine in labpod.spines.items():
        established = labpod.spine_established(name)
        spine_routes = labpod.spine_all_routes(name)
        fanout: dict[str, Any] = {}
        for fam, plen in (("ipv4", 32), ("ipv6", 128)):
            per: dict[int, int] = {}
            for vip in getattr(spine.doc.vips, fam):
                k = len(spine_routes.get(f"{vip}/{plen}", set()))
                per[k] = per.get(k, 0) + 1
            fanout[fam] = {str(k): v for k, v in sorted(per.items())}
        spines[name] = {
            "tors": {
                d.tor: {
                    "address": addr.format_ip(d.address),
                    "bgp": addr.format_ip(d.address) in established,
                }
                for d in spine.doc.downlinks
            },
            "vips_by_tor_count": fanout,
        }
    return {"spines": spines, "racks": racks, "client": labpod.client_ns} | overview(labpod)


def _print_status(labpod: LabPod) -> None:
    s = status_of(labpod)
    console = Console(
        emoji=False, highlight=False, markup=False, width=None if sys.stdout.isatty() else 160
    )
    for name, sp in s["spines"].items():
        table = Table("ToR", "address", "BGP", title=f"spine {name}")
        for tor, t in sp["tors"].items():
            table.add_row(tor, t["address"], "up" if t["bgp"] else "DOWN")
        console.print(table)
        for fam, counts in sp["vips_by_tor_count"].items():
            spread = (
                ", ".join(
                    f"{plural(v, 'VIP')} over {plural(int(k), 'ToR')}" for k, v in counts.items()
                )
                or "none"
            )
            console.print(f"  {fam} VIPs on {name}: {spread}")
    for rack, r in s["racks"].items():
        table = Table("node", "address", "role", "BGP", "BFD", title=f"{rack} ({r['tor']})")
        for name, n in r["nodes"].items():
            table.add_row(
                name, n["address"], "edge" if n["edge"] else "internal",
                "up" if n["bgp"] else "DOWN", "up" if n["bfd"] else "DOWN",
            )  # fmt: skip
        console.print(table)
        for fam, counts in r["vips_by_path_count"].items():
            spread = (
                ", ".join(
                    f"{plural(v, 'VIP')} over {plural(int(k), 'node')}" for k, v in counts.items()
                )
                or "none"
            )
            console.print(f"  {fam} VIPs on {r['tor']}: {spread}")
    print_overview(console, s)


@examples("sixpod lab status", "sixpod lab status --json")
@lab.command()
@WORKDIR
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def status(workdir: Path, as_json: bool) -> None:
    """Sessions, BFD and the ECMP spread of every VIP, per ToR.

    Then Prometheus's targets and firing alerts; node and VIP states and apps (the
    controller); each edge's replica and nginx revisions."""
    labpod = _attach(workdir)
    try:
        if as_json:
            click.echo(json.dumps(status_of(labpod), indent=2))
        else:
            _print_status(labpod)
    except LabError as e:
        raise _failed(e) from None


@examples("sixpod lab test", "sixpod lab test --json")
@lab.command("test")
@WORKDIR
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object of figures.")
def journey(workdir: Path, as_json: bool) -> None:
    """A customer's journey through the whole pod.

    Reaches a VIP of each family, fails one edge node, sees it leave ECMP and return; then
    creates an app with two domains through the API, starts its containers and registers
    them, resolves its route name through Razor from the client and fetches each domain over
    an IPv4 and an IPv6 VIP, showing the spread over edge nodes and containers."""
    labpod = _attach(workdir)
    rack, tor = next(iter(labpod.tors.items()))
    edges = [n for n in labpod.nodes.values() if n.edge and n.doc.rack == rack]
    if not edges:
        raise _failed(f"{rack} has no edge nodes")
    vips = [
        str(getattr(tor.doc.vips, fam)[0]) for fam in ("ipv4", "ipv6") if getattr(tor.doc.vips, fam)
    ]
    if not vips:
        raise _failed(f"{tor.name} has no VIPs")
    echo: Callable[[str], None] = (lambda _: None) if as_json else click.echo
    figures: dict[str, Any] = {}
    try:
        for vip in vips:
            echo(f"client -> {vip}: answered by {labpod.whoami(vip)}")
        victim, vip = edges[0], vips[0]
        rest = {n.address for n in edges if n is not victim}
        t0 = time.monotonic()
        victim.healthy(False)
        labpod.wait_routes(rack, vip, rest, timeout=30)
        figures["out_of_ecmp_s"] = round(time.monotonic() - t0, 3)
        echo(f"{victim.name} unhealthy: out of the ECMP set in {figures['out_of_ecmp_s']:.2f} s")
        if rest:
            echo(f"client -> {vip}: answered by {labpod.whoami(vip)}")
        victim.healthy(True)
        t0 = time.monotonic()
        labpod.wait_routes(rack, vip, rest | {victim.address}, timeout=30)
        figures["back_in_ecmp_s"] = round(time.monotonic() - t0, 3)
        echo(f"{victim.name} healthy again: back in {figures['back_in_ecmp_s']:.2f} s")
        if labpod.lock is not None:
            j = run_journey(labpod, echo)
            figures["replicated_ms"] = round(j.replicated_ms, 1)
            for s in j.spreads:
                scheme = s.url.split("://")[0]
                family = "ipv6" if ":" in s.vip else "ipv4"
                figures[f"{scheme}_{family}"] = {
                    "ok": s.ok,
                    "failed": len(s.failed),
                    "edges": len(s.edges),
                    "containers": len(s.containers),
                }
    except LabError as e:
        raise _failed(e) from None
    finally:
        for node in edges:
            node.healthy(True)
    if as_json:
        click.echo(json.dumps(figures, indent=2))


@examples("sixpod lab down")
@lab.command()
@WORKDIR
def down(workdir: Path) -> None:
    """Stop every process and remove every namespace the lab created."""
    try:
        problems = LabPod.down_saved(workdir)
    except LabError as e:
        raise _failed(e) from None
    if problems:
        raise CommandFailed(*(f"sixpod lab: {p}" for p in problems))
    click.echo("lab removed")


@examples("sixpod lab drill kill-edge", "sixpod lab drill blackhole-vip --json")
@lab.command()
@click.argument("name", type=click.Choice(sorted(DRILLS)))
@WORKDIR
@click.option("--node", default="", help="The node a drill breaks (default: the drill picks).")
@click.option("--rack", default="", help="The rack whose ToR kill-tor breaks (default: the last).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def drill(name: str, workdir: Path, node: str, rack: str, as_json: bool) -> None:
    """Break one part of the lab; show what the pod did.

    Prints what happened with its figures; exits 1 when the pod did not behave (the
    problems are printed). Drills: kill-edge, drain-edge, blackhole-vip, redis-down,
    controller-restart, kill-tor, mtu."""
    labpod = _attach(workdir)
    if node and node not in labpod.nodes:
        raise _failed(f"no node {node} in the lab")
    given = {k: v for k, v in (("node", node), ("rack", rack)) if v}
    for option in given:
        if option not in inspect.signature(DRILLS[name]).parameters:
            raise _failed(f"drill {name} takes no --{option}")
    try:
        result = DRILLS[name](labpod, None if as_json else click.echo, **given)
    except LabError as e:
        raise _failed(f"drill {name}: {e}") from None
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        figures = ", ".join(f"{k}={v}" for k, v in result.figures.items())
        click.echo(f"figures: {figures}")
        click.echo(f"drill {name}: " + ("the pod behaved" if result.ok else "FAILED"))
    if not result.ok:
        raise CommandFailed(*(f"sixpod lab drill {name}: {p}" for p in result.problems))
