"""The node supervisor restarts what dies and leaves nothing behind: stopped with SIGTERM, or
killed with SIGKILL (its guardian then stops what it started). First over stand-in services,
then over the real ones (FRR, ExaBGP, Redis, the edge agent) in a node namespace."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nodekit import UPLINK, Pair, netns_pids, node_pair

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def status(run: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads((run / "supervisor.json").read_text())
    except (OSError, ValueError):
        return None
    return doc


def all_running(run: Path, names: set[str]) -> dict[str, Any] | None:
    doc = status(run)
    if doc is None or set(doc["services"]) != names:
        return None
    pids = [s["pid"] for s in doc["services"].values()]
    return doc if all(p is not None and alive(p) for p in pids) else None


@contextlib.contextmanager
def fake(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any], list[int]]]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "fake_services.py"), str(tmp_path)],
        stderr=subprocess.DEVNULL,
    )
    pids: list[int] = [proc.pid]
    try:
        doc = wait_for(
            "both services", lambda: all_running(tmp_path / "run", {"sleeper", "forker"})
        )
        grandchild = int(wait_for("the grandchild", lambda: _read(tmp_path / "grandchild.pid")))
        pids += [doc["guardian"], grandchild, *(s["pid"] for s in doc["services"].values())]
        yield proc, doc, pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def test_a_killed_service_is_restarted_and_sigkill_leaves_nothing(tmp_path: Path) -> None:
    with fake(tmp_path) as (proc, doc, pids):
        old = doc["services"]["sleeper"]["pid"]
        os.kill(old, signal.SIGKILL)
        after = wait_for(
            "the restart",
            lambda: (
                (d := status(tmp_path / "run"))
                and d["services"]["sleeper"]["restarts"] == 1
                and d["services"]["sleeper"]["pid"] not in (None, old)
                and d
            ),
        )
        assert after["services"]["sleeper"]["last_exit"] == "signal 9"
        assert after["services"]["forker"]["restarts"] == 0
        pids.append(after["services"]["sleeper"]["pid"])
        assert alive(pids[-1])

        proc.kill()  # SIGKILL: the supervisor cannot clean up itself
        proc.wait(10)
        wait_for("every process to go", lambda: not any(alive(p) for p in pids), timeout=15)


def test_sigterm_stops_everything_and_exits_0(tmp_path: Path) -> None:
    with fake(tmp_path) as (proc, _, pids):
        proc.terminate()
        assert proc.wait(20) == 0
        wait_for("every process to go", lambda: not any(alive(p) for p in pids), timeout=15)
        doc = status(tmp_path / "run")
        assert doc is not None
        assert [s["pid"] for s in doc["services"].values()] == [None, None]


# -- the real services, in a node namespace -----------------------------------------------

TOR = "2001:db8:2ff::1"


@pytest.fixture
def pair() -> Iterator[Pair]:
    yield from node_pair(TOR)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the frr user can reach (pytest's own are root's only)."""
    path = Path(tempfile.mkdtemp(prefix="sxb-run-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_real_services_run_restart_and_leave_nothing(
    pair: Pair, rendered: Path, shared: Path
) -> None:
    for program in ("/usr/lib/frr/bfdd", "/usr/bin/redis-server", "/usr/sbin/nginx"):
        if not Path(program).exists():
            pytest.skip(f"needs {program}")
    node_dir = shared / "edge1"
    shutil.copytree(rendered / "nodes" / "edge1", node_dir)
    edge = node_dir / "edge.yaml"  # HTTP only: no sealing key on this machine
    head, body = edge.read_text().split("\n", 1)
    cfg = json.loads(body)
    del cfg["tls"]
    edge.write_text(head + "\n" + json.dumps(cfg, indent=2) + "\n")
    password = "test-" + os.urandom(8).hex()
    (shared / "redis.pass").write_text(password + "\n")
    run, logs = shared / "run", shared / "logs"
    argv = [
        "ip", "netns", "exec", pair.node, str(Path(sys.executable).with_name("sixpod")),
        "node", "bootstrap", "--dir", str(node_dir), "--uplink", UPLINK, "--supervise",
        "--run-dir", str(run), "--state-dir", str(shared / "state"), "--log-dir", str(logs),
        "--redis-password-file", str(shared / "redis.pass"),
    ]  # fmt: skip
    with (shared / "supervisor.log").open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        names = {"zebra", "bfdd", "exabgp", "redis", "edge", "razor"}
        doc = wait_for("every service", lambda: all_running(run, names), timeout=60)

        def ns(*cmd: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ip", "netns", "exec", pair.node, *cmd],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )

        def bfd_peers() -> str:
            vty = str(run / "frr")
            return ns("vtysh", "--vty_socket", vty, "-c", "show bfd peers json").stdout.strip()

        peers = wait_for("bfdd's session", bfd_peers)
        assert json.loads(peers)[0]["peer"] == TOR
        redis = ["redis-cli", "-h", "::1", "--no-auth-warning"]

        def ping() -> str:
            return ns(*redis, "-a", password, "ping").stdout.strip()

        assert wait_for("Redis", ping) == "PONG"
        assert "NOAUTH" in ns(*redis, "ping").stdout  # the password is required
        assert password not in (run / "redis.conf").read_text()
        assert (run / "redis" / "auth.conf").stat().st_mode & 0o077 == 0
        announcer = wait_for(
            "the announcer", lambda: [p for p in netns_pids([pair.node]) if _is_announcer(p)]
        )
        assert announcer

        old = doc["services"]["redis"]["pid"]
        os.kill(old, signal.SIGKILL)
        wait_for(
            "Redis to be restarted",
            lambda: (
                (d := status(run))
                and d["services"]["redis"]["restarts"] == 1
                and ns(*redis, "-a", password, "ping").stdout.strip() == "PONG"
            ),
        )

        proc.kill()  # SIGKILL the supervisor: nothing it started may stay
        proc.wait(10)
        wait_for("the node namespace to empty", lambda: not netns_pids([pair.node]), timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


def _is_announcer(pid: int) -> bool:
    try:
        return b"announcer" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
