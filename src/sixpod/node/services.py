"""The node's services as ``sixpod node bootstrap --supervise`` runs them (pure).

From the rendered node directory and where things live at run time (:class:`Runtime`: the
run, state and log directories, the binaries, the Redis password file), this builds each
service's command and its *effective* configs: the rendered ones with the run-time paths put
in (the announcer's state directory and bfdd vty socket, ExaBGP's API process line, the Redis
replica's data directory and password include, the edge agent's run and log paths and the
nginx.conf made from them, Razor's password file). Nothing else is changed: what an operator
or the lab edited in the rendered files (checks, timers, the floor) is kept.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sixpod import addr
from sixpod.devices import NodeDevice
from sixpod.node.errors import BadInput

FRR_LIB = Path("/usr/lib/frr")
PACKAGES = {
    "zebra": "Debian package frr",
    "bfdd": "Debian package frr",
    "exabgp": "PyPI exabgp, in sixpod's virtual environment",
    "redis": "Debian package redis-server",
    "edge": "sixpod itself",
    "razor": "sixpod itself",
}
"""What installs each service's program (named when it is missing)."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """Where the supervised services keep their files (all absolute paths)."""

    run_dir: Path
    """Sockets, pids, effective configs: ``frr/`` (vty sockets, must be reachable by the
    ``frr`` user), ``exabgp/`` (``EXABGP_ROOT``: the CLI pipes), ``redis/``, ``edge/``."""
    state_dir: Path
    """The announcer's flags and status (``announcer/``), the Redis replica's directory."""
    log_dir: Path
    """One log file per service, ``NAME.log``."""
    sixpod: Path
    exabgp: Path
    redis_server: Path = Path("/usr/bin/redis-server")
    nginx: Path = Path("/usr/sbin/nginx")
    redis_password_file: Path | None = None
    """The pod's Redis password; None: the file the rendered configs name."""
    redis_primary: addr.Endpoint | None = None
    """Follow this primary instead of the rendered ``replicaof``."""
    edge_seal_key: Path | None = None
    """The pod's key-sealing key for the edge's TLS, instead of the rendered one."""

    @property
    def frr_dir(self) -> Path:
        return self.run_dir / "frr"

    @property
    def exabgp_root(self) -> Path:
        return self.run_dir / "exabgp"

    @property
    def exabgp_pipes(self) -> Path:
        return self.exabgp_root / "run" / "exabgp"

    @property
    def redis_auth(self) -> Path:
        return self.run_dir / "redis" / "auth.conf"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    ready_file: Path | None = None
    """A file that exists once the service accepts work (the next one waits for it)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The services in start order, and the files to write before starting them."""

    services: tuple[Service, ...]
    files: dict[Path, str] = field(default_factory=dict)
    password_file: Path | None = None
    """Read at start into :attr:`Runtime.redis_auth` (never put into a config)."""


def _json_body(text: str, where: str) -> dict[str, Any]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise BadInput(f"{where}: not the JSON `sixpod render` writes: {e}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: expected an object")
    return doc


RUN_LINE = re.compile(r"^(\s*run )[^;\n]*;$", re.MULTILINE)


def exabgp_effective(text: str, announcer: str, where: str) -> str:
    """The rendered exabgp.conf with its API process running ``announcer``."""
    if len(RUN_LINE.findall(text)) != 1:
        raise BadInput(f"{where}: expected one `run ...;` line (the announcer)")
    return RUN_LINE.sub(lambda m: f"{m.group(1)}{announcer};", text)


def announcer_effective(text: str, rt: Runtime, where: str) -> str:
    cfg = _json_body(text, where)
    cfg["state_dir"] = str(rt.state_dir / "announcer")
    if isinstance(cfg.get("bfd"), dict):
        cfg["bfd"]["vty_socket"] = str(rt.frr_dir)
    password = rt.redis_password_file
    if password is not None:  # the pod's one Redis password: the checks, VIP states, floor
        for check in cfg.get("checks", []):
            if isinstance(check, dict) and check.get("kind") == "redis":
                check["password_file"] = str(password)
        for key in ("vip_states", "floor"):
            if isinstance(cfg.get(key), dict) and "password_file" in cfg[key]:
                cfg[key]["password_file"] = str(password)
    return json.dumps(cfg, indent=2) + "\n"


def redis_effective(text: str, rt: Runtime) -> str:
    """The rendered redis.conf with the run-time data directory, password include and,
    if given, primary (later directives override earlier ones; ``include`` is last)."""
    drop = r"\s*(dir|include|logfile)\b"
    if rt.redis_primary is not None:
        drop = r"\s*(dir|include|logfile|replicaof|slaveof)\b"
    keep = [line for line in text.splitlines() if not re.match(drop, line)]
    primary = []
    if rt.redis_primary is not None:
        p = rt.redis_primary
        primary = [f"replicaof {addr.format_ip(p.ip)} {p.port}"]
    return (
        "\n".join(
            [
                *keep,
                f"dir {rt.state_dir / 'redis'}",
                'logfile ""',
                *primary,
                f"include {rt.redis_auth}",
            ]
        )
        + "\n"
    )


def _password_from_redis_conf(text: str) -> Path | None:
    m = re.search(r"^# The password is read from (\S+) into", text, re.MULTILINE)
    return Path(m.group(1)) if m else None


