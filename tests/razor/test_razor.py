"""The real ``sixpod razor`` on loopback (127.0.0.1 and ::1, free ports), queried with
dnspython and with ``dig``: every correctness point of the issue, live state changes, RRL,
TCP, metrics. Servers are stopped by PID in ``finally``; waits poll with bounded loops."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from sixpod.razor.shard import shard

pytestmark = pytest.mark.integration

SIXPOD = str(Path(sys.executable).parent / "sixpod")
V4 = [ip_address(f"198.51.100.{i}") for i in range(1, 65)]
V6 = [ip_address(f"2001:db8:ffff::{i:x}") for i in range(1, 65)]
K = 20
S = 24
ZONE = "route.example.net"


def free_port() -> int:
    """A port free for UDP and TCP on both 127.0.0.1 and ::1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
            port = int(probe.getsockname()[1])
        try:
            for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(fam, kind) as s:
                        s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def wait_until(check: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> float:
    """Poll ``check`` until true; returns the seconds it took (bounded)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"not true after {timeout} s")


@dataclass
class Razor:
    port: int
    proc: subprocess.Popen[bytes]
    state: Path
    log: Path
    metrics_port: int

    def query(self, name: str, rdtype: str = "A", host: str = "127.0.0.1", **kw: Any
              ) -> dns.message.Message:  # fmt: skip
        q = dns.message.make_query(name, rdtype, **kw)
        return dns.query.udp(q, host, port=self.port, timeout=2)

    def tcp(self, name: str, rdtype: str = "A", host: str = "127.0.0.1") -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        return dns.query.tcp(q, host, port=self.port, timeout=2)

    def dig(self, *args: str, host: str = "127.0.0.1") -> str:
        r = subprocess.run(
            ["dig", f"@{host}", "-p", str(self.port), "+time=2", "+tries=1", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def set_state(self, vips: dict[str, str], apps: dict[str, int]) -> None:
        tmp = self.state.with_suffix(".tmp")
        self.revision = getattr(self, "revision", 0) + 1
        doc = {"revision": self.revision, "vips": vips, "apps": apps, "end": True}
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.state)  # a new inode: the change is seen whatever the mtime


@contextlib.contextmanager
def razor(tmp_path: Path, apps: dict[str, int], **extra: Any) -> Iterator[Razor]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mport = free_port()
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"revision": 0, "vips": {}, "apps": apps, "end": True}))
    cfg = {
        "zone": ZONE,
        "nameservers": [{"name": f"ns1.{ZONE}", "addresses": ["2001:db8:53::1", "192.0.2.53"]}],
        "answers": K,
        "shard_size": S,
        "customer_zones": [{"name": "shop.example", "app": "shop"}],
        "pool": {"vips": [str(ip) for ip in (*V4, *V6)]},
        "state_file": str(state),
        "state_poll": 0.1,
        "listen": [f"127.0.0.1:{port}", f"[::1]:{port}"],
        "metrics": f"127.0.0.1:{mport}",
        "rrl": None,  # one client asks many times; test_rrl_slip turns it on
        **extra,
    }
    path = tmp_path / "razor.yaml"
    path.write_text(json.dumps(cfg))
    log = tmp_path / "razor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([SIXPOD, "razor", "--config", str(path)], stdout=out, stderr=out)
    server = Razor(port, proc, state, log, mport)
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                server.query(ZONE, "SOA")
                server.query(ZONE, "SOA", host="::1")
            except (dns.exception.Timeout, OSError):
                return False
            return True

        wait_until(up, timeout=20)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Razor]:
    with razor(tmp_path, {"shop": 1, "blog": 2}) as s:
        yield s


def _ips(r: dns.message.Message) -> set[Any]:
    return {ip_address(rd.address) for rrset in r.answer if rrset.rdtype in (1, 28) for rd in rrset}


def test_apex_soa_ns_both_families(server: Razor) -> None:
    for host in ("127.0.0.1", "::1"):
        r = server.query(ZONE, "SOA", host=host)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.flags & dns.flags.AA
        assert r.answer[0].rdtype == dns.rdatatype.SOA
        r = server.query(ZONE, "NS", host=host)
        assert [str(rd.target) for rd in r.answer[0]] == [f"ns1.{ZONE}."]
        assert {rd.address for rrset in r.additional for rd in rrset} == {
            "2001:db8:53::1",
            "192.0.2.53",
        }
    out = server.dig(ZONE, "SOA", host="::1")
    assert "status: NOERROR" in out
    assert "flags: qr aa" in out
    assert "COOKIE: " in out  # dig sends a client cookie; Razor adds its server cookie


def test_nxdomain_vs_nodata(server: Razor) -> None:
    r = server.query(f"nope.{ZONE}")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    r = server.query(f"shop.{ZONE}", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert "status: NXDOMAIN" in server.dig(f"nope.{ZONE}", "A")
    out = server.dig(f"shop.{ZONE}", "TXT")
    assert "status: NOERROR" in out
    assert "ANSWER: 0" in out
    assert "AUTHORITY: 1" in out


def test_case_echoed(server: Razor) -> None:
    r = server.query("ShOp.RoUtE.eXaMpLe.NeT")
    assert r.question[0].name.to_text() == "ShOp.RoUtE.eXaMpLe.NeT."
    out = server.dig("ShOp.RoUtE.eXaMpLe.NeT", "A", "+noedns")
    assert ";ShOp.RoUtE.eXaMpLe.NeT.\t\tIN\tA" in out
    answers = [ln for ln in out.splitlines() if "\tIN\tA\t" in ln]
    assert len(answers) == K
    assert all(ln.startswith("ShOp.RoUtE.eXaMpLe.NeT.") for ln in answers)


def test_edns_buffer_tc_and_tcp(server: Razor) -> None:
    r = server.query(ZONE, "AAAA", use_edns=0, payload=4096)
    assert r.payload == 1232
    assert not r.flags & dns.flags.TC
    assert len(_ips(r)) == K
    r = server.query(ZONE, "AAAA", use_edns=0, payload=512)
    assert r.flags & dns.flags.TC
    assert not r.answer
    r = server.query(ZONE, "AAAA")  # no EDNS: 512 bytes
    assert r.flags & dns.flags.TC
    r = server.tcp(ZONE, "AAAA", host="::1")
    assert not r.flags & dns.flags.TC
    assert len(_ips(r)) == K
    out = server.dig(ZONE, "AAAA", "+bufsize=1232")
    assert "udp: 1232" in out
    assert f"ANSWER: {K}" in out
    out = server.dig(ZONE, "AAAA", "+noedns", "+ignore")
    assert "flags: qr aa tc" in out
    assert "ANSWER: 0" in out
    out = server.dig(ZONE, "AAAA", "+noedns")  # dig retries over TCP by itself
    assert f"ANSWER: {K}" in out
    assert "(TCP)" in out
    out = server.dig(ZONE, "AAAA", "+tcp", host="::1")
    assert f"ANSWER: {K}" in out


def test_minimal_any_refused_and_formerr(server: Razor) -> None:
    r = server.query(ZONE, "ANY")
    assert len(r.answer) == 1
    assert r.answer[0].rdtype == dns.rdatatype.HINFO
    assert 'HINFO\t"RFC8482" ""' in server.dig(ZONE, "ANY")
    assert server.query("example.com").rcode() == dns.rcode.REFUSED
    assert "status: REFUSED" in server.dig("example.com", "A")
    q = dns.message.make_query(ZONE, "A").to_wire()
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q + b"\x00trailing", ("::1", server.port))
        data = s.recv(4096)
        assert data[:2] == q[:2]
        assert data[3] & 0x0F == dns.rcode.FORMERR
        s.sendto(b"\x01", ("::1", server.port))  # silence for a runt, and still alive
        s.sendto(bytes(range(256)) * 3, ("::1", server.port))
    assert server.query(ZONE, "SOA").rcode() == dns.rcode.NOERROR


def test_formerr_for_a_bad_cookie_keeps_edns(server: Razor) -> None:
    """Issue 15 item 11: a malformed COOKIE option is a FORMERR that carries an OPT record
    (RFC 6891 6.1.1), so a resolver does not fall back to plain DNS."""
    bad = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"short")
    for host in ("127.0.0.1", "::1"):
        r = server.query(ZONE, "A", host=host, use_edns=0, options=[bad])
        assert r.rcode() == dns.rcode.FORMERR
        assert r.edns == 0
        assert r.payload == 1232
        assert r.question[0].name.to_text() == f"{ZONE}."


def test_notimp_keeps_edns(server: Razor) -> None:
    """Review of issue 15: NOTIMP to an EDNS query (here a NOTIFY) carries an OPT record
    (RFC 6891 7), over UDP and TCP."""
    q = dns.message.make_query(ZONE, "SOA", use_edns=0)
    q.set_opcode(dns.opcode.NOTIFY)
    for r in (
        dns.query.udp(q, "::1", port=server.port, timeout=2),
        dns.query.tcp(q, "127.0.0.1", port=server.port, timeout=2),
    ):
        assert r.rcode() == dns.rcode.NOTIMP
        assert r.edns == 0
        assert r.payload == 1232


def _raw(server: Razor, name: str, rdtype: str, host: str = "::1") -> bytes:
    q = dns.message.make_query(name, rdtype, use_edns=0)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q.to_wire(), (host, server.port))
        return s.recv(4096)


def test_names_in_record_data_are_compressed(server: Razor) -> None:
    """Issue 15 item 11: NS targets, glue owners, SOA names and CNAME targets are
    compression pointers: no longer than dnspython's own compressed encoding."""
    for name, rdtype in ((ZONE, "NS"), (ZONE, "SOA"), (f"nope.{ZONE}", "A"),
                         ("www.shop.example", "A"), ("shop.example", "MX")):  # fmt: skip
        raw = _raw(server, name, rdtype)
        assert len(raw) <= len(dns.message.from_wire(raw).to_wire()), (name, rdtype)
    assert len(_raw(server, ZONE, "NS")) == 108  # NS and 2 glue: 167 bytes uncompressed


def test_customer_zone_cname(server: Razor) -> None:
    r = server.query("www.shop.example")
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    assert _ips(r) <= set(shard("shop", 1, V4, S))
    out = server.dig("www.shop.example", "A")
    assert f"CNAME\tshop.{ZONE}." in out
    # a type the target has not: the CNAME and the route zone's SOA (cacheable NODATA)
    r = server.query("www.shop.example", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]
    assert [(rr.rdtype, rr.name.to_text()) for rr in r.authority] == [
        (dns.rdatatype.SOA, f"{ZONE}.")
    ]


def test_answers_random_within_the_shard(server: Razor) -> None:
    members = set(shard("shop", 1, V6, S))
    answers = set()
    for _ in range(60):
        got = _ips(server.query(f"shop.{ZONE}", "AAAA", use_edns=0))
        assert len(got) == K
        assert got <= members
        answers.add(frozenset(got))
    assert len(answers) > 10


def test_pulled_vip_leaves_answers_within_a_second(server: Razor) -> None:
    members = shard("shop", 1, V4, S)
    victim = members[0]
    assert any(victim in _ips(server.query(f"shop.{ZONE}")) for _ in range(50))
    server.set_state({str(victim): "blackholed", str(members[1]): "drained"}, {"shop": 1})
    start = time.monotonic()

    def gone() -> bool:
        return all(victim not in _ips(server.query(f"shop.{ZONE}")) for _ in range(5))

    took = wait_until(gone, timeout=5)
    assert took < 1.0
    assert time.monotonic() - start < 1.5
    for _ in range(100):
        got = _ips(server.query(f"shop.{ZONE}"))
        assert victim not in got
        assert members[1] not in got
    # the app is re-sharded (new seed): its answers move to the new shard
    server.set_state({}, {"shop": 7})
    new = set(shard("shop", 7, V4, S))
    wait_until(lambda: _ips(server.query(f"shop.{ZONE}")) <= new, timeout=5)


def test_sighup_rereads_the_state(tmp_path: Path) -> None:
    with razor(tmp_path, {"shop": 1}, state_poll=3600) as s:
        assert s.query(f"blog.{ZONE}").rcode() == dns.rcode.NXDOMAIN
        s.set_state({}, {"shop": 1, "blog": 0})
        s.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: s.query(f"blog.{ZONE}").rcode() == dns.rcode.NOERROR, timeout=5)


