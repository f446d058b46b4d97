"""``sixpod probe mtu``: the path MTU between two nodes, measured against the inventory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from sixpod import addr
from sixpod.cli import output
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.inventory import POD_ARG, current_lock_or_exit, load_or_exit
from sixpod.cli.output import JSON_OPTION
from sixpod.devices import NodeDevice
from sixpod.inventory.render import device_documents
from sixpod.monitoring import pathmtu
from sixpod.monitoring.mtuprobe import ProbeError, Prober


@examples("sixpod probe mtu pod.yaml --from r1-edge1 --to r2-app1")
@click.group()
def probe() -> None:
    """Measure the path MTU from this node to another."""


@examples(
    "sixpod probe mtu pod.yaml --from r1-edge1 --to r2-app1",
    "ip netns exec NS sixpod probe mtu pod.yaml --from r1-edge1 --to r1-edge2 --json",
)
@probe.command()
@POD_ARG
@click.option("--from", "src", required=True, help="The node this runs on (its uplink address).")
@click.option("--to", "dst", required=True, help="The node to probe.")
@click.option(
    "--size",
    "sizes",
    multiple=True,
    type=click.IntRange(1280, 65535),
    help="Also probe this IPv6 packet size (repeatable).",
)
@click.option(
    "--timeout", default=1.0, show_default=True, type=click.FloatRange(0.05, 10), help="Seconds."
)
@click.option(
    "--textfile",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the result as metrics into this directory, for node-exporter's "
    "textfile collector (--collector.textfile.directory): sixpod_path_mtu_TO.prom.",
)
@JSON_OPTION
def mtu(
    pod: Path,
    src: str,
    dst: str,
    sizes: tuple[int, ...],
    timeout: float,
    textfile: Path | None,
    as_json: bool,
) -> None:
    """The path MTU to another node, measured against the inventory.

    Send DF echo requests from --from to --to at 1280, 1500 and 9000 bytes, each hop's
    MTU per the inventory and every --size; compare what passes with what the inventory
    says the path carries, and find the size the path really carries.

    Exit 1 when the path differs from the inventory: a size that should pass does not
    (named: the router's Packet Too Big, or lost without one: a black hole), or one larger
    than the narrowest hop passes.
    """
    loaded = load_or_exit(pod)
    docs = device_documents(loaded.inventory, current_lock_or_exit(pod, loaded))
    try:
        hops = pathmtu.path_hops(docs, src, dst)
    except pathmtu.PathError as e:
        raise CommandFailed(f"{pod}: {e}") from None
    a, b = (next(d for d in docs.values() if isinstance(d, NodeDevice) and d.name == n)
            for n in (src, dst))  # fmt: skip
    narrow = pathmtu.narrowest(hops)
    try:
        with Prober(b.uplink.address, a.uplink.address, timeout=timeout) as p:
            results = [p.probe(size) for size in pathmtu.sizes_to_probe(hops, sizes)]
            measured = pathmtu.path_mtu(results, p.probe)
    except ProbeError as e:
        raise CommandFailed(str(e)) from None
    verdicts = pathmtu.judge(hops, results)
    doc = {
        "from": src,
        "to": dst,
        "address": addr.format_ip(b.uplink.address),
        "hops": [{"what": h.what, "mtu": h.mtu} for h in hops],
        "inventory_mtu": narrow.mtu,
        "measured_mtu": measured,
        "ok": all(v.ok for v in verdicts),
        "probes": [
            {
                "size": v.size,
                "should_pass": v.expected,
                "outcome": str(v.result.outcome),
                "reported_mtu": v.result.reported_mtu,
                "by": v.result.by,
                "ok": v.ok,
            }
            for v in verdicts
        ],
    }
    if textfile is not None:
        _write_metrics(textfile, dst, narrow.mtu, measured, bool(doc["ok"]))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"{src} -> {dst} ({doc['address']})")
        output.table(["hop", "MTU"], [[h.what, str(h.mtu)] for h in hops])
        click.echo()
        output.table(
            ["size", "should", "got", ""],
            [
                [
                    str(v.size),
                    "pass" if v.expected else "not pass",
                    str(v.result.outcome),
                    v.explain(narrow),
                ]
                for v in verdicts
            ],
        )
        carries = "nothing" if measured is None else f"{measured} bytes"
        click.echo(f"\npath carries {carries}; the inventory says {narrow.mtu} ({narrow.what})")
    if not doc["ok"]:
        raise SystemExit(1)


def _write_metrics(
    directory: Path, dst: str, inventory: int, measured: int | None, ok: bool
) -> None:
    """The probe's result as node-exporter textfile metrics (written whole: a scrape never
    reads half a file); the PathMtuDiffers alert reads them."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    reg = CollectorRegistry()
    for name, doc, value in (
        ("sixpod_path_mtu_ok", "1 when every probe size did what the inventory says", ok),
        ("sixpod_path_mtu_bytes", "The size the path carries, measured (0: none)", measured or 0),
        ("sixpod_path_mtu_inventory_bytes", "The size the inventory says it carries", inventory),
        ("sixpod_path_mtu_probed_timestamp_seconds", "When the probe ran", time.time()),
    ):
        Gauge(name, doc, ["to"], registry=reg).labels(dst).set(float(value))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(directory / f"sixpod_path_mtu_{dst}.prom"), reg)
    except OSError as e:
        raise CommandFailed(f"{directory}: cannot write the metrics: {e.strerror}") from None
