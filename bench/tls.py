"""TLS handshakes at the edge with 100k certificates in the store, against nginx with one
static certificate, in the same run.

The store holds one app (its endpoint on the backend, its domain ``*.tls.bench.example``)
and 100k certificates ``d{N}.tls.bench.example`` (ECDSA P-256 leaves under one
intermediate, their keys sealed for the edge as the API stores them), bulk-inserted;
``sixpod controller`` rebuilds the Redis primary from the store, a replica follows, and
``sixpod edge-agent`` with TLS fills nginx's certificate table: the real publishing path.
nginx, the backend and the clients run in a namespace the benchmark creates (and deletes);
CPU 0: the proxy under test, CPU 1: wrk and the backend (as ``bench/edge.py``).

- **Handshakes/s**: wrk ``-t1 -c50`` for 10 s, ``Connection: close`` (every request a new
  TCP connection and a full TLS 1.3 handshake: wrk would resume sessions, so both servers
  run with tickets and the session cache off, and the access log confirms no handshake was
  resumed), SNI ``d0.tls.bench.example``, against sixpod's nginx
  (``workers: 1``, the certificate from ``ssl_certificate_by_lua``) and against nginx with
  that certificate as its one static ``ssl_certificate`` proxying to the same backend, the
  same protocols, ciphers and curves; runs alternate, ``RUNS`` each, best of each; CPU per
  handshake from the worker's utime+stime.
- **Cold SNI**: a client in the namespace does one TLS 1.3 handshake to each of 500 domains
  picked at random among the 100k (none seen by the worker before: its LRU misses, the
  value comes from the shared dict and is parsed), then one more to each (warm); p50/p99
  of each, wall clock per handshake including the client's own crypto.
- **Memory**: bytes of nginx's certificate table used per 10k certificates, nginx's PSS
  and the agent's RSS with all loaded; time from the agent's start to every certificate
  loaded (health passing).

``SIXPOD_BENCH_TLS_CERTS`` (default 100000) sets the size. About 5 minutes at 100k (most
of it making the certificates); run ``flock /tmp/sixpod-bench.lock bench/run tls`` (root).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import os
import random
import shutil
import socket
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.x509.oid import NameOID

from bench import _edge_nginx as ng
from bench._edge_ns import Netns, Proc, namespace
from bench._edge_pod import PORT, Controller, EdgeAgent, log, replica_ready, wait_for
from bench._stats import percentile
from bench.edge import CLIENT_CPU, PROXY_CPU
from bench.publish import REDIS, Pod
from sixpod import addr
from sixpod.edge.nginxconf import CIPHERS
from sixpod.inventory.lock import parse_lock
from sixpod.lab.redisproc import redis_server
from sixpod.tenants import sealed
from sixpod.tenants.model import AppSpec, EndpointSpec
from sixpod.tenants.schema import certs_t, revision_t
from sixpod.tenants.store import Store

ROOT = Path(__file__).resolve().parents[1]
CERTS = int(os.environ.get("SIXPOD_BENCH_TLS_CERTS", "100000"))
ZONE = "tls.bench.example"
RUNS = 3
SECONDS = 10
CONNECTIONS = 50
COLD = 500
STATUS_PORT = 8099
TARGETS = {"handshakes_vs_static": ">= 0.8", "cold_sni_p99_ms": "< 5"}

# wrk resumes TLS sessions; every handshake measured must be a new one, so both servers
# run with resumption off (sixpod's generated config has tickets on)
NO_RESUMPTION = (
    ("ssl_session_tickets on;", "ssl_session_tickets off;"),
    ("ssl_session_cache shared:sixpod_tls:32m;", "ssl_session_cache off;"),
)
WRK_CLOSE = """\
local req
function init(args)
    req = "GET / HTTP/1.1\\r\\nHost: " .. args[1] .. "\\r\\nConnection: close\\r\\n\\r\\n"