def test_rrl_slip(tmp_path: Path) -> None:
    rrl = {"responses_per_second": 5, "burst": 5, "slip": 2}
    with razor(tmp_path, {"shop": 1}, rrl=rrl) as s:
        q = dns.message.make_query(f"shop.{ZONE}", "A")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            for i in range(40):
                q.id = i
                sock.sendto(q.to_wire(), ("127.0.0.1", s.port))
            got = []
            with contextlib.suppress(TimeoutError):
                while True:
                    got.append(dns.message.from_wire(sock.recv(4096)))
        full = [r for r in got if not r.flags & dns.flags.TC]
        slipped = [r for r in got if r.flags & dns.flags.TC]
        assert 5 <= len(full) <= 7  # the burst, plus what refilled meanwhile
        assert len(slipped) >= 10  # every other limited response, truncated
        assert len(got) < 40  # the rest dropped
        # TCP is never limited
        assert s.tcp(f"shop.{ZONE}").rcode() == dns.rcode.NOERROR
        text = wait_metrics(s, "sixpod_razor_rrl_slipped_total")
        assert "sixpod_razor_rrl_dropped_total" in text


def _udp_burst(s: Razor, name: str, count: int) -> int:
    """Send ``count`` queries at once from one socket; how many were answered."""
    q = dns.message.make_query(name, "A")
    got = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        for i in range(count):
            q.id = i
            sock.sendto(q.to_wire(), ("127.0.0.1", s.port))
        with contextlib.suppress(TimeoutError):
            while True:
                sock.recv(4096)
                got += 1
    return got


