"""``sixpod check|allocate|render|status``: the inventory verbs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from sixpod import addr
from sixpod.cli import output
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.output import JSON_OPTION, plural
from sixpod.inventory.allocate import AllocationError, allocate
from sixpod.inventory.errors import Diagnostic, InventoryError
from sixpod.inventory.files import refuse_tree, replace_tree, write_atomic
from sixpod.inventory.load import Loaded, load_inventory
from sixpod.inventory.lock import Lock, format_lock, lock_path_for, parse_lock
from sixpod.inventory.model import Announce
from sixpod.inventory.render import RENDERED_FILES, RenderError, render
from sixpod.routing.render import Paths

DEFAULT_PATHS = Paths()
POD_ARG = click.argument("pod", type=click.Path(dir_okay=False, path_type=Path))


def _try_read(path: Path) -> tuple[str | None, str]:
    """``(text, "")``, or ``(None, why not)``."""
    try:
        return path.read_text(encoding="utf-8"), ""
    except FileNotFoundError:
        return None, f"{path}: no such file"
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{path}: cannot read: {e}"


def _read(path: Path) -> str:
    text, problem = _try_read(path)
    if text is None:
        raise CommandFailed(problem)
    return text


def load_or_exit(path: Path) -> Loaded:
    try:
        loaded = load_inventory(_read(path), str(path))
    except InventoryError as e:
        raise CommandFailed.because(e) from None
    for w in loaded.warnings:
        click.echo(str(w), err=True)
    return loaded


def _old_lock(path: Path) -> tuple[Lock | None, Any]:
    if not path.exists():
        return None, None
    try:
        return parse_lock(_read(path), str(path))
    except InventoryError as e:
        raise CommandFailed.because(e) from None


def _allocate(loaded: Loaded, lock_path: Path) -> tuple[Lock | None, Lock]:
    old, lock_src = _old_lock(lock_path)
    try:
        return old, allocate(loaded.inventory, old)
    except AllocationError as e:
        diags: list[Diagnostic] = []
        for p in e.problems:
            src = lock_src if p.in_lock and lock_src is not None else loaded.source
            diags.append(src.diagnostic(p.path, p.message))
        raise CommandFailed(*(str(d) for d in diags), exit_code=e.exit_code) from None


@examples(
    "sixpod check pod.yaml",
    "sixpod check examples/small.yaml && sixpod allocate examples/small.yaml",
)
@click.command()
@POD_ARG
@JSON_OPTION
def check(pod: Path, as_json: bool) -> None:
    """Validate and lint the inventory POD; nothing is written.

    Every problem is printed on stderr as FILE:LINE:COL: message; warnings and notes say
    so and do not fail. Exit 1 if there is an error. Also says if POD's .lock is out of
    date. With --json, stdout holds the result even when the check fails: ok, the counts,
    the lock's state and every error, warning and note with its position. `sixpod help
    inventory` describes every key.
    """
    found, loaded, lock = _check(pod)
    for d in found:
        click.echo(str(d), err=True)
    if lock == "out of date":
        lock_path = lock_path_for(str(pod))
        click.echo(f"{lock_path}: out of date; `sixpod allocate {pod}` would change it", err=True)
    errors = [d for d in found if isinstance(d, str) or d.error]
    warnings = [d for d in found if isinstance(d, Diagnostic) and d.warning]
    notes = [d for d in found if isinstance(d, Diagnostic) and d.note]
    inv = loaded.inventory if loaded is not None else None
    data = {
        "file": str(pod),
        "ok": not errors,
        "racks": len(inv.racks) if inv is not None else None,
        "nodes": len(inv.nodes) if inv is not None else None,
        "lock": lock,
        "errors": [_finding(d) for d in errors],
        "warnings": [_finding(d) for d in warnings],
        "notes": [_finding(d) for d in notes],
    }
    if as_json:
        output.echo_json(data)
    if errors:
        raise CommandFailed()  # each error is on stderr (and in --json) already
    if as_json or inv is None:
        return
    click.echo(
        f"{pod}: ok ({plural(len(inv.racks), 'rack')}, {plural(len(inv.nodes), 'node')}, "
        f"{plural(len(warnings), 'warning')}, {plural(len(notes), 'note')}; "
        f"{'no lock yet' if lock == 'none' else f'lock {lock}'})"
    )


def _check(pod: Path) -> tuple[list[Diagnostic | str], Loaded | None, str | None]:
    """What check found (diagnostics, and lines without a position), the inventory if it
    loaded, and the lock's state: none, current, out of date, or None if not compared."""
    text, problem = _try_read(pod)
    if text is None:
        return [problem], None, None
    try:
        loaded = load_inventory(text, str(pod))
    except InventoryError as e:
        return list(e.diagnostics), None, None
    found: list[Diagnostic | str] = list(loaded.warnings)
    lock_path = Path(lock_path_for(str(pod)))
    if not lock_path.exists():
        return found, loaded, "none"
    lock_text, problem = _try_read(lock_path)
    if lock_text is None:
        return [*found, problem], loaded, None
    try:
        old, lock_src = parse_lock(lock_text, str(lock_path))
        new = allocate(loaded.inventory, old)
    except AllocationError as e:  # an InventoryError whose problems point into two files
        for p in e.problems:
            src = lock_src if p.in_lock else loaded.source
            found.append(src.diagnostic(p.path, p.message))
        return found, loaded, None
    except InventoryError as e:
        return [*found, *e.diagnostics], loaded, None
    return found, loaded, "current" if old == new else "out of date"


def _finding(d: Diagnostic | str) -> dict[str, Any]:
    """One error, warning or note for --json: its position (None for a whole-file problem,
    such as a missing file) and its message."""
    if isinstance(d, str):
        return {"file": None, "line": None, "column": None, "message": d}
    return {"file": d.filename, "line": d.line, "column": d.column, "message": d.message}


# What allocate counts, as (JSON key, English noun).
_ALLOCATED = (
    ("nodes", "node"),
    ("racks", "rack"),
    ("ipv4_vips", "IPv4 VIP"),
    ("ipv6_vips", "IPv6 VIP"),
)


def _allocated(lock: Lock | None) -> dict[str, set[Any]]:
    if lock is None:
        return {key: set() for key, _ in _ALLOCATED}
    return {
        "nodes": set(lock.nodes),
        "racks": set(lock.racks),
        "ipv4_vips": set(lock.vips4),
        "ipv6_vips": set(lock.vips6),
    }


def _changes(lock_path: Path, old: Lock | None, new: Lock) -> tuple[str, dict[str, Any]]:
    """What allocate did, as one line and as the same fields for --json."""
    a, b = _allocated(old), _allocated(new)
    added = {key: len(b[key] - a[key]) for key, _ in _ALLOCATED}
    freed = {key: len(a[key] - b[key]) for key, _ in _ALLOCATED}
    result = "created" if old is None else "changed" if old != new else "unchanged"
    data = {"lock": str(lock_path), "result": result, "added": added, "freed": freed}
    if result == "created":
        counts = ", ".join(plural(added[key], noun) for key, noun in _ALLOCATED)
        return f"{lock_path}: created ({counts})", data
    parts = []
    for key, noun in _ALLOCATED:
        if added[key]:
            parts.append(f"{plural(added[key], noun)} added")
        if freed[key]:
            parts.append(f"{plural(freed[key], noun)} freed")
    return f"{lock_path}: {', '.join(parts) or result}", data


@examples("sixpod allocate pod.yaml   # writes pod.lock beside it")
@click.command("allocate")
@POD_ARG
@JSON_OPTION
def allocate_cmd(pod: Path, as_json: bool) -> None:
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
    text, data = _changes(lock_path, old, new)
    output.line(text, data, as_json=as_json)


def current_lock_or_exit(pod: Path, loaded: Loaded) -> Lock:
    lock_path = Path(lock_path_for(str(pod)))
    if not lock_path.exists():
        raise CommandFailed(f"{lock_path}: no such file: run `sixpod allocate {pod}` first")
    old, new = _allocate(loaded, lock_path)
    if old != new:
        raise CommandFailed(
            f"{lock_path}: out of date with {pod}: run `sixpod allocate {pod}` first"
        )
    return new


def _render_help() -> str:
    width = max(len(path) for path, _ in RENDERED_FILES)
    files = "\n".join(f"  {path:<{width}}  {what}" for path, what in RENDERED_FILES)
    return (
        "Write every device's configs for POD into --out.\n\n"
        "With them, the pod's Prometheus config (prometheus/: scrape jobs, file_sd targets "
        "for every node, ToR and VIP, the alert rules). "
        "Needs a current lock (`sixpod allocate` first). --out is replaced as a whole, and "
        "only once everything rendered and passed its checks. It must not hold POD or its "
        "lock, and if it exists and is not empty it must be a previous render (it has a "
        ".sixpod-render file) unless --force is given. The files, NAME being the node or "
        "ToR, JOB a Prometheus scrape job:\n\n\b\n" + files
    )


@examples(
    "sixpod render pod.yaml --out out/",
    "sixpod render pod.yaml --out out/ --etc /etc/sixpod --sixpod-bin /usr/bin/sixpod",
    "sixpod render pod.yaml --out old-configs/ --force   # replace a tree not rendered by sixpod",
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
    "--force",
    is_flag=True,
    help="Replace --out even if it is not empty and not a previous render (deletes its files).",
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
@JSON_OPTION
def render_cmd(
    pod: Path, out: Path, force: bool, sixpod_bin: str, etc: str, state: str, as_json: bool
) -> None:
    loaded = load_or_exit(pod)
    lock = current_lock_or_exit(pod, loaded)
    keep = [pod, Path(lock_path_for(str(pod)))]
    refused = refuse_tree(out, keep, force=force, rendered=[p for p, _ in RENDERED_FILES])
    if refused:
        raise CommandFailed(f"{out}: not replacing it: {refused}")
    try:
        files = render(loaded.inventory, lock, Paths(sixpod=sixpod_bin, etc=etc, state=state))
    except RenderError as e:
        raise CommandFailed.because(e, f"{pod}: {e}") from None
    try:
        replace_tree(out, files)
    except OSError as e:
        raise CommandFailed(
            f"{out}: cannot write the render (the old tree is kept as it was): {e}"
        ) from None
    devices = len(loaded.inventory.nodes) + len(loaded.inventory.racks)
    data = {"out": str(out), "devices": devices, "files": len(files)}
    text = f"{out}: {plural(devices, 'device')}, {plural(len(files), 'file')}"
    output.line(text, data, as_json=as_json)


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
@JSON_OPTION
def status(pod: Path, as_json: bool) -> None:
    """The pod at a glance: racks, nodes, prefixes, ASNs, VIPs.

    Read from POD and its lock; nothing is contacted.
    """
    loaded = load_or_exit(pod)
    s = summary(loaded, current_lock_or_exit(pod, loaded))
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    vips = f"{plural(s['vips']['ipv4'], 'IPv4 VIP')} + {plural(s['vips']['ipv6'], 'IPv6 VIP')}"
    click.echo(f"pod {s['pod']}  aggregate {s['aggregate']}  node ASN {s['node_asn']}  {vips}\n")
    output.table(
        ["rack", "ToR", "ASN", "nodes"],
        [[r["name"], output.cell(r["tor"]), str(r["asn"]), str(r["nodes"])] for r in s["racks"]],
    )
    click.echo()
    output.table(
        ["node", "rack", "role", "prefix", "uplink", "VIPs"],
        [
            [n["name"], n["rack"], n["role"], n["prefix"], n["uplink"], output.cell(n["vips"])]
            for n in s["nodes"]
        ],
    )