end
function request() return req end
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRK {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
        '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
        '"p999_us": %d, "max_us": %d, "mean_us": %.1f}\\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean))
end
"""


def domain(i: int) -> str:
    return f"d{i}.{ZONE}"


# -- certificates ---------------------------------------------------------------------


def _issuer() -> tuple[bytes, bytes, bytes]:
    """An intermediate (PEM, key PEM) and the one leaf key all the leaves share (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sixpod bench intermediate")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    traditional = serialization.PrivateFormat.TraditionalOpenSSL  # as the store keeps keys
    return (
        cert.public_bytes(pem),
        key.private_bytes(pem, pkcs8, none),
        leaf.private_bytes(pem, traditional, none),
    )


def _rows(args: tuple[range, bytes, bytes, bytes, bytes]) -> list[dict[str, Any]]:
    """Store rows for these certificate numbers (run in a worker process)."""
    numbers, ca_pem, ca_key_pem, leaf_key_pem, seal_pub_pem = args
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    leaf_key = serialization.load_pem_private_key(leaf_key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    assert isinstance(leaf_key, ec.EllipticCurvePrivateKey)
    seal_pub = serialization.load_pem_public_key(seal_pub_pem)
    assert isinstance(seal_pub, X25519PublicKey)
    key_text = leaf_key_pem.decode()
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=90)
    rows = []
    for i in numbers:
        name = domain(i)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM).decode() + ca_pem.decode()
        fp = cert.fingerprint(hashes.SHA256()).hex()
        info = {"domain": name, "names": [name], "fingerprint": fp, "chain_length": 2}
        rows.append(
            {
                "domain": name,
                "chain": chain,
                "key": sealed.seal(key_text, name, seal_pub),
                "info": json.dumps(info),
                "source": "upload",
                "not_after": until.timestamp(),
                "stored_at": time.time(),
            }
        )
    return rows


# -- the run --------------------------------------------------------------------------


class Bench:
    def __init__(self, work: Path, stack: contextlib.ExitStack) -> None:
        self.work = work
        self.stack = stack
        self.lock = parse_lock((ROOT / "examples" / "pod.lock").read_text(), "pod.lock")[0]
        vips = [addr.format_ip(v) for v in self.lock.vips6[:2]]
        self.vip_sixpod, self.vip_static = vips
        self.figures: dict[str, Any] = {"certificates": CERTS}
        self.backend_addr = Pod(self.lock).address(0)
        private, public = sealed.generate()
        self.seal_key = work / "edge-seal.key"
        self.seal_key.write_bytes(private)
        os.chmod(self.seal_key, 0o600)
        self.seal_pub = work / "edge-seal.pub"
        self.seal_pub.write_bytes(public)
        self.wrk_lua = work / "close.lua"
        self.wrk_lua.write_text(WRK_CLOSE)
        self.ns: Netns

    def proc(self, cpu: int | None, conf: Path, run: Path) -> Proc:
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        p = Proc([*pin, *self.ns.exec_argv(ng.NGINX, "-c", str(conf))], run / "stdout.log")
        self.stack.callback(p.stop)
        return p

    def setup(self) -> None:
        prefixes = [addr.format_prefix(a.prefix) for a in self.lock.nodes.values()]
        self.ns = self.stack.enter_context(namespace([self.vip_sixpod, self.vip_static], prefixes))
        # wrk takes the SNI name from its URL: names for it, in this namespace only
        hosts = Path("/etc/netns") / self.ns.name
        hosts.mkdir(parents=True)
        self.stack.callback(shutil.rmtree, hosts, True)
        (hosts / "hosts").write_text(
            f"{self.vip_sixpod} {domain(0)}\n{self.vip_static} static.{ZONE}\n"
        )
        run = self.work / "backend"
        run.mkdir()
        (run / "nginx.conf").write_text(ng.backend_conf(run, PORT, STATUS_PORT))
        self.proc(CLIENT_CPU, run / "nginx.conf", run)
        t0 = time.monotonic()
        ca_pem, ca_key, leaf_key = _issuer()
        self.chain0 = self.work / "static.crt"
        self.key0 = self.work / "static.key"
        chunks = [range(i, min(CERTS, i + 2000)) for i in range(0, CERTS, 2000)]
        pub = self.seal_pub.read_bytes()
        url = f"sqlite:///{self.work / 'tenants.db'}"
        store = Store(url, lock=self.lock, seal_key=sealed.load_public(self.seal_pub))
        store.migrate()
        store.sync_pool()
        store.create_app(AppSpec("tls"))
        store.set_endpoints("tls", [EndpointSpec.parse(self.backend_addr, PORT)])
        store.attach_domain(f"*.{ZONE}", "tls")
        with multiprocessing.get_context("fork").Pool(2) as pool:
            parts = pool.imap(_rows, [(c, ca_pem, ca_key, leaf_key, pub) for c in chunks])
            with store.engine.begin() as conn:
                for rows in parts:
                    if rows[0]["domain"] == domain(0):
                        self.chain0.write_text(rows[0]["chain"])
                        self.key0.write_bytes(leaf_key)
                    conn.execute(certs_t.insert(), rows)
                conn.execute(revision_t.update().values(value=revision_t.c.value + 1))
        self.head = store.head()
        store.close()
        self.figures["certificates_made_seconds"] = round(time.monotonic() - t0, 1)
        log(f"{CERTS} certificates in the store ({self.figures['certificates_made_seconds']} s)")
        primary = self.stack.enter_context(redis_server(self.work, host="::1", config=REDIS))
        self.replica = self.stack.enter_context(
            redis_server(self.work, host="::1", replica_of=primary, config=REDIS)
        )
        t0 = time.monotonic()
        controller = Controller(self.work, url, primary, cert_seal_key=str(self.seal_pub))
        self.stack.callback(controller.stop)
        wait_for(controller.up, 120, "the controller", 0.1)
        wait_for(lambda: replica_ready(self.replica, self.head), 900, "the replica", 0.1)
        self.figures["store_to_replica_seconds"] = round(time.monotonic() - t0, 1)

    def start_static(self) -> tuple[int, Path]:
        run = self.work / "static"
        run.mkdir()
        access = run / "access.log"
        conf = ng.plain_conf(
            run, f"[{self.vip_static}]:443 ssl", f"[{self.backend_addr}]:{PORT}", access
        )
        tls = f"""\
        ssl_certificate {self.chain0};
        ssl_certificate_key {self.key0};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {CIPHERS};
        ssl_prefer_server_ciphers off;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_session_cache off;
        ssl_session_tickets off;
"""
        conf = conf.replace("        server_name _;\n", "        server_name _;\n" + tls)
        (run / "nginx.conf").write_text(conf)
        p = self.proc(PROXY_CPU, run / "nginx.conf", run)
        wait_for(lambda: self.handshake(self.vip_static, f"static.{ZONE}") is not None, 20,
                 "static nginx")  # fmt: skip
        return ng.workers(p.pid, 1)[0], access

    def start_agent(self) -> tuple[EdgeAgent, int]:
        tls = {
            "listen": [f"[{self.vip_sixpod}]:443"],
            "seal_key": str(self.seal_key),
            "certs_dict": f"{max(64, CERTS * 4 // 1024)}m",
        }
        agent = EdgeAgent(
            self.work,
            "sixpod",
            self.replica,
            f"[{self.vip_sixpod}]:80",
            ["taskset", "-c", str(PROXY_CPU), *self.ns.exec_argv()],
            1,
            tls=tls,
        )
        self.stack.callback(agent.stop)
        conf = agent.dir / "nginx.conf"
        text = conf.read_text()
        for on, off in NO_RESUMPTION:
            assert on in text, on
            text = text.replace(on, off)
        conf.write_text(text)
        t0 = time.monotonic()
        agent.start()

        def loaded() -> bool:
            agent.check_alive()
            st = agent.state()
            agent.nginx_pid()
            return bool(st and st.get("ready") and st.get("certs_mark"))

        wait_for(loaded, 900, "every certificate in nginx", 0.05)
        self.figures["agent_start_to_certs_loaded_seconds"] = round(time.monotonic() - t0, 2)
        st = agent.state()
        assert st is not None
        used = ng_size(tls["certs_dict"]) - int(st["certs_free"])
        self.figures["certs_dict_bytes_per_10k"] = round(used / (CERTS / 10_000))
        master = agent.nginx_pid()
        assert master is not None
        assert agent.proc is not None
        pss = sum(ng.memory(p)["pss"] for p in [master, *ng.workers(master, 1)])
        self.figures["nginx_pss_mib"] = round(pss / 2**20, 1)
        self.figures["agent_rss_mib"] = round(ng.memory(agent.proc.pid)["rss"] / 2**20, 1)
        took = self.figures["agent_start_to_certs_loaded_seconds"]
        log(f"agent: every certificate loaded in {took} s")
        return agent, ng.workers(master, 1)[0]

    def handshake(self, ip: str, sni: str) -> float | None:
        """Seconds one TLS 1.3 handshake takes from the namespace, or None if refused."""

        def go() -> float | None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            try:
                with socket.create_connection((ip, 443), timeout=5) as raw:
                    t0 = time.perf_counter()
                    with ctx.wrap_socket(raw, server_hostname=sni) as s:
                        took = time.perf_counter() - t0
                        assert s.version() == "TLSv1.3"
                        return took
            except (OSError, ssl.SSLError):
                return None

        return self.ns.call(go)

    def peak(self, ip: str, sni: str, worker: int) -> dict[str, float]:
        argv = [
            *self.ns.exec_argv(), "taskset", "-c", str(CLIENT_CPU), ng.WRK, "-t1",
            f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "5s", "-s", str(self.wrk_lua),
            f"https://{sni}/", "--", sni,
        ]  # fmt: skip
        cpu0 = ng.cpu_seconds(worker)
        r = ng.run_wrk(argv, None, SECONDS)
        cpu = ng.cpu_seconds(worker) - cpu0
        return {
            "rps": r.rps,
            "cpu_us": cpu / max(1, r.requests) * 1e6,
            "errors": r.errors + r.status_errors,
        }

    def cold(self, rng: random.Random) -> None:
        picks = rng.sample(range(1, CERTS), min(COLD, CERTS - 1))
        cold = [self.handshake(self.vip_sixpod, domain(i)) for i in picks]
        warm = [self.handshake(self.vip_sixpod, domain(i)) for i in picks]
        refused = sum(1 for t in cold + warm if t is None)
        c = [t * 1000 for t in cold if t is not None]
        w = [t * 1000 for t in warm if t is not None]
        f = self.figures
        f["cold_sni_handshakes"] = len(c)
        f["cold_sni_refused"] = refused
        f["cold_sni_p50_ms"] = round(percentile(c, 0.5), 3)
        f["cold_sni_p99_ms"] = round(percentile(c, 0.99), 3)
        f["warm_sni_p50_ms"] = round(percentile(w, 0.5), 3)
        f["warm_sni_p99_ms"] = round(percentile(w, 0.99), 3)
        log(f"cold SNI p99 {f['cold_sni_p99_ms']} ms, warm p99 {f['warm_sni_p99_ms']} ms")


def ng_size(text: str) -> int:
    unit = {"k": 2**10, "m": 2**20}.get(text[-1].lower(), 1)
    return int(text.rstrip("kKmM")) * unit


def _resumed(log_path: Path) -> tuple[int, int]:
    new = resumed = 0
    with log_path.open() as f:
        for line in f:
            r = json.loads(line).get("tls_resumed")
            if r == "r":
                resumed += 1
            elif r == ".":
                new += 1
    return new, resumed


def measure(b: Bench) -> None:
    b.setup()
    f = b.figures
    static_worker, _ = b.start_static()
    agent, worker = b.start_agent()
    assert b.handshake(b.vip_sixpod, domain(0)) is not None
    b.peak(b.vip_sixpod, domain(0), worker)  # warm-up
    b.peak(b.vip_static, f"static.{ZONE}", static_worker)
    runs: dict[str, list[dict[str, float]]] = {"static": [], "sixpod": []}
    for _ in range(RUNS):
        runs["static"].append(b.peak(b.vip_static, f"static.{ZONE}", static_worker))
        runs["sixpod"].append(b.peak(b.vip_sixpod, domain(0), worker))
        log(
            f"handshakes/s: static {runs['static'][-1]['rps']:.0f} "
            f"({runs['static'][-1]['cpu_us']:.1f} us), sixpod {runs['sixpod'][-1]['rps']:.0f} "
            f"({runs['sixpod'][-1]['cpu_us']:.1f} us)"
        )
    for name, rs in runs.items():
        f[f"{name}_handshakes_per_second"] = round(max(r["rps"] for r in rs))
        f[f"{name}_handshakes_each_run"] = [round(r["rps"]) for r in rs]
        f[f"{name}_cpu_us_per_handshake"] = round(statistics.median(r["cpu_us"] for r in rs), 1)
        f[f"{name}_errors"] = int(sum(r["errors"] for r in rs))
    new, resumed = _resumed(agent.access_log)
    f["sixpod_new_sessions"], f["sixpod_resumed_sessions"] = new, resumed
    b.cold(random.Random(7))
    st = agent.state() or {}
    f["tls_refused"] = st.get("tls_refused")
    f["sixpod_error_log_lines"] = sum(
        1 for line in (agent.dir / "error.log").read_text().splitlines() if "[error]" in line
    )


def run() -> dict[str, Any]:
    if os.geteuid() != 0:
        raise SystemExit("bench tls needs root (network namespace)")
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="sixpod-bench-tls-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        os.chmod(tmp, 0o755)  # nginx workers (user nobody) read the Lua module below it
        b = Bench(Path(tmp), stack)
        b.figures["loadavg_1m_at_start"] = round(load, 2)
        try:
            measure(b)
        except BaseException:
            log("failed; figures so far: " + json.dumps(b.figures))
            raise
        f = b.figures
    f["bench_seconds"] = round(time.monotonic() - t0)
    ratios = {
        "handshakes_vs_static": round(
            f["sixpod_handshakes_per_second"] / f["static_handshakes_per_second"], 3
        ),
        "cpu_per_handshake_vs_static": round(
            f["sixpod_cpu_us_per_handshake"] / f["static_cpu_us_per_handshake"], 3
        ),
    }
    values = {**ratios, "cold_sni_p99_ms": f["cold_sni_p99_ms"]}
    return {
        "figures": f,
        "anchors": {
            "static_handshakes_per_second": f["static_handshakes_per_second"],
            "static_cpu_us_per_handshake": f["static_cpu_us_per_handshake"],
        },
        "ratios": ratios,
        "targets": {k: {"value": values[k], "target": t} for k, t in TARGETS.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run()))