def test_rrl_is_not_reset_by_a_pulled_vip(tmp_path: Path) -> None:
    """Issue 15 item 12: the rate-limit bucket is the name's and type's, so pulling a VIP
    of the app's shard (a rebuild of its answers) gives a limited client no fresh burst."""
    rrl = {"responses_per_second": 0.5, "burst": 5, "slip": 0}
    with razor(tmp_path, {"shop": 1}, rrl=rrl) as s:
        assert _udp_burst(s, f"shop.{ZONE}", 10) <= 6  # the burst, then dropped
        victim = shard("shop", 1, V4, S)[0]
        s.set_state({str(victim): "blackholed"}, {"shop": 1})

        def applied() -> bool:  # TCP is not limited; 20 of 24 shard VIPs in each answer
            return all(victim not in _ips(s.tcp(f"shop.{ZONE}")) for _ in range(12))

        wait_until(applied, timeout=5)
        assert _udp_burst(s, f"shop.{ZONE}", 5) <= 2  # what refilled meanwhile, no burst


def wait_metrics(s: Razor, name: str) -> str:
    url = f"http://127.0.0.1:{s.metrics_port}/metrics"
    box: list[str] = []

    def has() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return False
        box[:] = [text]
        lines = [ln for ln in text.splitlines() if ln.startswith(name)]
        return any(float(ln.split()[-1]) > 0 for ln in lines)

    wait_until(has, timeout=5, step=0.1)
    return box[0]


