"""``sixpod fabric lldp|plan|deploy`` and ``sixpod ci``: the switches, from the inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sixpod.cli import output
from sixpod.cli.config import load_config_or_exit
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.inventory import POD_ARG, current_lock_or_exit, load_or_exit
from sixpod.cli.output import JSON_OPTION, plural
from sixpod.devices import TorDevice
from sixpod.fabric.config import FabricConfig
from sixpod.fabric.errors import FabricError
from sixpod.fabric.plan import Plan, Verdict
from sixpod.inventory.render import RenderError, device_documents, render

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="fabric.yaml: how to reach each ToR's lldpd and FRR, the deploy's limits "
    "(default: every ToR on this machine, the tools' own sockets).",
)
TOR_OPTION = click.option(
    "--tor", "only", multiple=True, help="Only this ToR (repeat for more); default: every ToR."
)


def _config(path: Path | None) -> FabricConfig:
    return FabricConfig() if path is None else load_config_or_exit(path, FabricConfig)


def tor_documents(pod: Path, only: tuple[str, ...] = ()) -> list[TorDevice]:
    """The ToRs' documents from POD and its (current) lock, in the inventory's order."""
    loaded = load_or_exit(pod)
    lock = current_lock_or_exit(pod, loaded)
    try:
        docs = device_documents(loaded.inventory, lock)
    except RenderError as e:
        raise CommandFailed.because(e, f"{pod}: {e}") from None
    return _only([d for d in docs.values() if isinstance(d, TorDevice)], only, pod)


def _only(tors: list[TorDevice], only: tuple[str, ...], pod: Path) -> list[TorDevice]:
    unknown = sorted(set(only) - {t.name for t in tors})
    if unknown:
        raise CommandFailed(f"{pod}: no ToR named {', '.join(unknown)}", exit_code=2)
    return [t for t in tors if not only or t.name in only]


def rendered_frr(pod: Path, only: tuple[str, ...] = ()) -> dict[str, str]:
    """Each ToR's rendered ``frr.conf`` (rendered in memory, checked as ``render`` does)."""
    return rendered_tor_files(pod, only, "frr.conf")


def rendered_tor_files(pod: Path, only: tuple[str, ...], file: str) -> dict[str, str]:
    """Each ToR's rendered ``file`` (``frr.conf``, ``nftables.conf``), by ToR."""
    loaded = load_or_exit(pod)
    lock = current_lock_or_exit(pod, loaded)
    try:
        files = render(loaded.inventory, lock)
        docs = device_documents(loaded.inventory, lock)
    except RenderError as e:
        raise CommandFailed.because(e, f"{pod}: {e}") from None
    tors = _only([d for d in docs.values() if isinstance(d, TorDevice)], only, pod)
    return {t.name: files[f"tors/{t.name}/{file}"] for t in tors}


def print_plans(plans: list[Plan], *, as_json: bool) -> None:
    if as_json:
        output.echo_json([p.to_json() for p in plans])
        return
    for p in plans:
        click.echo(f"{p.tor}: {p.verdict}: {p.summary}")
        for line in p.shown_delta:
            click.echo(f"    {line}")
        if p.delta and not p.shown_delta:
            click.echo("    (no delta shown for a refused plan: --force shows and deploys it)")


FORCE_OPTION = click.option(
    "--force",
    is_flag=True,
    help="Deploy a plan the guard refuses (never one whose config does not parse).",
)


@examples(
    "sixpod fabric lldp pod.yaml",
    "sixpod fabric plan pod.yaml --config fabric.yaml",
    "sixpod fabric deploy pod.yaml --config fabric.yaml",
)
@click.group(short_help="The switches: LLDP cabling, plan, deploy, roll back.")
def fabric() -> None:
    """The switches: cabling from LLDP, plan, deploy and roll back.

    Each ToR's lldpd and FRR are reached as fabric.yaml says (--config): on this machine by
    default, or in a network namespace with sockets of their own (the lab).
    """


