"""``sixpod announcer`` (ExaBGP's API process) and ``sixpod node`` (operator control)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sixpod.cli.config import load_config_or_exit
from sixpod.inventory.files import write_atomic
from sixpod.routing.config import AnnouncerConfig

CONFIG = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="announcer.yaml (rendered by `sixpod render`).",
)


def load_config(path: Path) -> AnnouncerConfig:
    """The announcer config, checked as deeply as the core will check it; exit 1 if wrong."""
    from sixpod.routing.announcer import core_config

    cfg = load_config_or_exit(path, AnnouncerConfig)
    try:
        core_config(cfg)
    except ValueError as e:
        click.echo(f"{path}: {e}", err=True)
        sys.exit(1)
    return cfg


@click.command()
@CONFIG
def announcer(config_path: Path) -> None:
    """Run as ExaBGP's API process: health checks drive the node's announcements."""
    from sixpod.routing.announcer import main

    sys.exit(main(load_config(config_path)))


@click.group()
def node() -> None:
    """Operator control of the local announcer (flags survive restarts)."""


def _flag(config_path: Path, name: str, on: bool) -> None:
    cfg = load_config(config_path)
    state = Path(cfg.state_dir)
    flag = state / name
    try:
        state.mkdir(parents=True, exist_ok=True)
        if on:
            write_atomic(flag, f"{name}\n")
        else:
            flag.unlink(missing_ok=True)
    except OSError as e:
        click.echo(f"{flag}: {e.strerror}", err=True)
        sys.exit(1)
    click.echo(f"{cfg.node}: {name} {'set' if on else 'cleared'}")


@node.command()
@CONFIG
def drain(config_path: Path) -> None:
    """Make the VIPs less preferred now, withdraw them after the drain timeout."""
    _flag(config_path, "drain", True)


@node.command()
@CONFIG
def undrain(config_path: Path) -> None:
    """End a drain; the VIPs return once the checks pass."""
    _flag(config_path, "drain", False)


@node.command()
@CONFIG
def disable(config_path: Path) -> None:
    """Withdraw the VIPs at once (the node /64 stays announced)."""
    _flag(config_path, "disable", True)


@node.command()
@CONFIG
def enable(config_path: Path) -> None:
    """Undo disable."""
    _flag(config_path, "disable", False)


@node.command()
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="The status document, for scripts.")
def status(config_path: Path, as_json: bool) -> None:
    """What the announcer announces and why not: state, session families, refused routes.

    Exit 0 when the announcer runs and reports no problem, 1 otherwise.
    """
    import json
    import os

    from sixpod.routing.status import STATUS_FILE, StatusError, format_status, parse_status

    cfg = load_config(config_path)
    path = Path(cfg.state_dir) / STATUS_FILE
    try:
        doc = parse_status(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        click.echo(f"{path}: no status: the announcer has not run on this node", err=True)
        sys.exit(1)
    except (OSError, UnicodeDecodeError, StatusError) as e:
        click.echo(f"{path}: {e}", err=True)
        sys.exit(1)
    running = False
    pid = doc.get("pid")
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
            running = True
        except ProcessLookupError:
            running = False
        except PermissionError:
            running = True
    if as_json:
        click.echo(json.dumps(doc | {"running": running}, indent=2))
    else:
        click.echo(format_status(doc, running=running), nl=False)
    sys.exit(0 if running and not doc["problems"] else 1)


@click.command("edge-agent")
@CONFIG
def edge_agent(config_path: Path) -> None:
    """Run the edge agent: supervises nginx, pushes tenant changes to it (edge.yaml)."""
    from sixpod.cli.config import load_config_or_exit
    from sixpod.edge.agent import main
    from sixpod.edge.config import EdgeConfig

    sys.exit(main(load_config_or_exit(config_path, EdgeConfig)))