def test_metrics_and_two_workers(tmp_path: Path) -> None:
    with razor(tmp_path, {"shop": 1}, workers=2) as s:
        for _ in range(50):
            assert s.query(f"shop.{ZONE}").rcode() == dns.rcode.NOERROR
        text = wait_metrics(s, 'sixpod_razor_queries_total{transport="udp"}')
        assert "sixpod_razor_workers_up 2.0" in text
        assert 'sixpod_razor_vips{family="ipv4",state="active"} 64.0' in text
        assert 'sixpod_razor_responses_total{rcode="NOERROR"}' in text


def test_attribution_api(tmp_path: Path) -> None:
    apps = {f"app{i}": 0 for i in range(20)}
    with razor(tmp_path, apps) as s:
        hit = shard("app3", 0, V6, S)[:3]
        query = "&".join(f"vip={ip}" for ip in hit)
        url = f"http://127.0.0.1:{s.metrics_port}/v1/attribute?{query}&limit=3"
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read())
        assert doc["suspects"][0]["app"] == "app3"
        assert doc["suspects"][0]["coverage"] == 1.0
        assert len(doc["suspects"]) <= 3
        bad = f"http://127.0.0.1:{s.metrics_port}/v1/attribute?vip=192.0.2.1"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=5)
        assert e.value.code == 400
        assert "not in the pool" in e.value.read().decode()
        e.value.close()


