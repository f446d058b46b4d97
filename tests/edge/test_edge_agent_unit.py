"""The agent's file handling, without nginx: the Lua it installs and the reload digest."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sixpod.edge.agent import LUA_MODULE, Agent
from sixpod.edge.config import EdgeConfig


def _agent(tmp: Path) -> Agent:
    (tmp / "nginx.conf").write_text("events {}\n")
    cfg = EdgeConfig.model_validate(
        {
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