def edge_effective(text: str, rt: Runtime, node_dir: Path, where: str) -> tuple[str, str]:
    """The edge agent's config and the nginx.conf made from it (run-time paths)."""
    from sixpod.edge.config import EdgeConfig
    from sixpod.edge.nginxconf import nginx_conf

    cfg = _json_body(text, where)
    cfg.update(
        run_dir=str(rt.run_dir / "edge"),
        nginx_conf=str(rt.run_dir / "edge-nginx.conf"),
        lua_dir=str(rt.run_dir / "edge-lua"),
        access_log=str(rt.log_dir / "edge-access.log"),
        error_log=str(rt.log_dir / "edge-error.log"),
        nginx=[str(rt.nginx)],
    )
    if rt.redis_password_file is not None and isinstance(cfg.get("redis"), dict):
        cfg["redis"]["password_file"] = str(rt.redis_password_file)
    if rt.edge_seal_key is not None and isinstance(cfg.get("tls"), dict):
        cfg["tls"]["seal_key"] = str(rt.edge_seal_key)
    try:
        model = EdgeConfig.model_validate(cfg)
    except ValueError as e:
        raise BadInput(f"{where}: {e}") from None
    return json.dumps(cfg, indent=2) + "\n", nginx_conf(model)


def razor_effective(text: str, rt: Runtime, where: str) -> str:
    """The rendered razor.yaml with the pod's Redis password file, if given."""
    cfg = _json_body(text, where)
    if rt.redis_password_file is not None and isinstance(cfg.get("tenants"), dict):
        cfg["tenants"]["password_file"] = str(rt.redis_password_file)
    return json.dumps(cfg, indent=2) + "\n"


def missing_programs(plan: Plan, rt: Runtime) -> list[str]:
    """One line per service whose program is not installed, naming what installs it."""
    out = []
    programs = [(s.name, Path(s.argv[0])) for s in plan.services]
    if any(s.name == "edge" for s in plan.services):
        programs.append(("nginx", rt.nginx))
    for name, program in programs:
        if not (program.is_file() and os.access(program, os.X_OK)):
            what = PACKAGES.get(name, "Debian packages nginx and libnginx-mod-http-lua")
            out.append(f"{name}: {program} is not installed ({what})")
    return out


def build(doc: NodeDevice, node_dir: Path, rt: Runtime) -> Plan:
    """Every service the node's role runs, from the files in ``node_dir``."""

    def read(name: str) -> str:
        path = node_dir / name
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BadInput(f"{path}: missing (run `sixpod render` again?)") from None
        except (OSError, UnicodeDecodeError) as e:
            raise BadInput(f"{path}: {e}") from None

    run = rt.run_dir
    files: dict[Path, str] = {}
    frr = rt.frr_dir
    files[frr / "zebra.conf"] = ""
    files[frr / "bfdd.conf"] = read("bfdd.conf")
    common = ("-u", "frr", "-g", "frr", "--vty_socket", str(frr), "-z", str(frr / "zserv.api"))

    def frr_daemon(name: str, *extra: str) -> Service:
        conf, pid = frr / f"{name}.conf", frr / f"{name}.pid"
        argv = (str(FRR_LIB / name), *common, "-f", str(conf), "-i", str(pid), *extra)
        return Service(
            name, (*argv, "-A", "127.0.0.1", "--log", "stdout"), ready_file=frr / f"{name}.vty"
        )

    services = [
        frr_daemon("zebra", "--v6-rr-semantics"),
        frr_daemon("bfdd", "--bfdctl", str(frr / "bfdd.sock")),
    ]
    announcer = run / "announcer.yaml"
    files[announcer] = announcer_effective(
        read("announcer.yaml"), rt, str(node_dir / "announcer.yaml")
    )
    files[run / "exabgp.conf"] = exabgp_effective(
        read("exabgp.conf"),
        f"{rt.sixpod} announcer --config {announcer}",
        str(node_dir / "exabgp.conf"),
    )
    services.append(
        Service(
            "exabgp",
            (str(rt.exabgp), str(run / "exabgp.conf")),
            env=(
                ("EXABGP_ROOT", str(rt.exabgp_root)),
                ("exabgp_api_cli", "true"),
                ("exabgp_daemon_user", "root"),
                ("exabgp_daemon_drop", "false"),
                ("exabgp_log_destination", "stdout"),
                ("exabgp_log_short", "false"),
                ("exabgp_tcp_delay", "0"),
            ),
        )
    )
    password: Path | None = rt.redis_password_file
    if doc.runs("redis-replica"):
        text = read("redis.conf")
        password = password or _password_from_redis_conf(text)
        if password is None:
            raise BadInput(
                f"{node_dir / 'redis.conf'}: names no password file; pass --redis-password-file"
            )
        files[run / "redis.conf"] = redis_effective(text, rt)
        services.append(Service("redis", (str(rt.redis_server), str(run / "redis.conf"))))
    if doc.runs("edge-proxy"):
        edge, nginx = edge_effective(read("edge.yaml"), rt, node_dir, str(node_dir / "edge.yaml"))
        files[run / "edge.yaml"] = edge
        files[run / "edge-nginx.conf"] = nginx
        services.append(
            Service("edge", (str(rt.sixpod), "edge-agent", "--config", str(run / "edge.yaml")))
        )
    if (node_dir / "razor.yaml").exists():  # rendered for razor nodes with VIPs
        where = str(node_dir / "razor.yaml")
        files[run / "razor.yaml"] = razor_effective(read("razor.yaml"), rt, where)
        services.append(
            Service("razor", (str(rt.sixpod), "razor", "--config", str(run / "razor.yaml")))
        )
    return Plan(tuple(services), files, password)
