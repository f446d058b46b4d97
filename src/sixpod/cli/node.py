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
    """Bootstrap this node; drain, disable, restore its VIPs.

    `sixpod node bootstrap` applies the node's rendered network config and runs its
    services. The drain and disable flags are files in the announcer's state directory
    and survive restarts; `sixpod node status` shows what the announcer does and why.
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


def _default_bin(name: str) -> Path:
    """A program installed beside this sixpod (its virtual environment), else on PATH."""
    import shutil

    here = Path(sys.executable).with_name(name)
    if here.exists():
        return here
    found = shutil.which(name)
    return Path(found) if found else here


@examples(
    "sixpod node bootstrap --dir /etc/sixpod/edge1 --dry-run   # what it would change",
    "sixpod node bootstrap --dir /etc/sixpod/edge1             # apply the network config",
    "sixpod node bootstrap --dir /etc/sixpod/edge1 --supervise   # then run the services",
    "sixpod node bootstrap --dir out/nodes/edge1 --uplink eth0 --supervise --run-dir "
    "/tmp/lab/edge1/run --state-dir /tmp/lab/edge1/state --log-dir /tmp/lab/logs/edge1",
)
@node.command()
@click.option(
    "--dir",
    "node_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="The node's rendered directory (nodes/NAME of `sixpod render`).",
)
@click.option(
    "--uplink",
    default=None,
    help="The uplink's interface name here (default: network.json's, eth0).",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option(
    "--supervise",
    is_flag=True,
    help="Then run the node's services and keep them running until SIGTERM.",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/run/sixpod"),
    show_default=True,
    help="--supervise: sockets, pids and effective configs (reachable by the frr user).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/sixpod"),
    show_default=True,
    help="--supervise: the announcer's flags and status, the Redis replica's directory.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/log/sixpod"),
    show_default=True,
    help="--supervise: one log file per service (NAME.log).",
)
@click.option(
    "--redis-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="--supervise: the pod's Redis password (default: the file the rendered configs name).",
)
@click.option(
    "--edge-seal-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="--supervise: the pod's key-sealing key for the edge's TLS (default: edge.yaml's).",
)
@click.option(
    "--redis-primary",
    default=None,
    help="--supervise: follow this Redis primary, [IPv6]:port, instead of redis.conf's.",
)
@JSON_OPTION
def bootstrap(
    node_dir: Path,
    uplink: str | None,
    dry_run: bool,
    supervise: bool,
    run_dir: Path,
    state_dir: Path,
    log_dir: Path,
    redis_password_file: Path | None,
    redis_primary: str | None,
    edge_seal_key: Path | None,
    as_json: bool,
) -> None:
    """Apply the rendered network config; run the services.

    Applies network.json to the network namespace it runs in: sysctls (no DAD, addresses
    kept when the link goes down, forwarding), the uplink's MTU and address, the loopback's
    address, the default routes via the ToR (IPv4 too, via its IPv6 address: RFC 8950).
    Only what differs is changed; a second run changes nothing; nothing the config does not
    name (the VIPs, containers' routes) is touched. A missing or malformed file, an address
    of the wrong family or an interface this node lacks is an error that changes nothing.

    --supervise then starts FRR zebra and bfdd, ExaBGP (which runs the announcer), and on
    edge nodes the Redis replica and the edge agent, each in its own process group with its
    log in --log-dir; restarts any that dies; on SIGTERM or SIGINT stops them all, and none
    outlives the supervisor, even when it is killed.
    """
    from sixpod import addr, devices
    from sixpod.node import netconfig, netlink
    from sixpod.node.errors import NodeError
    from sixpod.node.plan import plan

    try:
        if not node_dir.is_dir():
            raise CommandFailed(f"{node_dir}: no such directory (the node's rendered files)")
        paths = {n: node_dir / n for n in ("device.json", "network.json")}
        texts = {}
        for name, path in paths.items():
            try:
                texts[name] = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise CommandFailed(
                    f"{path}: missing (render the pod again with this sixpod)"
                ) from None
            except (OSError, UnicodeDecodeError) as e:
                raise CommandFailed(f"{path}: {e}") from None
        doc = devices.load(texts["device.json"], str(paths["device.json"]))
        if not isinstance(doc, devices.NodeDevice):
            raise CommandFailed(f"{paths['device.json']}: not a node ({doc.schema})")
        cfg = netconfig.parse(texts["network.json"], str(paths["network.json"]))
        if cfg.node != doc.name:
            raise CommandFailed(
                f"{paths['network.json']}: for node {cfg.node}, but device.json is {doc.name}'s"
            )
        if uplink is not None:
            cfg = cfg.with_uplink(cfg.links[0].name, uplink)
        primary = None
        if redis_primary is not None:
            try:
                primary = addr.parse_endpoint(redis_primary)
            except addr.AddressError as e:
                raise CommandFailed(f"--redis-primary: {e}") from None
            if primary.ip.version != 6:
                raise CommandFailed(
                    f"--redis-primary: {redis_primary!r} is IPv4: the pod's east-west "
                    "traffic is IPv6 only ([IPv6]:port)"
                )
        sv = None
        if supervise:
            from sixpod.node import services

            rt = services.Runtime(
                run_dir=run_dir.absolute(),
                state_dir=state_dir.absolute(),
                log_dir=log_dir.absolute(),
                sixpod=_default_bin("sixpod"),
                exabgp=_default_bin("exabgp"),
                redis_password_file=redis_password_file.absolute() if redis_password_file else None,
                redis_primary=primary,
                edge_seal_key=edge_seal_key.absolute() if edge_seal_key else None,
            )
            sv = (services.build(doc, node_dir.absolute(), rt), rt)  # checked before changing
            missing = services.missing_programs(*sv)
            if missing:
                raise CommandFailed(*missing)
        changes = plan(cfg, netlink.read_state(cfg))
        if not dry_run:
            netlink.apply(changes)
    except (NodeError, devices.DeviceError) as e:
        raise CommandFailed.because(e) from None
    data = {
        "node": doc.name,
        "dry_run": dry_run,
        "changes": [str(c) for c in changes],
    }
    if as_json:
        from sixpod.cli.output import echo_json

        echo_json(data)
    else:
        verb = "would change" if dry_run else "changed"
        if not changes:
            click.echo(f"{doc.name}: network as configured, nothing to change")
        else:
            click.echo(f"{doc.name}: {verb} {len(changes)}:")
            for c in changes:
                click.echo(f"  {c}")
    if sv is not None and not dry_run:
        from sixpod import logs
        from sixpod.node.supervisor import Supervisor, prepare

        logs.setup(f"node {doc.name}")
        try:
            prepare(*sv)
            sys.stdout.flush()
            code = Supervisor(*sv).run()
        except NodeError as e:
            raise CommandFailed.because(e) from None
        sys.exit(code)


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
