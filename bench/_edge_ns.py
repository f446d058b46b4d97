"""The edge benchmark's network namespace, sockets made inside it, and HTTP probes.

The namespace holds the backend, the proxies and wrk. Every node /64 of the pod is made
local there (``ip -6 route add local PREFIX dev lo``, AnyIP), so one backend listening on
``[::]:PORT`` answers for every endpoint address and nothing leaves the machine. The
benchmark itself stays in the root namespace: a socket that must live in the namespace is
created by a short-lived thread that joined it (``setns`` changes only the calling thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class Netns:
    """A network namespace created by this benchmark; :meth:`delete` removes it."""

    def __init__(self, prefix: str = "sixpod-bench-edge") -> None:
        self.name = f"{prefix}-{secrets.token_hex(3)}"
        self.path = Path("/run/netns") / self.name
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=20)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, timeout=20)

    def exec_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.exec_argv(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def sysctl(self, key: str, value: str) -> None:
        r = self.run("sysctl", "-q", "-w", f"{key}={value}")
        if r.returncode != 0:
            raise RuntimeError(f"sysctl {key}={value} in {self.name}: {r.stderr.strip()}")

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a thread that joined this namespace; return its result."""
        out: list[T] = []
        err: list[BaseException] = []

        def target() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, f"setns {self.name}: {os.strerror(e)}")
                finally:
                    os.close(fd)
                out.append(fn())
            except BaseException as e:  # handed to the caller
                err.append(e)

        t = threading.Thread(target=target, name=f"netns-{self.name}")
        t.start()
        t.join()
        if err:
            raise err[0]
        return out[0]

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, timeout=20)


@contextlib.contextmanager
def namespace(vips: Sequence[str], local_prefixes: Sequence[str]) -> Iterator[Netns]:
    """A fresh namespace: lo up, the VIPs on lo, every prefix local; always deleted."""
    ns = Netns()
    try:
        ns.ip("link", "set", "lo", "up")
        for vip in vips:
            ns.ip("addr", "add", f"{vip}/128", "dev", "lo", "nodad")
        for prefix in local_prefixes:
            ns.ip("-6", "route", "add", "local", prefix, "dev", "lo")
        # a proxy that opens many upstream connections must not run out of ports
        ns.sysctl("net.ipv4.ip_local_port_range", "1024 65000")
        ns.sysctl("net.ipv4.tcp_tw_reuse", "1")
        ns.sysctl("net.core.somaxconn", "65535")
        yield ns
    finally:
        ns.delete()


class Proc:
    """A process started by the benchmark, in its own session; stopped by PID (and group)."""

    def __init__(self, argv: Sequence[str], log: Path, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
            )
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
        stop_group(self.pid, sig, timeout, self.popen)


def stop_group(
    pid: int,
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 20,
    popen: subprocess.Popen[bytes] | None = None,
) -> None:
    """Signal the process group led by ``pid``; SIGKILL the group if it is not gone in time."""

    def gone() -> bool:
        if popen is not None:
            return popen.poll() is not None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return _zombie(pid)

    if gone():
        _reap_group(pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not gone():
        time.sleep(0.02)
    _reap_group(pid)
    if popen is not None and popen.poll() is None:
        popen.wait(timeout=10)


def _reap_group(pgid: int) -> None:
    """Whatever is left of the group (workers of a master that died) is killed."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class HttpProbe:
    """One keep-alive HTTP/1.1 connection to a proxy inside the namespace (reconnects)."""

    def __init__(self, ns: Netns, ip: str, port: int, timeout: float = 2.0) -> None:
        self.ns, self.ip, self.port, self.timeout = ns, ip, port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s

        sock = self.ns.call(make)
        sock.settimeout(self.timeout)
        sock.connect((self.ip, self.port))
        conn = http.client.HTTPConnection(self.ip, self.port, timeout=self.timeout)
        conn.sock = sock
        return conn

    def get(self, host: str, path: str = "/") -> tuple[int, str]:
        """``(status, body)``; ``(0, error)`` when the connection failed twice."""
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = self._connect()
                self.conn.request("GET", path, headers={"Host": host})
                r = self.conn.getresponse()
                body = r.read().decode(errors="replace")
                if r.will_close:
                    self.close()
                return r.status, body
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt:
                    return 0, str(e)
        return 0, "unreachable"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class UnixHttp:
    """Keep-alive HTTP over a unix socket (nginx's admin API)."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path, self.timeout = path, timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self, url: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                if self.conn is None:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(self.timeout)
                    s.connect(str(self.path))
                    self.conn = http.client.HTTPConnection("admin", timeout=self.timeout)
                    self.conn.sock = s
                self.conn.request("GET", url, headers={"Host": "admin"})
                r = self.conn.getresponse()
                body = r.read()
                if r.will_close:
                    self.close()
                return r.status, body
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
