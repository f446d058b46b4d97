"""`sixpod announcer` config errors and `sixpod node` operator flags."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sixpod.cli import cli


def write_config(tmp_path: Path, **extra: object) -> Path:
    cfg = {
        "node": "edge1",
        "pod": "lab1",
        "next_hop": "2001:db8:2ff::2",
        "vips": ["203.0.113.0"],
        "state_dir": str(tmp_path / "state"),
        **extra,
    }
    path = tmp_path / "announcer.yaml"
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"next_hop": "2001::dead::beef"}, "more than one '::'"),
        ({"next_hop": "198.51.100.1"}, "is not an IPv6 address"),
        ({"vips": ["203.0.113.01"]}, "203.0.113.01"),
        ({"floor": {"min_nodes": 2}}, "needs floor.redis"),
        ({"checks": [{"name": "x", "kind": "tcp", "target": "2001:db8::1:80"}]}, "ambiguous"),
        (
            {"checks": [{"name": "x", "kind": "tcp", "target": "[::1]:80", "interval": 0.1}]},
            "fast_interval 0.2 exceeds interval 0.1",
        ),
        ({"vips": ["203.0.113.0", "203.0.113.0"]}, "vips: duplicate entries"),
        ({"next_hop": "fe80::1"}, "must be a global unicast address"),
    ],
)
def test_bad_announcer_config_is_refused_with_position(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    path = write_config(tmp_path, **extra)
    code, _, err = invoke("announcer", "--config", str(path))
    assert code == 1
    assert err.startswith(f"{path}:")
    assert message in err
    assert "Traceback" not in err


def test_drain_and_disable_flags(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    assert invoke("node", "drain", "--config", str(path))[:2] == (0, "edge1: drain set\n")
    assert (tmp_path / "state" / "drain").exists()
    assert invoke("node", "undrain", "--config", str(path))[0] == 0
    assert not (tmp_path / "state" / "drain").exists()
    assert invoke("node", "disable", "--config", str(path))[0] == 0
    assert (tmp_path / "state" / "disable").exists()
    assert invoke("node", "enable", "--config", str(path))[0] == 0
    assert not (tmp_path / "state" / "disable").exists()


def test_missing_config(tmp_path: Path) -> None:
    code, _, err = invoke("node", "drain", "--config", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "cannot read" in err


def test_flags_json_has_the_fields_of_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code, out, _ = invoke("node", "disable", "--config", str(path), "--json")
    assert code == 0
    assert json.loads(out) == {"node": "edge1", "flag": "disable", "set": True}
    code, out, _ = invoke("node", "enable", "--config", str(path), "--json")
    assert json.loads(out) == {"node": "edge1", "flag": "disable", "set": False}


STATUS = {
    "schema": "sixpod.announcer-status/1",
    "node": "edge1",
    "state": "up",
    "session": {
        "up": True,
        "peer": "2001:db8:2ff::1",
        "families": {"ipv4": False, "ipv6": True},
    },
    "routes": {"announced": {"ipv4": 0, "ipv6": 2}, "refused": {"ipv4": 1, "ipv6": 0}},
    "speaker": "alive",
    "bfd": "up",
    "checks": {"edge": "passing"},
    "problems": ["1 ipv4 routes not announced: the BGP session did not negotiate ..."],
}


def test_node_status_shows_refused_families(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code, _, err = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "the announcer has not run on this node" in err
    (tmp_path / "state").mkdir()
    status = tmp_path / "state" / "status.json"
    status.write_text(json.dumps(STATUS | {"pid": os.getpid()}))
    code, out, _ = invoke("node", "status", "--config", str(path))
    assert code == 1  # a problem
    assert out.splitlines() == [
        "node       edge1",
        "state      up",
        "session    up with 2001:db8:2ff::1; carries ipv4: NO, ipv6: yes",
        "announced  ipv4 0, ipv6 2; refused ipv4 1, ipv6 0",
        "speaker    ExaBGP alive; BFD up",
        "check      edge: passing",
        "PROBLEM    1 ipv4 routes not announced: the BGP session did not negotiate ...",
    ]
    status.write_text(json.dumps(STATUS | {"pid": os.getpid(), "problems": []}))
    code, out, _ = invoke("node", "status", "--config", str(path), "--json")
    assert code == 0
    assert json.loads(out)["running"] is True
    status.write_text(json.dumps(STATUS | {"pid": 2**22 + 12345, "problems": []}))
    code, out, _ = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "announcer NOT running" in out.splitlines()[0]
    status.write_text('{"schema": "sixpod.announcer-status/1"}')
    code, _, err = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "'node' missing" in err


def test_announcer_state_dir_is_usable_under_exabgps_umask(tmp_path: Path) -> None:
    """ExaBGP starts its API process with its daemon umask (0137): a state_dir created under it
    would be rw-r----- and, without CAP_DAC_OVERRIDE, unusable even by root."""
    path = write_config(tmp_path, manage_loopback=False)
    state = tmp_path / "state"
    res = subprocess.run(
        [str(Path(sys.executable).with_name("sixpod")), "announcer", "--config", str(path)],
        input=b"",
        capture_output=True,
        preexec_fn=lambda: os.umask(0o137),
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr.decode()
    assert stat.S_IMODE(state.stat().st_mode) == 0o755
    assert (state / "status.json").exists()
