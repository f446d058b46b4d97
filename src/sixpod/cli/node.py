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


@click.command("edge-agent")
@CONFIG
def edge_agent(config_path: Path) -> None:
    """Run the edge agent: supervises nginx, pushes tenant changes to it (edge.yaml)."""
    from sixpod.cli.config import load_config_or_exit
    from sixpod.edge.agent import main
    from sixpod.edge.config import EdgeConfig

    sys.exit(main(load_config_or_exit(config_path, EdgeConfig)))