@examples(
    "sixpod fabric lldp pod.yaml",
    "sixpod fabric lldp pod.yaml --config fabric.yaml --json",
)
@fabric.command("lldp", short_help="Each ToR's LLDP neighbors against the inventory.")
@POD_ARG
@CONFIG_OPTION
@TOR_OPTION
@JSON_OPTION
def lldp_cmd(pod: Path, config_path: Path | None, only: tuple[str, ...], as_json: bool) -> None:
    """Compare each ToR's LLDP neighbors with POD: exit 1 on any mismatch.

    Devices are recognised by chassis id and port, never by hostname: nodes announce the
    chassis id their rendered lldpd.conf gives them (sixpod:POD:NAME). A node on the wrong
    port, one seen nowhere, an unknown device, a node without its chassis id: each is a
    mismatch. A device on a free port gets a proposed pod.yaml line, printed, never written.
    """
    from sixpod.fabric.lldp import Seen, compare, mismatches, parse_neighbors
    from sixpod.fabric.tools import Tor

    cfg = _config(config_path)
    tors = tor_documents(pod, only)
    seen: list[Seen] = []
    try:
        for t in tors:
            seen += parse_neighbors(Tor(t.name, cfg).lldp_neighbors(), t.name)
    except FabricError as e:
        raise CommandFailed.because(e) from None
    findings = compare(tors, seen)
    bad = mismatches(findings)
    proposals = [f.proposal for f in findings if f.proposal]
    if as_json:
        output.echo_json(
            {
                "ok": bad == 0,
                "mismatches": bad,
                "findings": [f.to_json() for f in findings],
                "proposals": proposals,
            }
        )
    else:
        rows: list[dict[str, Any]] = [f.to_json() for f in findings]
        output.rows(rows, ["tor", "port", "status", "node", "chassis", "system_name", "detail"],
                    as_json=False)  # fmt: skip
        if proposals:
            click.echo("\nProposed pod.yaml entries (add under nodes:; sixpod writes nothing):")
            for p in proposals:
                click.echo(p)
    if bad:
        raise CommandFailed(f"{pod}: {plural(bad, 'cabling mismatch', 'cabling mismatches')}")


