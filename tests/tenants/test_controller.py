"""``sixpod controller`` as a real process: HTTP over IPv6 and IPv4, the CLI, a crash mid-burst."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sixpod.lab.redisproc import RedisServer, async_wait_until, free_port, redis_server, wait_until
from sixpod.tenants.reader import ReaderSettings, TenantReader

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIXPOD = str(Path(sys.executable).with_name("sixpod"))
EDGE1 = "2001:db8:200:1"  # edge1's /64 in examples/small.lock


class Controller:
    def __init__(self, workdir: Path, primary: RedisServer, guard: dict[str, Any]) -> None:
        self.workdir = workdir
        self.port = free_port("::1")
        self.token = secrets.token_hex(16)
        (workdir / "token").write_text(self.token + "\n")
        config = {
            "listen": [f"[::1]:{self.port}", f"127.0.0.1:{self.port}"],
            "token_file": str(workdir / "token"),
            "database": f"sqlite:///{workdir / 'controller.db'}",
            "lock": str(EXAMPLES / "small.lock"),
            "redis": {"address": primary.address, "password_file": str(primary.password_file)},
            "guard": guard,
        }
        (workdir / "controller.yaml").write_text(json.dumps(config))
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://[::1]:{self.port}"

    def start(self) -> None:
        log = (self.workdir / "controller.log").open("ab")
        self.process = subprocess.Popen(
            [SIXPOD, "controller", "--config", str(self.workdir / "controller.yaml")],
            stdout=log,
            stderr=log,
        )
        log.close()
        wait_until(self._up, timeout=30, what="controller /healthz")

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError((self.workdir / "controller.log").read_text()[-3000:])
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "SIXPOD_API": self.url,
            "SIXPOD_TOKEN_FILE": str(self.workdir / "token"),
        }
        return subprocess.run(
            [SIXPOD, *args], capture_output=True, text=True, env=env, timeout=30, check=False
        )


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path, config={"repl-ping-replica-period": "1"}) as server:
        yield server


@pytest.fixture
def replica(tmp_path: Path, primary: RedisServer) -> Iterator[RedisServer]:
    with redis_server(tmp_path, replica_of=primary) as server:
        wait_until(lambda: server.info("replication")["master_link_status"] == "up")
        yield server


def start_controller(tmp_path: Path, primary: RedisServer, **guard: Any) -> Iterator[Controller]:
    c = Controller(tmp_path, primary, guard)
    try:
        c.start()
        yield c
    finally:
        c.kill(signal.SIGTERM)


@pytest.fixture
def controller(tmp_path: Path, primary: RedisServer) -> Iterator[Controller]:
    yield from start_controller(tmp_path, primary)


def test_cli_over_ipv6_and_api_over_ipv4(controller: Controller) -> None:
    r = controller.cli(
        "app", "create", "shop", "--owner", "acme", "--setting", "tls=true", "--json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["settings"] == {"tls": True}
    r = controller.cli("endpoint", "add", "shop", f"[{EDGE1}::10]:8080", f"[{EDGE1}:0:0:0:11]:8080")
    assert r.returncode == 0, r.stderr
    r = controller.cli("domain", "attach", "WWW.Shop.Example", "shop")
    assert r.returncode == 0, r.stderr
    r = controller.cli("endpoint", "list", "shop", "--json")
    assert [e["endpoint"] for e in json.loads(r.stdout)] == [
        f"[{EDGE1}::10]:8080",
        f"[{EDGE1}::11]:8080",
    ]
    r = controller.cli("endpoint", "add", "shop", "[2001:db8:dead::1]:80")
    assert r.returncode == 1
    assert "not inside any node's /64" in r.stderr
    r = controller.cli("endpoint", "add", "shop", "2001:db8::1:80")
    assert r.returncode == 1
    assert "2001:db8::1:80" in r.stderr
    r = controller.cli("vip", "set", "203.0.113.1", "blackholed", "--reason", "DDoS")
    assert r.returncode == 0, r.stderr
    v4 = httpx.get(
        f"http://127.0.0.1:{controller.port}/v1/vips",
        headers={"Authorization": f"Bearer {controller.token}"},
    )
    states = {v["address"]: v["state"] for v in v4.json()["items"]}
    assert states["203.0.113.1"] == "blackholed"
    r = controller.cli("publisher", "status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["publisher"]["active"] is True
    bad = controller.cli("app", "list", "--api", f"http://[::1]:{free_port('::1')}")
    assert bad.returncode == 1
    assert "unreachable" in bad.stderr


def test_publisher_status_exits_1_when_the_publisher_fails(
    controller: Controller, primary: RedisServer
) -> None:
    primary.stop()  # the publisher can no longer reach Redis
    wait_until(lambda: controller.cli("publisher", "status").returncode == 1, timeout=20)
    r = controller.cli("publisher", "status", "--json")
    assert r.stderr.startswith("sixpod: publisher: ")
    assert json.loads(r.stdout)["publisher"]["error"]


def test_killed_mid_burst_loses_nothing_and_replicas_converge(
    tmp_path: Path, primary: RedisServer, replica: RedisServer
) -> None:
    gen = start_controller(tmp_path, primary, app_share=1.0, pod_share=1.0)
    controller = next(gen)
    try:
        with controller.client() as http:
            assert http.post("/v1/apps", json={"name": "burst"}).status_code == 201
        acked: list[tuple[int, str, bool]] = []  # (revision, endpoint, present afterwards)
        in_flight: set[str] = set()
        stop = threading.Event()

        def writer(seed: int) -> None:
            with controller.client() as http:
                n = 0
                while not stop.is_set() and n < 5000:
                    n += 1
                    host = (seed * 7919 + n * 104729) % 400 + 1
                    text = f"[{EDGE1}::{host:x}]:80"
                    add = n % 3 != 0
                    body = (
                        {"endpoints": [{"address": f"{EDGE1}::{host:x}", "port": 80}]}
                        if add
                        else {"remove": [text]}
                    )
                    in_flight.add(text)
                    try:
                        r = http.post("/v1/apps/burst/endpoints", json=body)
                    except httpx.HTTPError:
                        return  # the controller died with this request in flight
                    if r.status_code != 200:
                        return
                    in_flight.discard(text)
                    acked.append((int(r.headers["X-Sixpod-Revision"]), text, add))

        threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) > 150, timeout=60, what="a burst of acknowledged changes")
        controller.kill(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        controller.start()
        expected: dict[str, bool] = {}
        for _rev, text, present in sorted(acked):
            expected[text] = present
        with controller.client() as http:
            listed = set()
            after = None
            while True:
                params = {"limit": 1000, **({"after": after} if after else {})}
                page = http.get("/v1/apps/burst/endpoints", params=params).json()
                listed |= {e["endpoint"] for e in page["items"]}
                after = page["next"]
                if not after:
                    break
            head = http.get("/v1/status").json()["revision"]
        for text, present in expected.items():
            if text not in in_flight:
                assert (text in listed) == present, f"acknowledged change to {text} lost"

        async def converge() -> None:
            reader = TenantReader(
                ReaderSettings(address=replica.endpoint, password_file=str(replica.password_file))
            )
            await reader.start()
            try:

                async def at_head() -> bool:
                    return reader.state.revision >= head

                await async_wait_until(at_head, timeout=20, what="the replica at the store's head")
                assert set(reader.state.upstreams_raw.get("burst", {})) == listed
            finally:
                await reader.stop()

        asyncio.run(converge())
        entries = primary.client().xrange("sixpod:log")
        for before, after_entry in itertools.pairwise(entries):
            assert int(after_entry[1]["prev"]) == int(before[1]["rev"]), "a revision applied twice"
    finally:
        for _ in gen:
            pass


def test_razor_reshard_goes_through_the_real_controller(
    tmp_path: Path, controller: Controller, primary: RedisServer
) -> None:
    """`sixpod razor attribute --reshard --api`: VIPs blackholed, the app re-sharded."""
    with controller.client() as http:
        assert http.post("/v1/apps", json={"name": "shop", "shard_seed": 3}).status_code == 201
    wait_until(lambda: primary.client().exists("sixpod:app:shop"), what="shop in Redis")
    cfg = {
        "zone": "route.example.net",
        "nameservers": [{"name": "ns1.route.example.net", "addresses": ["2001:db8:53::1"]}],
        "answers": 2,
        "shard_size": 3,
        "pool": {"lock": str(EXAMPLES / "small.lock")},
        "tenants": {"address": primary.address, "password_file": str(primary.password_file)},
    }
    (tmp_path / "razor.yaml").write_text(json.dumps(cfg))
    r = controller.cli(
        "razor", "attribute", "--config", str(tmp_path / "razor.yaml"), "203.0.113.1",
        "--reshard", "shop", "--api", controller.url,
        "--token-file", str(controller.workdir / "token"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with controller.client() as http:
        assert http.get("/v1/apps/shop").json()["shard_seed"] != 3
        states = {v["address"]: v for v in http.get("/v1/vips").json()["items"]}
    assert states["203.0.113.1"]["state"] == "blackholed"
    assert "shop" in states["203.0.113.1"]["reason"]