def _hold(s: Razor, source: str) -> socket.socket:
    """A TCP connection from ``source`` (any 127/8 address works on loopback) that has had
    one answer, so the server holds it, in the order these are made."""
    c = socket.create_connection(("127.0.0.1", s.port), timeout=2, source_address=(source, 0))
    try:
        q = dns.message.make_query(ZONE, "SOA").to_wire()
        c.sendall(len(q).to_bytes(2, "big") + q)
        size = int.from_bytes(_recv(c, 2), "big")
        assert dns.message.from_wire(_recv(c, size)).rcode() == dns.rcode.NOERROR
    except BaseException:
        c.close()
        raise
    return c


def _recv(c: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        got = c.recv(n - len(out))
        assert got, "closed by the server"
        out += got
    return out


def _closed(c: socket.socket, timeout: float = 0.5) -> bool:
    """The server closed ``c`` (EOF or reset) within ``timeout`` s."""
    c.settimeout(timeout)
    try:
        return c.recv(10) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_full_worker_admits_a_newcomer(tmp_path: Path) -> None:
    """Review of issue 15 item 10: two client /24s fill the worker with idle connections; a
    newcomer (::1) is served, and the idlest connection of a biggest prefix is closed."""
    with razor(tmp_path, {"shop": 1}, tcp_max_connections=4, tcp_max_per_client=2) as s:
        held = [_hold(s, src) for src in ("127.0.1.1", "127.0.1.2", "127.0.2.1", "127.0.2.2")]
        try:
            r = s.tcp(f"shop.{ZONE}", host="::1")
            assert r.rcode() == dns.rcode.NOERROR
            assert _ips(r)
            assert _closed(held[0], timeout=2)
            assert not any(_closed(c) for c in held[1:])
            wait_metrics(s, 'sixpod_razor_tcp_evicted_total{limit="worker"}')
        finally:
            for c in held:
                c.close()


def test_one_client_cannot_lock_others_out_of_tcp(tmp_path: Path) -> None:
    """Issue 15 item 10: a client prefix holds tcp_max_per_client connections; a newcomer
    from it closes its idlest (its newest stay), and another client (::1) is served."""
    with razor(tmp_path, {"shop": 1}, tcp_max_connections=6, tcp_max_per_client=2) as s:
        held = [_hold(s, "127.0.0.1") for _ in range(5)]
        try:
            assert [_closed(c) for c in held] == [True, True, True, False, False]
            wait_metrics(s, 'sixpod_razor_tcp_evicted_total{limit="client"}')
            r = s.tcp(f"shop.{ZONE}", host="::1")
            assert r.rcode() == dns.rcode.NOERROR
            assert _ips(r)
        finally:
            for c in held:
                c.close()


def test_a_busy_worker_closes_idle_connections_sooner(tmp_path: Path) -> None:
    """Over 75 % of tcp_max_connections open, idle connections close after
    tcp_busy_idle_timeout, idlest first, until no more than 75 % are open."""
    with razor(
        tmp_path, {"shop": 1}, tcp_max_connections=4, tcp_max_per_client=2,
        tcp_busy_idle_timeout=0.3,
    ) as s:  # fmt: skip
        held = [_hold(s, f"127.0.{i}.1") for i in range(1, 5)]
        try:
            assert _closed(held[0], timeout=3)  # not the 10 s tcp_idle_timeout
            assert not any(_closed(c, timeout=1.0) for c in held[1:])
            wait_metrics(s, "sixpod_razor_tcp_idle_closed_total")
        finally:
            for c in held:
                c.close()


def test_busy_port_is_an_input_error(tmp_path: Path) -> None:
    with razor(tmp_path / "a", {"shop": 1}) as s:
        cfg = {
            "zone": ZONE,
            "nameservers": [{"name": "ns1.example.org"}],
            "pool": {"vips": ["192.0.2.1"]},
            "listen": [f"[::1]:{s.port}"],
        }
        path = tmp_path / "second.yaml"
        path.write_text(json.dumps(cfg))
        r = subprocess.run(
            [SIXPOD, "razor", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert r.returncode == 1
        assert f"listen [::1]:{s.port}" in r.stderr
        assert "in use" in r.stderr


def test_a_per_client_limit_that_protects_nothing_is_an_input_error(tmp_path: Path) -> None:
    """Review of issue 15 item 10: tcp_max_per_client >= tcp_max_connections would let one
    client prefix hold every connection of a worker: refused at load, not ignored."""
    cfg = {
        "zone": ZONE,
        "nameservers": [{"name": "ns1.example.org"}],
        "pool": {"vips": ["192.0.2.1"]},
        "listen": [f"[::1]:{free_port()}"],
        "tcp_max_connections": 50,  # the default tcp_max_per_client is 100
    }
    path = tmp_path / "razor.yaml"
    path.write_text(json.dumps(cfg))
    r = subprocess.run(
        [SIXPOD, "razor", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 1
    assert "tcp_max_per_client (100) must be below tcp_max_connections (50)" in r.stderr


def _workers(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_a_dead_worker_is_restarted(tmp_path: Path) -> None:
    with razor(tmp_path, {"shop": 1}) as s:
        [first] = _workers(s.proc.pid)
        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            kids = _workers(s.proc.pid)
            return bool(kids) and first not in kids

        wait_until(replaced, timeout=10)

        def answers() -> bool:
            try:
                return s.query(f"shop.{ZONE}").rcode() == dns.rcode.NOERROR
            except (OSError, dns.exception.DNSException):
                return False

        wait_until(answers, timeout=10)
        assert "exited" in s.log.read_text()


def metric(s: Razor, line: str) -> float:
    """The value of the sample ``line`` (name and labels) at /metrics now (0 if absent)."""
    url = f"http://127.0.0.1:{s.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=2) as r:
        text = r.read().decode()
    values = [float(ln.split()[-1]) for ln in text.splitlines() if ln.split(" ")[0] == line]
    return values[0] if values else 0.0


def test_counters_stay_monotonic_when_a_worker_restarts(tmp_path: Path) -> None:
    """Issue 15 item 12: a restarted worker carries on from its predecessor's counters, so
    the summed counters never go backwards (a Prometheus rate() would see a reset)."""
    udp = 'sixpod_razor_queries_total{transport="udp"}'
    noerror = 'sixpod_razor_responses_total{rcode="NOERROR"}'
    with razor(tmp_path, {"shop": 1}) as s:
        for _ in range(40):
            assert s.query(f"shop.{ZONE}").rcode() == dns.rcode.NOERROR
        wait_until(lambda: metric(s, udp) >= 40, timeout=5, step=0.1)
        before = metric(s, udp), metric(s, noerror)
        [first] = _workers(s.proc.pid)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: first not in _workers(s.proc.pid) and bool(_workers(s.proc.pid)))

        def answers() -> bool:
            try:
                return s.query(f"shop.{ZONE}").rcode() == dns.rcode.NOERROR
            except (OSError, dns.exception.DNSException):
                return False

        wait_until(answers, timeout=10)
        wait_until(lambda: metric(s, "sixpod_razor_workers_up") == 1, timeout=5, step=0.1)
        deadline = time.monotonic() + 2.5  # a few of the new worker's publications
        while time.monotonic() < deadline:
            assert metric(s, udp) >= before[0]
            assert metric(s, noerror) >= before[1]
            time.sleep(0.1)
        wait_until(lambda: metric(s, udp) > before[0], timeout=5, step=0.1)


def test_tcp_idle_timer_counts_whole_messages(tmp_path: Path) -> None:
    with razor(tmp_path, {"shop": 1}, tcp_idle_timeout=1.0) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            start = time.monotonic()
            c.sendall(b"\x00")  # the start of a length prefix, then a byte now and then
            with contextlib.suppress(OSError):
                for _ in range(10):
                    time.sleep(0.4)
                    c.sendall(b"\x10")
            closed = c.recv(1) == b""
        assert closed
        assert time.monotonic() - start < 4


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL of the parent (no chance to stop its workers): they go too, and the ports are
    free for a new Razor."""
    with razor(tmp_path / "one", {"shop": 1}) as s:
        workers = _workers(s.proc.pid)
        assert workers
        s.proc.kill()
        s.proc.wait(timeout=10)

        def gone() -> bool:
            for pid in workers:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    continue
                if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                    return False
            return True

        wait_until(gone, timeout=10)