@examples(
    "sixpod fabric plan pod.yaml --config fabric.yaml",
    "sixpod fabric plan pod.yaml --against deployed/   # against the last deployed render",
)
@fabric.command("plan", short_help="What a deploy would change; refused if unsafe.")
@POD_ARG
@CONFIG_OPTION
@TOR_OPTION
@click.option(
    "--against",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A previous render (DIR/tors/NAME/frr.conf) to plan against, instead of what each "
    "ToR runs (`show running-config`); a ToR missing there is planned from nothing.",
)
@FORCE_OPTION
@JSON_OPTION
def plan_cmd(
    pod: Path,
    config_path: Path | None,
    only: tuple[str, ...],
    against: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """What a deploy of POD would change on each ToR; exit 1 if it would be refused.

    The new frr.conf must pass FRR's own parser (vtysh -C) first: a delta is never shown
    for a config that does not parse. Then frr-reload.py --test gives the lines to delete
    and add, and the guard refuses a plan that removes the BGP instance or the hostname,
    removes more than max_removed_share (fabric.yaml, default 25%) of the neighbors, or
    drops every VIP. Nothing is changed on any switch.
    """
    from sixpod.fabric.deploy import plan_one
    from sixpod.fabric.tools import Tor

    cfg = _config(config_path)
    configs = rendered_frr(pod, only)
    plans = []
    try:
        for name, new in configs.items():
            if against is not None:
                old_path = against / "tors" / name / "frr.conf"
                running = old_path.read_text(encoding="utf-8") if old_path.exists() else ""
            else:
                running = Tor(name, cfg).running_config()
            plans.append(plan_one(name, running, new, cfg, force=force))
    except (FabricError, OSError) as e:
        raise CommandFailed(f"sixpod fabric plan: {e}") from None
    print_plans(plans, as_json=as_json)
    bad = [
        p
        for p in plans
        if p.verdict is Verdict.INVALID or (p.verdict is Verdict.REFUSED and not p.forced)
    ]
    if bad:
        raise CommandFailed(*(f"{p.tor}: {p.verdict}: {p.summary}" for p in bad))


@examples(
    "sixpod fabric deploy pod.yaml --config fabric.yaml",
    "sixpod fabric deploy pod.yaml --config fabric.yaml --tor r1-tor",
)
@fabric.command("deploy", short_help="Apply ToR by ToR; roll back a ToR that breaks.")
@POD_ARG
@CONFIG_OPTION
@TOR_OPTION
@FORCE_OPTION
@click.option(
    "--firewall",
    is_flag=True,
    help="Also load each ToR's rendered nftables.conf (nft -c first), after its FRR change; "
    "rolled back to the ruleset it ran before if a session fails.",
)
@JSON_OPTION
def deploy_cmd(
    pod: Path,
    config_path: Path | None,
    only: tuple[str, ...],
    force: bool,
    firewall: bool,
    as_json: bool,
) -> None:
    """Apply POD's FRR configs to the ToRs, one at a time, rolling back on trouble.

    Every ToR is planned first (as `sixpod fabric plan`); if any plan is refused or does
    not parse, nothing is applied. Then each ToR in turn: frr-reload.py --reload, and its
    sessions must come back Established with at least the prefixes they accepted before
    within the deadline (fabric.yaml, default 60 s); else that ToR is reloaded with the
    config it ran before and the deploy stops. With --firewall, each ToR's nftables.conf
    is checked (nft -c) with the plans, and loaded after the ToR's FRR change; its sessions
    are watched for firewall_settle seconds (longer than the hold time) and the ruleset it
    ran before is loaded back if one fails. Every deploy is recorded in the log
    (fabric.yaml: who, what, when, the diff).
    """
    from sixpod.fabric.deploy import deploy, devices_for

    cfg = _config(config_path)
    configs = rendered_frr(pod, only)
    firewalls = rendered_tor_files(pod, only, "nftables.conf") if firewall else None
    try:
        outcomes = deploy(
            devices_for(list(configs), cfg),
            configs,
            cfg,
            force=force,
            what=str(pod),
            firewalls=firewalls,
        )
    except FabricError as e:
        raise CommandFailed(f"sixpod fabric deploy: {e}") from None
    rows = [o.to_json() | {"summary": o.plan.summary if o.plan else None} for o in outcomes]
    if as_json:
        output.echo_json(rows)
    else:
        output.table(
            ["tor", "result", "seconds", "detail"],
            [
                [
                    r["tor"],
                    r["result"],
                    f"{r['seconds']:.1f}",
                    output.cell("; ".join(r["detail"]) or r["summary"]),
                ]
                for r in rows
            ],
        )
    stopped = [f"{o.tor} {o.result}" for o in outcomes if o.result not in _DONE]
    if stopped:
        raise CommandFailed(f"sixpod fabric deploy: stopped ({', '.join(stopped)}); see {cfg.log}")


_DONE = ("deployed", "unchanged", "skipped")


@examples(
    "sixpod ci pod.yaml --deployed deployed/",
    'sixpod ci pod.yaml --deployed deployed/ --summary "$GITHUB_STEP_SUMMARY"',
)
@click.command("ci", short_help="What a pull request on the inventory must pass.")
@POD_ARG
@click.option(
    "--deployed",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The last deployed render (`sixpod render` of the deployed revision): the lock may "
    "only add to it, and each ToR's plan is made against it.",
)
@CONFIG_OPTION
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also append the Markdown summary to this file (a CI's step summary).",
)
@JSON_OPTION
def ci_cmd(
    pod: Path, deployed: Path | None, config_path: Path | None, summary: Path | None, as_json: bool
) -> None:
    """Check, allocate (check mode), render, syntax-check and plan POD: a Markdown summary.

    For a pull request on an inventory repository: the inventory passes its checks; its
    lock is current, and against --deployed every allocation that stays is unchanged; every
    device file renders and passes its syntax check (vtysh -C, nft -c, sixpod's parsers);
    each ToR's plan against --deployed passes the guard. Nothing is written but --summary;
    no switch is contacted. Exit 1 if a step fails.
    """
    from sixpod.fabric.ci import markdown, run_ci
    from sixpod.inventory.lock import lock_path_for

    cfg = _config(config_path)
    if deployed is not None and not deployed.is_dir():
        raise CommandFailed(f"--deployed {deployed}: no such directory", exit_code=2)
    report = run_ci(pod, Path(lock_path_for(str(pod))), deployed, cfg)
    text = markdown(report)
    if summary is not None:
        try:
            with summary.open("a", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise CommandFailed(f"{summary}: cannot write: {e.strerror}") from None
    if as_json:
        output.echo_json(report.to_json())
    else:
        click.echo(text, nl=False)
    if not report.ok:
        failed = [s.name for s in report.steps if s.result == "failed"]
        raise CommandFailed(f"{pod}: sixpod ci failed: {', '.join(failed)}")
