"""``sixpod razor attribute`` and the server command's exit codes (0 ok, 1 input, 2 usage)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from razorkit import V4, V6
from sixpod.cli import cli
from sixpod.razor.shard import shard

CONFIG = """\
zone: route.example.net
nameservers: [{{name: ns1.example.org}}]
answers: 4
shard_size: 8
pool: {{vips: [{vips}]}}
state_file: {state}
listen: ["127.0.0.1:{port}"]
"""


def _setup(tmp_path: Path, port: int = 5353) -> Path:
    state = tmp_path / "state.yaml"
    apps = ", ".join(f"app{i}: 0" for i in range(30))
    state.write_text(f"revision: 1\nvips: {{}}\napps: {{{apps}}}\nend: true\n")
    cfg = tmp_path / "razor.yaml"
    vips = ", ".join(f'"{ip}"' for ip in (*V4, *V6))
    cfg.write_text(CONFIG.format(vips=vips, state=state, port=port))
    return cfg


def test_attribute_ranks_the_victim(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    victim = shard("app7", 0, V6, 8)[:3]
    args = ["razor", "attribute", "--config", str(cfg), *map(str, victim)]
    r = CliRunner().invoke(cli, [*args, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["suspects"][0]["app"] == "app7"
    assert out["suspects"][0]["coverage"] == 1.0
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0
    assert "app7" in r.output.splitlines()[1]


def test_attribute_reshard_plan_and_unreachable_controller(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    victim = [str(ip) for ip in shard("app7", 0, V4, 8)[:2]]
    base = ["razor", "attribute", "--config", str(cfg), *victim, "--reshard", "app7"]
    r = CliRunner().invoke(cli, [*base, "--json"])
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)["reshard"]
    assert plan["old_seed"] == 0
    assert plan["new_seed"] >= 1
    assert sorted(plan["pull"]) == sorted(victim)
    assert not set(plan["new_shard"]) & set(victim)
    r = CliRunner().invoke(cli, base)
    assert "plan only" in r.output
    token = tmp_path / "token"
    token.write_text("t\n")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = CliRunner().invoke(
        cli, [*base, "--api", f"http://127.0.0.1:{port}", "--token-file", str(token)]
    )
    assert r.exit_code == 1
    assert f"cannot reach the controller at http://127.0.0.1:{port}" in r.output


def test_attribute_input_errors(tmp_path: Path) -> None:
    cfg = _setup(tmp_path)
    r = CliRunner().invoke(cli, ["razor", "attribute", "--config", str(cfg), "300.1.1.1"])
    assert r.exit_code == 1
    assert "300.1.1.1" in r.output
    r = CliRunner().invoke(cli, ["razor", "attribute", "--config", str(cfg), "192.0.2.1"])
    assert r.exit_code == 1
    assert "not in the pool: 192.0.2.1" in r.output
    r = CliRunner().invoke(
        cli, ["razor", "attribute", "--config", str(cfg), str(V4[0]), "--reshard", "nobody"]
    )
    assert r.exit_code == 1
    assert "no app 'nobody'" in r.output
    r = CliRunner().invoke(cli, ["razor", "attribute", str(V4[0])])
    assert r.exit_code == 2
    r = CliRunner().invoke(
        cli, ["razor", "attribute", "--config", str(cfg), str(V4[0]), "--api", "http://x"]
    )
    assert r.exit_code == 2


def test_server_command_usage_and_bad_config(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["razor"]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("zone: route.example.net\nwat: 1\n")
    r = CliRunner().invoke(cli, ["razor", "--config", str(bad)])
    assert r.exit_code == 1
    assert "bad.yaml:2:1: unknown key 'wat'" in r.output
    r = CliRunner().invoke(cli, ["razor", "--config", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 1
    assert "cannot read" in r.output
