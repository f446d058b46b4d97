"""Helpers for the ACME tests: a real pebble CA, a tiny DNS server pebble resolves through,
and what answers its HTTP-01 requests from the published state: the real edge (agent and
nginx) on loopback, or a small responder over the real tenant reader."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pki
from sixpod import addr
from sixpod.edge.config import EdgeConfig
from sixpod.edge.nginxconf import nginx_conf
from sixpod.lab.redisproc import RedisServer, free_port
from sixpod.tenants.reader import ReaderSettings, TenantReader

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
SIXPOD = str(Path(sys.executable).with_name("sixpod"))
LUA = Path(__file__).resolve().parents[1] / "src" / "sixpod" / "edge" / "lua"


def need_pebble() -> None:
    if not os.access(PEBBLE, os.X_OK):
        pytest.skip("Debian's pebble is not installed (scripts/setup installs it)")


def _tls_for_loopback(where: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it: pebble's own HTTPS."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sixpod test pebble CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = where / "ca.pem", where / "cert.pem", where / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class ToyDns:
    """An authoritative-only toy: A 127.0.0.1 and AAAA ::1 for every name, on loopback UDP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA
            for q in query.question:
                self.queries.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype)))
                value = {dns.rdatatype.A: "127.0.0.1", dns.rdatatype.AAAA: "::1"}.get(q.rdtype)
                if value is not None:
                    reply.answer.append(
                        dns.rrset.from_text(
                            q.name, 60, "IN", dns.rdatatype.to_text(q.rdtype), value
                        )
                    )
            with contextlib.suppress(OSError):
                self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class Pebble:
    """Debian's pebble on loopback, validating HTTP-01 for real on ``http_port``."""

    def __init__(self, where: Path, *, http_port: int, dns_port: int) -> None:
        need_pebble()
        where.mkdir(parents=True, exist_ok=True)
        self.where = where
        self.ca_bundle, cert, key = _tls_for_loopback(where)
        self.port = free_port()
        self.config = where / "pebble.json"
        self.config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{self.port}",
                        "managementListenAddress": f"127.0.0.1:{free_port()}",
                        "certificate": str(cert),
                        "privateKey": str(key),
                        "httpPort": http_port,
                        "tlsPort": free_port(),
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        self.dns_port = dns_port
        self.log = where / "pebble.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def start(self) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if k != "PEBBLE_VA_ALWAYS_VALID"},
            "PEBBLE_VA_NOSLEEP": "1",  # no random wait before validating
            "PEBBLE_WFE_NONCEREJECT": "0",  # no random badNonce
            "PEBBLE_AUTHZREUSE": "0",  # every order validates its challenge
        }  # and validates for real: an inherited PEBBLE_VA_ALWAYS_VALID is dropped
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    PEBBLE,
                    "-config",
                    str(self.config),
                    "-dnsserver",
                    f"127.0.0.1:{self.dns_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.where,
            )
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pebble exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.directory, verify=self.ca_bundle, timeout=2).ok:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"pebble did not answer: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class Responder:
    """HTTP-01 from the published state: a real TenantReader (certs=True) on ``server``,
    and a tiny HTTP/1.1 server on 127.0.0.1 and ::1 answering
    ``GET /.well-known/acme-challenge/TOKEN`` with the key authorization it holds."""

    PREFIX = "/.well-known/acme-challenge/"

    def __init__(
        self, server: RedisServer, *, port: int, prefix: str = "sixpod", wait: bool = True
    ) -> None:
        self.port = port
        self.wait = wait
        """Whether entering waits for the reader's first state (Redis built already)."""
        self.requests: list[tuple[str, str, int]] = []
        self.reader = TenantReader(
            ReaderSettings(
                address=addr.parse_endpoint(server.address),
                password_file=str(server.password_file),
                prefix=prefix,
                certs=True,
            )
        )
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Responder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=20)
        return self

    async def _start(self) -> None:
        await self.reader.start()
        if self.wait:
            await asyncio.wait_for(self.reader.ready.wait(), 15)
        for host in ("127.0.0.1", "::1"):
            self._servers.append(await asyncio.start_server(self._serve, host, self.port))

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            line, *fields = head.decode("latin-1").split("\r\n")
            method, path, _ = line.split(" ", 2)
            host = next(
                (
                    v.strip()
                    for k, _, v in (f.partition(":") for f in fields)
                    if k.lower() == "host"
                ),
                "",
            )
            value = None
            if method == "GET" and path.startswith(self.PREFIX):
                value = self.reader.state.challenges.get(path[len(self.PREFIX) :])
            status = 200 if value is not None else 404
            self.requests.append((host, path, status))
            body = (value or "not found").encode()
            reason = "OK" if status == 200 else "Not Found"
            w.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await w.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            w.close()

    def __exit__(self, *exc: object) -> None:
        async def _stop() -> None:
            for s in self._servers:
                s.close()
                await s.wait_closed()
            await self.reader.stop()

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(timeout=20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def dns_server() -> Iterator[ToyDns]:
    server = ToyDns()
    try:
        yield server
    finally:
        server.close()


class LoopbackEdge:
    """The real edge (``sixpod edge-agent`` supervising nginx) on loopback in this namespace:
    HTTP on ``http_port`` (where pebble validates), HTTPS on ``tls_port``, following
    ``replica``. No backends: ACME needs only what nginx answers itself."""

    def __init__(self, where: Path, replica: RedisServer, *, http_port: int) -> None:
        where.mkdir(parents=True, exist_ok=True)
        self.where = where
        self.http_port = http_port
        self.tls_port = free_port()
        self.health_port = free_port("::1")
        seal = where / "edge-seal.key"
        seal.write_bytes(
            pki.SEAL_PRIVATE.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        seal.chmod(0o600)
        data = {
            "node": "edge1",
            "listen": [f"[::1]:{http_port}", f"127.0.0.1:{http_port}"],
            "health": f"[::1]:{self.health_port}",
            "run_dir": str(where / "run"),
            "nginx_conf": str(where / "nginx.conf"),
            "lua_dir": str(LUA),
            "access_log": str(where / "access.log"),
            "error_log": str(where / "error.log"),
            "nonlocal_bind": False,  # loopback addresses only: leave this host's sysctl alone
            "workers": 2,
            "check_interval": 0.2,
            "redis": {
                "address": f"[::1]:{replica.port}",
                "password_file": str(replica.password_file),
            },
            "tls": {
                "listen": [f"[::1]:{self.tls_port}", f"127.0.0.1:{self.tls_port}"],
                "seal_key": str(seal),
                "certs_dict": "4m",
            },
        }
        cfg = EdgeConfig.model_validate(data)
        (where / "nginx.conf").write_text(nginx_conf(cfg))
        (where / "edge.yaml").write_text(json.dumps(data))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LoopbackEdge:
        with (self.where / "agent.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [SIXPOD, "edge-agent", "--config", str(self.where / "edge.yaml")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge agent exited: {self.log()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"edge not healthy: {self.log()}")

    def log(self) -> str:
        return (self.where / "agent.log").read_text()[-3000:]

    def healthy(self) -> bool:
        try:
            url = f"http://[::1]:{self.health_port}/healthz"
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def challenge_requests(self) -> list[dict[str, object]]:
        """The access log's entries for ``/.well-known/acme-challenge/`` (what pebble asked)."""
        path = self.where / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        entries = [json.loads(line) for line in lines]
        return [e for e in entries if str(e["uri"]).startswith("/.well-known/acme-challenge/")]

    def served_fingerprint(self, sni: str) -> str | None:
        """The SHA-256 fingerprint of the certificate the edge's HTTPS serves for ``sni``."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with (
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname=sni) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError):
            return None
        return None if der is None else hashlib.sha256(der).hexdigest()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        pid_file = self.where / "run" / "nginx.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            end = time.monotonic() + 10
            while pid_file.exists() and time.monotonic() < end:
                time.sleep(0.05)
