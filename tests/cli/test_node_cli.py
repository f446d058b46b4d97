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
from sixpod.routing.liveness import SpeakerState


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


def status_doc() -> dict[str, object]:
    """A document as the announcer writes it: built by the real code, not by hand."""
    from ipaddress import IPv6Address, IPv6Network, ip_network

    from sixpod.routing.health import Announcer, CoreConfig
    from sixpod.routing.routesync import RouteSync
    from sixpod.routing.status import Changes, node_status

    vips = tuple(ip_network(v) for v in ("203.0.113.0/32", "203.0.113.1/32", "2001:db8:2fe::1"))
    cfg = CoreConfig(
        node_prefix=IPv6Network("2001:db8:200:1::/64"),
        vips=vips,
        next_hop=IPv6Address("2001:db8:2ff::2"),
        checks=(),
        drain_timeout=30.0,
        drain_med=1000,
        floor=0,
        floor_retry=5.0,
    )
    core = Announcer(config=cfg, now=0.0)
    core.negotiated(0.0, frozenset({6}))
    sync = RouteSync()
    for op in sync.plan(core.desired()):
        sync.acked(op)
    changes = Changes()
    changes.add(1_796_349_600.0, "BGP session with 2001:db8:2ff::1 up")
    return node_status(
        node="edge1",
        pid=os.getpid(),
        core=core,
        sync=sync,
        peer="2001:db8:2ff::1",
        carries=frozenset({6}),
        wall=lambda t: 1_796_349_600.0 + t,
        session_since=1_796_349_600.0,
        negotiated={"families": ["ipv4 unicast", "ipv6 unicast"], "nexthop": []},
        changes=changes,
    )


