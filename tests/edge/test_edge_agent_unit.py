"""The agent's file handling, without nginx: the Lua it installs and the reload digest."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from sixpod.edge import tlsfiles
from sixpod.edge.agent import LUA_MODULE, Agent, EdgeError
from sixpod.edge.config import EdgeConfig


def _agent(tmp: Path, **extra: object) -> Agent:
    (tmp / "nginx.conf").write_text("events {}\n")
    cfg = EdgeConfig.model_validate(
        {
            **extra,
            "node": "n",
            "listen": ["[::1]:80"],
            "health": "[::1]:8081",
            "run_dir": str(tmp / "run"),
            "nginx_conf": str(tmp / "nginx.conf"),
            "lua_dir": str(tmp / "lua"),
            "access_log": str(tmp / "a.log"),
            "error_log": str(tmp / "e.log"),
            "redis": {"address": "[::1]:6379"},
        }
    )
    return Agent(cfg)


def test_the_agent_installs_its_own_lua_and_a_change_to_it_changes_the_digest(
    tmp_path: Path,
) -> None:
    agent = _agent(tmp_path)
    before = agent._conf_digest()
    agent.install_lua()
    installed = tmp_path / "lua" / LUA_MODULE
    packaged = (resources.files("sixpod.edge") / "lua" / LUA_MODULE).read_bytes()
    assert installed.read_bytes() == packaged
    assert installed.stat().st_mode & 0o777 == 0o644
    assert agent._conf_digest() != before  # nginx must reload to run the new Lua
    stamp = installed.stat().st_mtime_ns
    agent.install_lua()
    assert installed.stat().st_mtime_ns == stamp  # unchanged: not rewritten
    installed.write_text("-- an older data plane\n")
    agent.install_lua()
    assert installed.read_bytes() == packaged
    assert [p.name for p in installed.parent.iterdir()] == [LUA_MODULE]


def test_a_missing_or_wrong_sealing_key_stops_the_agent_with_its_name(tmp_path: Path) -> None:
    tls = {"listen": ["[::1]:443"], "seal_key": str(tmp_path / "edge-seal.key")}
    with pytest.raises(EdgeError, match=r"edge-seal\.key: cannot read the sealing private key"):
        _agent(tmp_path, tls=tls)
    (tmp_path / "edge-seal.key").write_text("not a key")
    with pytest.raises(EdgeError, match="mode 644: the sealing key must be readable by its owner"):
        _agent(tmp_path, tls=tls)
    (tmp_path / "edge-seal.key").chmod(0o600)
    with pytest.raises(EdgeError, match="not an unencrypted PEM private key"):
        _agent(tmp_path, tls=tls)


def test_ticket_keys_rotate_one_step_and_survive_a_restart(tmp_path: Path) -> None:
    run = str(tmp_path / "run")
    tlsfiles.prepare(run)
    keys = [tlsfiles.ticket_path(run, i).read_bytes() for i in range(3)]
    assert all(len(k) == 80 for k in keys)
    assert len(set(keys)) == 3
    assert (tlsfiles.tls_dir(run).stat().st_mode & 0o777) == 0o700
    assert (tlsfiles.ticket_path(run, 0).stat().st_mode & 0o777) == 0o600
    tlsfiles.prepare(run)  # a restart keeps them
    assert [tlsfiles.ticket_path(run, i).read_bytes() for i in range(3)] == keys
    tlsfiles.rotate(run)
    now = [tlsfiles.ticket_path(run, i).read_bytes() for i in range(3)]
    assert now[1:] == keys[:2]
    assert now[0] not in keys
    assert tlsfiles.ticket_age(run) < 5


def test_a_good_config_after_a_refused_one_clears_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused nginx.conf stops ticket rotations (a HUP would not load them) only while
    it is what nginx.conf holds: once a fixed one loads, rotations go on."""
    import asyncio

    from sixpod.edge import agent as agent_mod

    agent = _agent(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "nginx.pid").write_text("4242\n")
    (run / "nginx.conf.loaded").write_text("old\n")
    hups: list[int] = []
    monkeypatch.setattr(agent_mod.os, "kill", lambda pid, sig: hups.append(pid))

    async def nginx_t(*argv: str) -> tuple[int, str]:
        return 0, ""

    loads = iter([False, True])  # the master refuses the first, loads the second

    async def new_workers(sent: float) -> bool:
        return next(loads)

    monkeypatch.setattr(agent, "_prefixed", nginx_t)
    monkeypatch.setattr(agent, "_new_workers_since", new_workers)
    assert not asyncio.run(agent.reload_if_changed())
    assert agent.reload_failures == 1
    assert agent._refused
    (tmp_path / "nginx.conf").write_text("events {}\n# fixed\n")
    assert asyncio.run(agent.reload_if_changed())
    assert agent.reloads == 1
    assert not agent._refused  # rotate_tickets_if_due skips while this is set
    assert hups == [4242, 4242]


def test_a_reload_is_seen_by_the_monotonic_clock_not_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock stepped back an hour between the HUP and the new workers' start: the
    new worker is still new (it was called a failed reload), and an old one still old."""
    import asyncio
    import time

    import httpx

    agent = _agent(tmp_path)
    answers: list[dict[str, float]] = []

    async def get(path: str) -> httpx.Response:
        return httpx.Response(200, json=answers.pop(0))

    monkeypatch.setattr(agent.client, "get", get)
    sent = time.monotonic()
    answers[:] = [
        {"worker_started": time.time() - 7200, "worker_started_monotonic": sent - 5},  # old
        {"worker_started": time.time() - 3600, "worker_started_monotonic": sent + 0.01},
    ]
    assert asyncio.run(agent._new_workers_since(sent))
    assert not answers
