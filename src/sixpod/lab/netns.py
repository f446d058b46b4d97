"""Network namespaces, links and processes for the lab, all torn down by name and PID.

Everything this module creates is recorded in a :class:`Sandbox`; :meth:`Sandbox.close`
removes it (processes by PID, namespaces and ``/etc/netns`` folders by the names created),
also after a failure half-way. Nothing is ever added to the root namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sixpod.errors import SixpodError

NETNS_ETC = Path("/etc/netns")

SYSCTLS_ALL = (
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.keep_addr_on_down=1",
    "net.ipv6.conf.default.keep_addr_on_down=1",
    "net.ipv6.conf.all.accept_ra=0",
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv6.conf.all.autoconf=0",
    "net.ipv6.conf.default.autoconf=0",
)
SYSCTLS_ROUTER = (
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv4.fib_multipath_hash_policy=1",
    "net.ipv6.fib_multipath_hash_policy=1",
)


class LabError(SixpodError):
    """Root of the lab's errors: it could not be built or a lab command failed. Exit 1."""

    exit_code = 1


def run(argv: Sequence[str], *, stdin: str | None = None, timeout: float = 30) -> str:
    """Run a command; raise :class:`LabError` with its stderr when it fails."""
    try:
        res = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LabError(f"{' '.join(argv)}: {e}") from None
    if res.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr.strip()}")
    return res.stdout


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str
) -> None:
    """Poll ``predicate`` until it holds; raise :class:`LabError` naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    ns: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Sandbox:
    """What one lab created: namespaces, processes, pid files and folders."""

    prefix: str
    workdir: Path
    namespaces: list[str] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    tempdirs: list[Path] = field(default_factory=list)

    def shared_dir(self, name: str) -> Path:
        """A folder other users (FRR runs as ``frr``) can reach, removed by :meth:`close`."""
        path = Path(tempfile.mkdtemp(prefix=f"{self.prefix}{name}-"))
        path.chmod(0o755)
        self.tempdirs.append(path)
        return path

    # -- namespaces and links -------------------------------------------------------------

    def netns(self, name: str, *, router: bool = False) -> str:
        ns = f"{self.prefix}{name}"
        if len(ns) > 30:
            raise LabError(f"namespace name {ns!r} is too long")
        run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("# lab namespace: no resolver\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        sysctls = SYSCTLS_ALL + (SYSCTLS_ROUTER if router else ())
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])
        self.ip(ns, "link set lo up")
        return ns

    def ip(self, ns: str, *commands: str) -> None:
        """Apply ``ip`` commands inside ``ns`` in one batch."""
        run(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(commands) + "\n")

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str, *, mtu: int = 1500) -> None:
        """A veth pair with one end in each namespace (created inside ``ns_a``)."""
        self.ip(
            ns_a,
            f"link add {if_a} mtu {mtu} type veth peer name {if_b} netns {ns_b} mtu {mtu}",
            f"link set {if_a} up",
        )
        self.ip(ns_b, f"link set {if_b} up")

    # -- processes -------------------------------------------------------------------------

    def spawn(
        self,
        name: str,
        ns: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Process:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        proc = Process(name, ns, popen, log)
        self.processes.append(proc)
        return proc

    def stop(self, proc: Process, *, sig: int = signal.SIGTERM, timeout: float = 5) -> None:
        """Stop one process (and its session's children) by PID; SIGKILL if it lingers."""
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot act on sig
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left in the session

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Remove everything; return what could not be removed (empty when clean)."""
        problems: list[str] = []
        for proc in reversed(self.processes):
            try:
                self.stop(proc, timeout=3)
            except (OSError, subprocess.SubprocessError) as e:
                problems.append(f"process {proc.name} ({proc.pid}): {e}")
        problems += kill_stragglers(self.namespaces)
        for ns in reversed(self.namespaces):
            try:
                run(["ip", "netns", "delete", ns])
            except LabError as e:
                problems.append(str(e))
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        for path in self.tempdirs:
            shutil.rmtree(path, ignore_errors=True)
        self.tempdirs.clear()
        self.processes.clear()
        self.namespaces.clear()
        return problems

    def saved(self) -> dict[str, object]:
        """What :func:`close_saved` needs to remove this sandbox from another process."""
        return {
            "prefix": self.prefix,
            "namespaces": list(self.namespaces),
            "tempdirs": [str(p) for p in self.tempdirs],
            "processes": [
                {"name": p.name, "ns": p.ns, "pid": p.pid, "start": _start_time(p.pid)}
                for p in self.processes
                if p.alive()
            ],
        }


def close_saved(state: dict[str, Any]) -> list[str]:
    """Remove a sandbox saved by :meth:`Sandbox.saved`: processes by PID (only if the PID
    still belongs to the process started then), then namespaces and folders."""
    problems: list[str] = []
    for proc in reversed(state.get("processes", [])):
        pid = int(proc["pid"])
        if _start_time(pid) != proc["start"]:
            continue  # gone, or the PID now belongs to another process
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _start_time(pid) == proc["start"]:
                time.sleep(0.02)
            if _start_time(pid) != proc["start"]:
                break
        else:
            problems.append(f"process {proc['name']} ({pid}) did not stop")
    problems += kill_stragglers(state.get("namespaces", []))
    for ns in reversed(state.get("namespaces", [])):
        if ns in existing_namespaces(ns):
            try:
                run(["ip", "netns", "delete", ns])
            except LabError as e:
                problems.append(str(e))
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    for path in state.get("tempdirs", []):
        shutil.rmtree(path, ignore_errors=True)
    return problems


def kill_stragglers(namespaces: list[str], *, timeout: float = 5.0) -> list[str]:
    """SIGKILL, by PID, every process still inside one of ``namespaces`` (children that
    left their parent's process group, e.g. ExaBGP's API processes); wait until gone."""
    inodes = set()
    for ns in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(Path("/run/netns") / ns).st_ino)
    if not inodes:
        return []

    def inside() -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                inode = os.stat(entry / "ns" / "net").st_ino
            except OSError:
                continue
            if inode in inodes and _start_time(int(entry.name)) is not None:
                pids.append(int(entry.name))
        return pids

    for pid in inside():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while (left := inside()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [f"process {pid} would not leave the lab's namespaces" for pid in left]


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None if it is gone or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def existing_namespaces(prefix: str) -> list[str]:
    """Names of namespaces starting with ``prefix`` (from /run/netns, no output parsing)."""
    run_dir = Path("/run/netns")
    if not run_dir.is_dir():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith(prefix))
