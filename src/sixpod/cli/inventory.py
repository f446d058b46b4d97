"""``sixpod check|allocate|render|status``: the inventory verbs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from sixpod import addr
from sixpod.cli.help import examples
from sixpod.inventory.allocate import AllocationError, allocate
from sixpod.inventory.errors import Diagnostic, InventoryError
from sixpod.inventory.files import replace_tree, write_atomic
from sixpod.inventory.load import Loaded, load_inventory
from sixpod.inventory.lock import Lock, format_lock, lock_path_for, parse_lock
from sixpod.inventory.model import Announce
from sixpod.inventory.render import RENDERED_FILES, RenderError, render
from sixpod.routing.render import Paths

DEFAULT_PATHS = Paths()
POD_ARG = click.argument("pod", type=click.Path(dir_okay=False, path_type=Path))


def _fail(lines: list[str] | str) -> NoReturn:
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(line, err=True)
    sys.exit(1)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"{path}: cannot read: {e}")


def load_or_exit(path: Path) -> Loaded:
    try:
        loaded = load_inventory(_read(path), str(path))
    except InventoryError as e:
        _fail([str(d) for d in e.diagnostics])
    for w in loaded.warnings:
        click.echo(str(w), err=True)
    return loaded


def _old_lock(path: Path) -> tuple[Lock | None, Any]:
    if not path.exists():
        return None, None
    try:
        return parse_lock(_read(path), str(path))
    except InventoryError as e:
        _fail([str(d) for d in e.diagnostics])


def _allocate(loaded: Loaded, lock_path: Path) -> tuple[Lock | None, Lock]:
    old, lock_src = _old_lock(lock_path)
    try:
        return old, allocate(loaded.inventory, old)
    except AllocationError as e:
        diags: list[Diagnostic] = []
        for p in e.problems:
            src = lock_src if p.in_lock and lock_src is not None else loaded.source
            diags.append(src.diagnostic(p.path, p.message))
        _fail([str(d) for d in diags])


@examples(
    "sixpod check pod.yaml",
    "sixpod check examples/small.yaml && sixpod allocate examples/small.yaml",
)
@click.command()
@POD_ARG
def check(pod: Path) -> None:
    """Validate and lint the inventory POD; nothing is written.

    Every problem is printed on stderr as FILE:LINE:COL: message (warnings say so and do not
    fail); exit 1 if there is an error. Also says if POD's .lock is out of date.
    """
    loaded = load_or_exit(pod)
    lock_path = Path(lock_path_for(str(pod)))
    if lock_path.exists():
        old, new = _allocate(loaded, lock_path)
        if old != new:
            click.echo(
                f"{lock_path}: out of date; `sixpod allocate {pod}` would change it", err=True
            )
    inv = loaded.inventory
    click.echo(f"{pod}: ok ({len(inv.racks)} racks, {len(inv.nodes)} nodes)")


def _changes(old: Lock | None, new: Lock) -> str:
    if old is None:
        return f"created ({len(new.nodes)} nodes, {len(new.racks)} racks)"
    parts = []
    for what, a, b in (
        ("nodes", set(old.nodes), set(new.nodes)),
        ("racks", set(old.racks), set(new.racks)),
        ("IPv4 VIPs", set(old.vips4), set(new.vips4)),
        ("IPv6 VIPs", set(old.vips6), set(new.vips6)),
    ):
        if b - a:
            parts.append(f"{len(b - a)} {what} added")
        if a - b:
            parts.append(f"{len(a - b)} {what} freed")
    return ", ".join(parts) if parts else "unchanged"


@examples("sixpod allocate pod.yaml   # writes pod.lock beside it")
@click.command("allocate")
@POD_ARG
def allocate_cmd(pod: Path) -> None:
    """Record /64s, ASNs, links and VIPs for POD in POD.lock.

    Allocates node /64s, rack ASNs, uplink addresses and VIPs. Re-running changes nothing;
    adding a node adds only its lines. The lock is replaced atomically, and not touched
    when nothing changes or POD is wrong.
    """
    loaded = load_or_exit(pod)
    lock_path = Path(lock_path_for(str(pod)))
    old, new = _allocate(loaded, lock_path)
    if old != new:
        write_atomic(lock_path, format_lock(new))
    click.echo(f"{lock_path}: {_changes(old, new)}")


def current_lock_or_exit(pod: Path, loaded: Loaded) -> Lock:
    lock_path = Path(lock_path_for(str(pod)))
    if not lock_path.exists():
        _fail(f"{lock_path}: no such file: run `sixpod allocate {pod}` first")
    old, new = _allocate(loaded, lock_path)
    if old != new:
        _fail(f"{lock_path}: out of date with {pod}: run `sixpod allocate {pod}` first")
    return new


def _render_help() -> str:
    width = max(len(path) for path, _ in RENDERED_FILES)
    files = "\n".join(f"  {path:<{width}}  {what}" for path, what in RENDERED_FILES)
    return (
        "Write every device's configs for POD into --out.\n\n"
        "Needs a current lock (`sixpod allocate` first). --out is replaced as a whole, and "
        "only once everything rendered and passed its checks. The files, NAME being the "
        "node or ToR:\n\n\b\n" + files
    )


@examples(
    "sixpod render pod.yaml --out out/",
    "sixpod render pod.yaml --out out/ --etc /etc/sixpod --sixpod-bin /usr/bin/sixpod",
)
@click.command("render", help=_render_help())
@POD_ARG
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write (replaced as a whole).",
)
@click.option(
    "--sixpod-bin",
    default=DEFAULT_PATHS.sixpod,
    show_default=True,
    help="Path of sixpod on the devices (ExaBGP runs the announcer with it).",
)
@click.option(
    "--etc",
    default=DEFAULT_PATHS.etc,
    show_default=True,
    help="Directory on the devices that will hold these files.",
)
@click.option(
    "--state",
    default=DEFAULT_PATHS.state,
    show_default=True,
    help="State directory on the nodes (drain and disable flags).",
)
def render_cmd(pod: Path, out: Path, sixpod_bin: str, etc: str, state: str) -> None:
    loaded = load_or_exit(pod)
    lock = current_lock_or_exit(pod, loaded)
    try:
        files = render(loaded.inventory, lock, Paths(sixpod=sixpod_bin, etc=etc, state=state))
    except RenderError as e:
        _fail(f"{pod}: {e}")
    replace_tree(out, files)
    devices = len(loaded.inventory.nodes) + len(loaded.inventory.racks)
    click.echo(f"{out}: {devices} devices, {len(files)} files")


def summary(loaded: Loaded, lock: Lock) -> dict[str, Any]:
    inv = loaded.inventory
    return {
        "pod": inv.pod.name,
        "aggregate": addr.format_prefix(inv.pod.aggregate),
        "node_asn": lock.node_asn,
        "racks": [
            {
                "name": r.name,
                "tor": r.tor.name if r.tor else None,
                "asn": lock.racks[r.name],
                "nodes": sum(1 for n in inv.nodes if n.rack == r.name),
            }
            for r in inv.racks
        ],
        "nodes": [
            {
                "name": n.name,
                "rack": n.rack,
                "role": n.role,
                "prefix": addr.format_prefix(lock.nodes[n.name].prefix),
                "uplink": addr.format_ip(lock.nodes[n.name].node),
                "vips": Announce.VIPS in inv.role_of(n).announce,
            }
            for n in inv.nodes
        ],
        "vips": {"ipv4": len(lock.vips4), "ipv6": len(lock.vips6)},
    }


@examples("sixpod status pod.yaml", "sixpod status pod.yaml --json | jq '.nodes[].prefix'")
@click.command()
@POD_ARG
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
def status(pod: Path, as_json: bool) -> None:
    """The pod at a glance: racks, nodes, prefixes, ASNs, VIPs.

    Read from POD and its lock; nothing is contacted.
    """
    loaded = load_or_exit(pod)
    s = summary(loaded, current_lock_or_exit(pod, loaded))
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    width = None if sys.stdout.isatty() else 160
    console = Console(emoji=False, highlight=False, markup=False, width=width)
    console.print(
        f"pod {s['pod']}  aggregate {s['aggregate']}  node ASN {s['node_asn']}  "
        f"VIPs {s['vips']['ipv4']} IPv4 + {s['vips']['ipv6']} IPv6"
    )
    racks = Table("rack", "ToR", "ASN", "nodes", title="racks")
    for r in s["racks"]:
        racks.add_row(r["name"], r["tor"], str(r["asn"]), str(r["nodes"]))
    console.print(racks)
    nodes = Table("node", "rack", "role", "prefix", "uplink", "VIPs", title="nodes")
    for n in s["nodes"]:
        nodes.add_row(
            n["name"], n["rack"], n["role"], n["prefix"], n["uplink"], "yes" if n["vips"] else "-"
        )
    console.print(nodes)
