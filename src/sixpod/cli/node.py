"""``sixpod announcer`` (ExaBGP's API process) and ``sixpod node`` (operator control)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sixpod.cli.config import load_config_or_exit
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.output import JSON_OPTION, line
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
        raise CommandFailed(f"{path}: {e}") from None
    return cfg


@examples("sixpod announcer --config /etc/sixpod/announcer.yaml   # in exabgp.conf's api")
@click.command()
@CONFIG
def announcer(config_path: Path) -> None:
    """ExaBGP's API process: health checks drive announcements.

    ExaBGP starts it (the rendered exabgp.conf says how); it reads route commands' answers
    on stdin and writes announce and withdraw lines on stdout.
    """
    from sixpod import logs
    from sixpod.routing.announcer import main

    cfg = load_config(config_path)
    logs.setup(f"announcer {cfg.node}")  # before main's own basicConfig, which it overrides
    sys.exit(main(cfg))


@examples(
    "sixpod node drain --config /etc/sixpod/announcer.yaml",
    "sixpod node undrain --config /etc/sixpod/announcer.yaml",
)
@click.group()
def node() -> None:
    """See, drain, disable and restore this node's announcements.

    The flags are files in the announcer's state directory and survive restarts;
    `sixpod node status` shows what the announcer does and why.
    """


def _flag(config_path: Path, name: str, on: bool, as_json: bool) -> None:
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
        raise CommandFailed(f"{flag}: {e.strerror}") from None
    data = {"node": cfg.node, "flag": name, "set": on}
    line(f"{cfg.node}: {name} {'set' if on else 'cleared'}", data, as_json=as_json)


@examples("sixpod node drain --config /etc/sixpod/announcer.yaml")
@node.command()
@CONFIG
@JSON_OPTION
def drain(config_path: Path, as_json: bool) -> None:
    """Make the VIPs less preferred now, withdraw them later.

    The withdrawal comes after the drain timeout of announcer.yaml.
    """
    _flag(config_path, "drain", True, as_json)


@examples("sixpod node undrain --config /etc/sixpod/announcer.yaml")
@node.command()
@CONFIG
@JSON_OPTION
def undrain(config_path: Path, as_json: bool) -> None:
    """End a drain; the VIPs return once the checks pass."""
    _flag(config_path, "drain", False, as_json)


@examples("sixpod node disable --config /etc/sixpod/announcer.yaml")
@node.command()
@CONFIG
@JSON_OPTION
def disable(config_path: Path, as_json: bool) -> None:
    """Withdraw the VIPs at once (the node /64 stays announced)."""
    _flag(config_path, "disable", True, as_json)


@examples("sixpod node enable --config /etc/sixpod/announcer.yaml")
@node.command()
@CONFIG
@JSON_OPTION
def enable(config_path: Path, as_json: bool) -> None:
    """Undo disable: the VIPs return once the checks pass."""
    _flag(config_path, "disable", False, as_json)


@examples(
    "sixpod node status --config /etc/sixpod/announcer.yaml",
    "sixpod node status --config /etc/sixpod/announcer.yaml --routes   # every route",
    "sixpod node status --config /etc/sixpod/announcer.yaml --json | jq '.route_list[]'",
)
@node.command()
@CONFIG
@click.option(
    "--routes",
    "each",
    is_flag=True,
    help="List every route on its own line (default: routes grouped by state and reason).",
)
@JSON_OPTION
def status(config_path: Path, each: bool, as_json: bool) -> None:
    """What the announcer announces, and why.

    The announcer's state; the BGP session (since when, what it negotiated, the families it
    carries); every route (the VIPs and the node /64) announced, withdrawn, refused or
    pending, with its reason: a failing check, the floor, a drain and when it withdraws, a
    disable, a family the session did not negotiate; ExaBGP's liveness and BFD; each check;
    the last changes, with their times; and every problem. --json adds route_list, each
    route on its own.

    Exit 0 when the announcer runs and reports no problem, 1 otherwise.
    """
    import json
    import os
    import time

    from sixpod.routing.status import (
        STATUS_FILE,
        StatusError,
        format_status,
        parse_status,
        route_list,
    )

    cfg = load_config(config_path)
    path = Path(cfg.state_dir) / STATUS_FILE
    try:
        doc = parse_status(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandFailed(f"{path}: no status: the announcer has not run on this node") from None
    except StatusError as e:
        raise CommandFailed.because(e, f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CommandFailed(f"{path}: {e}") from None
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
        out = doc | {"running": running, "route_list": route_list(doc)}
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(format_status(doc, running=running, now=time.time(), each=each), nl=False)
    if not running or doc["problems"]:
        raise CommandFailed()  # the status above says why


@examples("sixpod edge-agent --config /etc/sixpod/edge.yaml")
@click.command("edge-agent")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="edge.yaml (rendered by `sixpod render` for edge nodes).",
)
def edge_agent(config_path: Path) -> None:
    """The edge agent: runs nginx and pushes tenant changes to it."""
    from sixpod import logs
    from sixpod.edge.agent import main
    from sixpod.edge.config import EdgeConfig

    cfg = load_config_or_exit(config_path, EdgeConfig)
    logs.setup("edge-agent")
    sys.exit(main(cfg))
