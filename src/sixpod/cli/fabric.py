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
from sixpod.inventory.render import RenderError, device_documents

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
    tors = [d for d in docs.values() if isinstance(d, TorDevice)]
    unknown = sorted(set(only) - {t.name for t in tors})
    if unknown:
        raise CommandFailed(f"{pod}: no ToR named {', '.join(unknown)}", exit_code=2)
    return [t for t in tors if not only or t.name in only]


@examples("sixpod fabric lldp pod.yaml")
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
@fabric.command("lldp")
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