def test_node_status_shows_routes_with_reasons(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code, _, err = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "the announcer has not run on this node" in err
    (tmp_path / "state").mkdir()
    status = tmp_path / "state" / "status.json"
    doc = status_doc()
    status.write_text(json.dumps(doc))
    code, out, _ = invoke("node", "status", "--config", str(path))
    assert code == 1  # a problem
    lines = out.splitlines()
    assert lines[0] == "node       edge1"
    assert lines[1].startswith("state      up since 2026-12-04T02:00:00.000Z (")
    assert lines[2].startswith("session    up with 2001:db8:2ff::1 for ")
    assert lines[2].endswith("(since 2026-12-04T02:00:00.000Z); carries ipv4: NO, ipv6: yes")
    assert lines[3:] == [
        "negotiated ipv4 unicast, ipv6 unicast",
        "announced  ipv4 0, ipv6 2; refused ipv4 2, ipv6 0",
        "routes     node prefix 2001:db8:200:1::/64 announced: the node's own /64: announced"
        " unless stopping",
        "routes     2 ipv4 VIPs refused: the BGP session did not negotiate IPv4 unicast with an"
        " IPv6 next hop (RFC 8950 extended next hop)",
        "routes     1 ipv6 VIP announced: no checks",
        "speaker    ExaBGP unknown; BFD untouched",
        "change     2026-12-04T02:00:00.000Z  BGP session with 2001:db8:2ff::1 up",
        "PROBLEM    2 ipv4 routes not announced: the BGP session did not negotiate IPv4 unicast"
        " with an IPv6 next hop (RFC 8950 extended next hop)",
    ]
    code, out, _ = invoke("node", "status", "--config", str(path), "--routes")
    each = [line for line in out.splitlines() if line.startswith("route ")]
    assert each[1].startswith("route      203.0.113.0/32  refused: the BGP session did not")
    assert len(each) == 4
    status.write_text(json.dumps(doc | {"problems": []}))
    code, out, _ = invoke("node", "status", "--config", str(path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["running"] is True
    assert {k for k in doc if k != "problems"} < data.keys()  # the file's fields, and more
    assert [(r["prefix"], r["state"]) for r in data["route_list"]] == [
        ("2001:db8:200:1::/64", "announced"),
        ("203.0.113.0/32", "refused"),
        ("203.0.113.1/32", "refused"),
        ("2001:db8:2fe::1/128", "announced"),
    ]
    status.write_text(json.dumps(doc | {"pid": 2**22 + 12345, "problems": []}))
    code, out, _ = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "announcer NOT running" in out.splitlines()[0]
    status.write_text('{"schema": "sixpod.announcer-status/2"}')
    code, _, err = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "'node' missing" in err
    text = json.dumps(doc)
    status.write_text(text[: len(text) // 2])  # a half-written file (not renamed into place)
    code, _, err = invoke("node", "status", "--config", str(path))
    assert (code, err.startswith(f"{status}: not JSON")) == (1, True)
    status.write_text(json.dumps(doc | {"schema": "sixpod.announcer-status/1"}))
    code, _, err = invoke("node", "status", "--config", str(path))
    assert code == 1
    assert "another sixpod version" in err


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


def readme_status_example() -> str:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("#### What a node announces, and why") :]
    start = section.index("```text\n") + len("```text\n")
    return section[start : section.index("```", start)]


def test_the_readme_status_example_is_what_the_command_prints() -> None:
    """The README's example: an edge node with 512 + 512 VIPs whose degraded health check
    fails, no floor; built by the announcer's own code, rendered by the command's."""
    from ipaddress import IPv4Network, IPv6Address, IPv6Network

    from sixpod.routing.events import RunCheck
    from sixpod.routing.health import Announcer, CheckSpec, CoreConfig, Severity
    from sixpod.routing.routesync import RouteSync
    from sixpod.routing.status import Changes, format_status, node_status

    epoch = 1_796_349_600.0  # 2026-12-04T02:00:00Z at core time 0
    v4 = tuple(IPv4Network(f"198.51.{i // 256}.{i % 256}/32") for i in range(512))
    v6 = tuple(IPv6Network(f"2001:db8:ffff::{i:x}/128") for i in range(1, 513))
    check = CheckSpec(name="edge", interval=0.5, fast_interval=0.1, timeout=0.4, rise=1,
                      fall=1, severity=Severity.DEGRADED)  # fmt: skip
    cfg = CoreConfig(node_prefix=IPv6Network("2001:db8:200:1::/64"), vips=v4 + v6,
                     next_hop=IPv6Address("2001:db8:2ff::2"), checks=(check,),
                     drain_timeout=30.0, drain_med=1000, floor=0, floor_retry=5.0)  # fmt: skip
    core = Announcer(config=cfg, now=0.0)
    changes = Changes()

    def run(ok: bool, at: float, detail: str) -> None:
        core.handle_timer(at)
        [event] = [e for e in iter(core.next_event, None) if isinstance(e, RunCheck)]
        core.check_result(event.run_id, ok, at, detail)
        list(iter(core.next_event, None))

    run(True, 411.0, "HTTP 200")
    changes.add(epoch + 411.020, "BGP session with 2001:db8:2ff::1 up")
    run(False, 603.412, "HTTP 404")
    changes.add(epoch + 603.412, "check edge passing -> failing: HTTP 404")
    changes.add(epoch + 603.412, "state up -> down: degraded check failing: edge, no floor")
    sync = RouteSync()
    for op in sync.plan(core.desired()):
        sync.acked(op)
    doc = node_status(
        node="edge1",
        pid=1,
        core=core,
        sync=sync,
        peer="2001:db8:2ff::1",
        carries=frozenset({4, 6}),
        wall=lambda t: epoch + t,
        session_since=epoch + 411.020,
        negotiated={
            "families": ["ipv4 unicast", "ipv6 unicast"],
            "nexthop": ["ipv4 unicast ipv6"],
            "hold_time": 9,
            "asn4": True,
            "refresh": "enhanced",
            "message_size": 65535,
        },
        changes=changes,
        speaker=SpeakerState.ALIVE,
        bfd_shutdown=False,
    )
    shown = format_status(doc, running=True, now=epoch + 615.412)
    assert shown == readme_status_example()
