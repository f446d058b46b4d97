"""Network namespaces, links and processes for the lab, all torn down by name and PID.

Everything this module creates is recorded in a :class:`Sandbox`; :meth:`Sandbox.close`
removes it (processes by PID, namespaces and ``/etc/netns`` folders by the names created),
also after a failure half-way. Nothing is ever added to the root namespace.

Namespaces, links, addresses and routes are made through netlink with pyroute2, on a socket
opened inside the namespace (:func:`rtnl`, where its errors become :class:`LabError`). Three
things still run a program: processes start under ``ip netns exec`` (which also puts the
namespace's ``/etc/netns`` files in place), sysctls are written by ``sysctl`` inside the
namespace, and :meth:`Sandbox.ip_batch` is left for nexthop objects, which pyroute2 0.9 has
no messages for (no ``RTM_NEWNEXTHOP``, no ``RTA_NH_ID`` on routes).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from socket import AF_INET, AF_INET6
from typing import Any

from sixpod.addr import IPAddress, IPNetwork, format_ip, format_prefix
from sixpod.errors import ExceptionMap, SixpodError, map_exceptions
from sixpod.inventory.files import write_atomic

NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")

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
IFA_F_NODAD = 0x02  # linux/if_addr.h
RTPROT_BOOT = 3
"""The protocol ``ip route add`` gives a route (pyroute2's default is ``static``): routing
daemons see the lab's routes as they always did."""


class LabError(SixpodError):
    """Root of the lab's errors: it could not be built or a lab command failed. Exit 1."""

    exit_code = 1


def run(
    argv: Sequence[str], *, stdin: str | None = None, timeout: float = 30, check: bool = True
) -> str:
    """Run a command; raise :class:`LabError` with its stderr when it fails (with ``check``;
    it cannot run or times out, always)."""
    failed: ExceptionMap = {
        (OSError, subprocess.TimeoutExpired): lambda e: LabError(f"{' '.join(argv)}: {e}")
    }
    with map_exceptions(failed):
        res = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    if check and res.returncode != 0:
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


@contextlib.contextmanager
def rtnl(ns: str, what: str) -> Iterator[Any]:
    """pyroute2's ``IPRoute`` inside ``ns`` (never creating it); netlink and OS errors are
    raised as :class:`LabError` naming the namespace and ``what`` was being done."""
    from pyroute2 import IPRoute  # imported here: 0.2 s that only the lab's changes need
    from pyroute2.netlink.exceptions import NetlinkError

    if not ns or "/" in ns or ns.startswith(".") or not (NETNS_RUN / ns).exists():
        # never the root namespace (pyroute2 takes an empty name for it); and checked before
        # pyroute2 opens anything, as it would leak its event loop
        raise LabError(f"{ns!r}: {what}: no namespace of that name")
    netlink_errors: ExceptionMap = {
        NetlinkError: lambda e: LabError(
            f"{ns}: {what}: {e.args[1] if len(e.args) > 1 else os.strerror(e.code)}"
        ),
        OSError: lambda e: LabError(f"{ns}: {what}: {e.strerror or e}"),
    }
    with map_exceptions(netlink_errors), IPRoute(netns=ns, flags=0) as ipr:
        yield ipr


def _index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise OSError(errno.ENODEV, f"no link {ifname}")
    return int(found[0])


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
    journal: Path | None = None
    """Where :meth:`saved` is kept current as the sandbox grows (before each namespace is
    made, after each process starts), so that :func:`close_saved` can remove what a process
    killed half-way created; removed by a clean :meth:`close`."""

    def _write_journal(self) -> None:
        if self.journal is not None:
            write_atomic(self.journal, json.dumps(self.saved(), indent=2) + "\n")

    def shared_dir(self, name: str) -> Path:
        """A folder other users (FRR runs as ``frr``) can reach, removed by :meth:`close`."""
        path = Path(tempfile.mkdtemp(prefix=f"{self.prefix}{name}-"))
        path.chmod(0o755)
        self.tempdirs.append(path)
        self._write_journal()
        return path

    # -- namespaces and links -------------------------------------------------------------

    def netns(self, name: str, *, router: bool = False) -> str:
        ns = f"{self.prefix}{name}"
        if len(ns) > 30:
            raise LabError(f"namespace name {ns!r} is too long")
        from pyroute2 import netns as pyroute2_netns

        self.namespaces.append(ns)
        self._write_journal()
        try:
            with map_exceptions(
                {OSError: lambda e: LabError(f"namespace {ns}: {e.strerror or e}")}
            ):
                pyroute2_netns.create(ns)
        except LabError:
            self.namespaces.remove(ns)  # not ours (it may exist: never removed by this lab)
            self._write_journal()
            raise
        etc = NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("# lab namespace: no resolver\n")
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        sysctls = SYSCTLS_ALL + (SYSCTLS_ROUTER if router else ())
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls])
        self.link(ns, "lo", up=True)
        return ns

    def link(self, ns: str, ifname: str, *, up: bool) -> None:
        """Set a link up or down."""
        with rtnl(ns, f"link {ifname} {'up' if up else 'down'}") as ipr:
            ipr.link("set", index=_index(ipr, ifname), state="up" if up else "down")

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str, *, mtu: int = 1500) -> None:
        """A veth pair with one end in each namespace (created inside ``ns_a``), both up."""
        with rtnl(ns_a, f"veth {if_a} to {ns_b} {if_b}") as ipr:
            peer = {"ifname": if_b, "net_ns_fd": ns_b, "mtu": mtu}
            ipr.link("add", ifname=if_a, kind="veth", mtu=mtu, peer=peer)
            ipr.link("set", index=_index(ipr, if_a), state="up")
        self.link(ns_b, if_b, up=True)

    def addr(self, ns: str, ifname: str, *interfaces: IPv4Interface | IPv6Interface) -> None:
        """Add addresses to a link; IPv6 ones without duplicate address detection (the lab's
        links are its own), as ``ip addr add ... nodad``."""
        texts = ", ".join(f"{format_ip(i.ip)}/{i.network.prefixlen}" for i in interfaces)
        with rtnl(ns, f"address {texts} on {ifname}") as ipr:
            index = _index(ipr, ifname)
            for iface in interfaces:
                ipr.addr(
                    "add",
                    index=index,
                    address=format_ip(iface.ip),
                    prefixlen=iface.network.prefixlen,
                    flags=IFA_F_NODAD if iface.version == 6 else 0,
                )

    def route(
        self,
        ns: str,
        dst: IPNetwork,
        *,
        via: IPAddress | None = None,
        dev: str | None = None,
        src: IPAddress | None = None,
        unreachable: bool = False,
    ) -> None:
        """A route to ``dst`` through the gateway ``via`` (an IPv4 route may go via an IPv6
        gateway, RFC 8950, as ``ip route add ... via inet6 ...``), or straight out of ``dev``
        (a link-local gateway needs ``dev`` too); ``src`` is the source address the host's own
        traffic takes; ``unreachable`` makes ``dst`` a sink (as ``ip route add unreachable``)."""
        what = f"route {format_prefix(dst)}" + (f" via {format_ip(via)}" if via else "")
        what += (f" dev {dev}" if dev else "") + (" unreachable" if unreachable else "")
        with rtnl(ns, what) as ipr:
            hop: dict[str, Any] = {}
            if via is not None and dst.version == via.version:
                hop["gateway"] = format_ip(via)
            elif via is not None:
                family = AF_INET6 if via.version == 6 else AF_INET
                hop["via"] = {"family": family, "addr": format_ip(via)}
            if dev is not None:
                hop["oif"] = _index(ipr, dev)
            if src is not None:
                hop["prefsrc"] = format_ip(src)
            if unreachable:
                hop["type"] = "unreachable"
            family = AF_INET6 if dst.version == 6 else AF_INET
            ipr.route("add", dst=format_prefix(dst), family=family, proto=RTPROT_BOOT, **hop)

    def ip_batch(self, ns: str, *commands: str) -> None:
        """Apply ``ip`` commands inside ``ns`` in one batch: for nexthop objects and the
        routes that use them, which pyroute2 0.9 cannot make (see the module's note)."""
        run(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(commands) + "\n")

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
        self._write_journal()
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
            problems += _remove_namespace(ns)
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        for path in self.tempdirs:
            shutil.rmtree(path, ignore_errors=True)
        self.tempdirs.clear()
        self.processes.clear()
        self.namespaces.clear()
        if self.journal is not None and not problems:
            self.journal.unlink(missing_ok=True)
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
            problems += _remove_namespace(ns)
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    for path in state.get("tempdirs", []):
        shutil.rmtree(path, ignore_errors=True)
    return problems


def _remove_namespace(ns: str) -> list[str]:
    """Unmount and remove a namespace's name (as ``ip netns delete``); what went wrong."""
    from pyroute2 import netns as pyroute2_netns

    try:
        pyroute2_netns.remove(ns)
    except OSError as e:
        return [f"namespace {ns}: {e.strerror or e}"]
    return []


def kill_stragglers(namespaces: list[str], *, timeout: float = 5.0) -> list[str]:
    """SIGKILL, by PID, every process still inside one of ``namespaces`` (children that
    left their parent's process group, e.g. ExaBGP's API processes); wait until gone."""
    inodes = set()
    for ns in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(NETNS_RUN / ns).st_ino)
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
    if not NETNS_RUN.is_dir():
        return []
    return sorted(p.name for p in NETNS_RUN.iterdir() if p.name.startswith(prefix))
