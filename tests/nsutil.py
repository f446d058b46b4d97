"""Throwaway network namespaces for tests: create, wire with veth pairs, run, tear down.

Generic on purpose (no sixpod logic). Every name a :class:`Lab` creates starts with its unique
prefix ``sxr-<pid>-<token>``, so tests running in parallel never collide and teardown removes
exactly what this lab made: the processes it started (by PID, and any other process left in one
of its namespaces, which only its own programs can have entered), its namespaces and their
``/etc/netns/<ns>`` folders. :meth:`Lab.leftovers` lists whatever survived, for tests to assert
on. Nothing is ever created in the root namespace: veth pairs are created inside a lab
namespace and their peer is moved straight into the other one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")
T = TypeVar("T")


class LabError(RuntimeError):
    """A lab command failed; the message has the command and its output."""


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Poll ``probe`` until it returns something other than ``None``/``False`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (its parent reaps it).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Lab:
    """A set of namespaces with a shared unique prefix; a context manager that cleans up."""

    def __init__(self, tag: str = "t") -> None:
        self.prefix = f"sxr-{os.getpid()}-{tag}{secrets.token_hex(2)}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pids: set[int] = set()
        self.etc_dirs: list[Path] = []
        self.paths: list[Path] = []

    # -- building ------------------------------------------------------------------------------
    def netns(self, name: str, sysctls: Mapping[str, str] | None = None) -> str:
        """Create namespace ``<prefix>-<name>`` with ``lo`` up, DAD off, and a resolv.conf.

        ``sysctls`` are set too, before any interface exists (so ``default`` keys apply).
        """
        ns = f"{self.prefix}-{name}"
        self.namespaces.append(ns)
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=False)
        self.etc_dirs.append(etc)
        (etc / "resolv.conf").write_text("# no resolver in test namespaces\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        self.ip("netns", "add", ns)
        self.ip("-n", ns, "link", "set", "lo", "up")
        settings = {
            "net.ipv6.conf.all.accept_dad": "0",
            "net.ipv6.conf.default.accept_dad": "0",
            **(sysctls or {}),
        }
        self.run(ns, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in settings.items())])
        return ns

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """A veth pair ``ns_a:if_a`` <-> ``ns_b:if_b``, both up (created inside ``ns_a``)."""
        self.ip(
            "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b
        )
        self.ip("-n", ns_a, "link", "set", if_a, "up")
        self.ip("-n", ns_b, "link", "set", if_b, "up")

    def tempdir(self, name: str) -> Path:
        """A directory removed at teardown."""
        path = Path(f"/tmp/{self.prefix}-{name}")
        path.mkdir(mode=0o755)
        self.paths.append(path)
        return path

    # -- running -------------------------------------------------------------------------------
    @staticmethod
    def ip(*args: str, input: str | None = None) -> str:
        """Run ``ip ARGS``; raise :class:`LabError` on failure; return stdout."""
        return _run(["ip", *args], input=input)

    def sysctl(self, ns: str, key: str, value: str) -> None:
        """Set a (per-namespace) sysctl inside ``ns``."""
        self.run(ns, ["sysctl", "-q", "-w", f"{key}={value}"])

    def run(
        self, ns: str, argv: Sequence[str], *, input: str | None = None, timeout: float = 30.0
    ) -> str:
        """Run ``argv`` inside ``ns`` to completion; return stdout."""
        return _run(["ip", "netns", "exec", ns, *argv], input=input, timeout=timeout)

    def spawn(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = subprocess.PIPE,
        stderr: int | IO[bytes] | None = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``ns`` (``ip netns exec`` execs it: same PID); tracked."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdin=stdin, stdout=stdout, stderr=stderr
        )
        self.procs.append(proc)
        self.pids.add(proc.pid)
        return proc

    def adopt(self, pid: int) -> None:
        """Track a process this lab started indirectly (a daemon that forked)."""
        self.pids.add(pid)

    # -- teardown ------------------------------------------------------------------------------
    def _ns_pids(self) -> set[int]:
        pids: set[int] = set()
        for ns in self.namespaces:
            if (NETNS_RUN / ns).exists():
                try:
                    out = _run(["ip", "netns", "pids", ns])
                except LabError:
                    continue
                pids |= {int(p) for p in out.split()}
        return pids

    def _kill(self, pids: set[int], sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def close(self) -> None:
        """Stop every process, delete every namespace, folder and temp dir (bounded time)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        pids = self.pids | self._ns_pids()
        self._kill(pids, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.02)
        self._kill({p for p in pids | self._ns_pids() if _pid_alive(p)}, signal.SIGKILL)
        for ns in self.namespaces:
            if (NETNS_RUN / ns).exists():
                subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
        for etc in self.etc_dirs:
            shutil.rmtree(etc, ignore_errors=True)
        for path in self.paths:
            shutil.rmtree(path, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What of this lab still exists (empty after a clean :meth:`close`)."""
        left = [f"process {p}" for p in sorted(self.pids) if _pid_alive(p)]
        left += [f"netns {ns}" for ns in self.namespaces if (NETNS_RUN / ns).exists()]
        left += [f"folder {d}" for d in self.etc_dirs if d.exists()]
        left += [f"path {p}" for p in self.paths if p.exists()]
        try:
            listed = _run(["ip", "netns", "list"])
        except LabError:
            listed = ""
        left += [f"listed netns {line}" for line in listed.splitlines() if self.prefix in line]
        return left

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _run(argv: Sequence[str], *, input: str | None = None, timeout: float = 30.0) -> str:
    res = subprocess.run(
        list(argv), input=input, capture_output=True, text=True, check=False, timeout=timeout
    )
    if res.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr.strip()}")
    return res.stdout
