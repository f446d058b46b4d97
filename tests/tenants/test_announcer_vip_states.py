"""The announcer follows the pod's VIP states from the node's Redis replica (the real
publisher, primary and replica; ExaBGP scripted): a VIP blackholed through the API is
withdrawn, stays withdrawn across a restart with the replica unreachable, and comes back
when released."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sixpod.lab.redisproc import RedisServer
from sixpod.routing.announcer import BLACKHOLED_FILE, AnnouncerDaemon
from sixpod.routing.config import AnnouncerConfig
from sixpod.tenants.model import VipSpec, VipState
from sixpod.tenants.store import Store
from tenantkit import RunningPublisher

pytestmark = pytest.mark.integration

UP = (
    '{"exabgp": "5.0.0", "type": "state", "neighbor": {"address": {"local": "2001:db8:2ff::2",'
    ' "peer": "2001:db8:2ff::1"}, "state": "up"}}\n'
)
V4 = "203.0.113.0/32"


class FakeExaBGP:
    """Records commands; acknowledges each with ``done`` like ExaBGP 5."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()
        self.commands: list[str] = []

    def write(self, data: bytes) -> None:
        for line in data.decode().splitlines():
            self.commands.append(line)
            self.reader.feed_data(b"done\n")


def config(state_dir: Path, replica: RedisServer, port: int | None = None) -> AnnouncerConfig:
    endpoint = f"[::1]:{port}" if port is not None else str(replica.endpoint)
    return AnnouncerConfig.model_validate(
        {
            "node": "edge1",
            "pod": "lab1",
            "next_hop": "2001:db8:2ff::2",
            "node_prefix": "2001:db8:200:1::/64",
            "vips": ["203.0.113.0", "2001:db8:2fe::1"],
            "manage_loopback": False,
            "state_dir": str(state_dir),
            "vip_states": {"redis": endpoint, "password_file": str(replica.password_file)},
        }
    )


async def settle(predicate: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def announced(daemon: AnnouncerDaemon) -> set[str]:
    return {str(r.prefix) for r in daemon.core.desired()}


def test_a_blackholed_vip_is_withdrawn_kept_withdrawn_across_a_restart_and_released(
    tmp_path: Path, store: Store, primary: RedisServer, replica: RedisServer
) -> None:
    state_dir = tmp_path / "announcer"

    async def main() -> None:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(state_dir, replica), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: f"announce route {V4} next-hop 2001:db8:2ff::2" in exa.commands)
        store.set_vip(VipSpec.parse("203.0.113.0", VipState.BLACKHOLED, "DDoS on shop"))
        await settle(lambda: f"withdraw route {V4} next-hop 2001:db8:2ff::2" in exa.commands)
        assert V4 not in announced(daemon)
        assert "2001:db8:2fe::1/128" in announced(daemon)
        saved = json.loads((state_dir / BLACKHOLED_FILE).read_text())
        assert saved == {"203.0.113.0": "DDoS on shop"}
        await settle(lambda: daemon.sync.converged(daemon.core.desired()))
        daemon.write_status(force=True)
        groups = json.loads((state_dir / "status.json").read_text())["route_groups"]
        [pulled] = [g for g in groups if g["cause"] == "blackholed"]
        assert pulled["state"] == "withdrawn"
        assert "DDoS on shop" in pulled["reason"]
        assert len(pulled["prefixes"]) == 1
        assert pulled["prefixes"][0].startswith("203.0.113.0")
        daemon._stopping.set()
        assert await task == 0

        # restarted with its replica unreachable: the last set it saw holds from the start
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(state_dir, replica, port=1), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        assert not any(c.startswith(f"announce route {V4}") for c in exa.commands)
        assert "2001:db8:2fe::1/128" in announced(daemon)
        daemon._stopping.set()
        assert await task == 0

        # running again with the replica: released through the API, announced again
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(state_dir, replica), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.vip_reader is not None and daemon.vip_reader.ready.is_set())
        assert V4 not in announced(daemon)
        store.set_vip(VipSpec.parse("203.0.113.0", VipState.ACTIVE))
        await settle(lambda: f"announce route {V4} next-hop 2001:db8:2ff::2" in exa.commands)
        assert json.loads((state_dir / BLACKHOLED_FILE).read_text()) == {}
        daemon._stopping.set()
        assert await task == 0

    with RunningPublisher(store, primary):
        asyncio.run(main())
