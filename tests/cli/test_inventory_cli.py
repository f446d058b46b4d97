"""The inventory verbs end to end: check, allocate, render, status; old files survive errors."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sixpod.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOLDEN = Path(__file__).resolve().parents[1] / "inventory" / "golden"


@pytest.fixture
def pod(tmp_path: Path) -> Path:
    path = tmp_path / "pod.yaml"
    shutil.copy(EXAMPLES / "small.yaml", path)
    return path


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


NO_FLOOR = (
    "pod.floor is off: the 2 nodes announcing the VIPs check their Redis replica, so when the "
    "pod's Redis primary stops every one of them withdraws the VIPs at once (the pod goes "
    "dark); set pod.floor.min_nodes and pod.floor.redis"
)


def floorless(text: str) -> str:
    """The small example without its floor line."""
    out = re.sub(r"  floor: .*\n", "", text, count=1)
    assert out != text
    return out


def test_check_ok(pod: Path) -> None:
    code, out, _ = run("check", pod)
    assert code == 0
    assert out == f"{pod}: ok (1 rack, 3 nodes, 0 warnings, 2 notes; no lock yet)\n"
    code, out, err = run("check", pod, "--json")
    assert code == 0
    notes = [line.split(": note: ", 1)[1] for line in err.splitlines()]
    assert json.loads(out) == {
        "file": str(pod),
        "ok": True,
        "racks": 1,
        "nodes": 3,
        "lock": "none",
        "errors": [],
        "warnings": [],
        "notes": [
            {"file": str(pod), "line": 9, "column": 20, "message": notes[0]},
            {"file": str(pod), "line": 10, "column": 20, "message": notes[1]},
        ],
    }
    run("allocate", pod)
    assert run("check", pod)[1].endswith("; lock current)\n")
    pod.write_text(
        pod.read_text().replace(
            "port: swp3}", "port: swp3}\n  - {name: a2, rack: r1, role: internal, port: swp4}"
        )
    )
    code, out, err = run("check", pod, "--json")
    assert json.loads(out)["lock"] == "out of date"
    assert "`sixpod allocate" in err


def test_check_error_exit_1_with_position(pod: Path) -> None:
    pod.write_text(pod.read_text().replace("port: swp3}", "port: swp9}"))
    code, _out, err = run("check", pod)
    assert code == 1
    line = (
        pod.read_text().splitlines().index("  - {name: app1, rack: r1, role: internal, port: swp9}")
    )
    assert err.startswith(f"{pod}:{line + 1}:50: ")
    assert "r1-tor has no port swp9" in err


def test_check_json_carries_every_message_on_failure(pod: Path) -> None:
    pod.write_text(
        pod.read_text()
        .replace("port: swp3}", "port: swp9}")
        .replace("swp2}", "swp2, mtu: 1500, nic: e1000}")
    )
    code, out, err = run("check", pod)
    assert code == 1
    assert out == ""
    code, out, json_err = run("check", pod, "--json")
    assert code == 1  # unchanged, and stderr says the same as without --json
    assert json_err == err
    data = json.loads(out)
    assert data["ok"] is False
    assert (data["racks"], data["nodes"], data["lock"]) == (None, None, None)
    assert [f"{d['file']}:{d['line']}:{d['column']}: {d['message']}" for d in data["errors"]] == [
        line for line in err.splitlines() if ": warning: " not in line
    ]
    assert [
        f"{d['file']}:{d['line']}:{d['column']}: warning: {d['message']}" for d in data["warnings"]
    ] == [line for line in err.splitlines() if ": warning: " in line]
    assert data["errors"]
    assert data["warnings"]
    assert data["notes"] == []  # not printed when the check fails: noise next to errors


def test_check_json_when_the_file_is_missing(tmp_path: Path) -> None:
    code, out, err = run("check", tmp_path / "nope.yaml", "--json")
    assert code == 1
    assert json.loads(out)["errors"] == [
        {"file": None, "line": None, "column": None, "message": err.strip()}
    ]


def test_missing_file_exit_1(tmp_path: Path) -> None:
    code, _, err = run("check", tmp_path / "nope.yaml")
    assert code == 1
    assert "no such file" in err


def test_usage_error_exit_2() -> None:
    code, _, _ = run("check")
    assert code == 2


def test_allocate_creates_then_keeps_lock(pod: Path) -> None:
    lock = pod.with_suffix(".lock")
    code, out, _ = run("allocate", pod)
    assert code == 0
    assert out == f"{lock}: created (3 nodes, 1 rack, 4 IPv4 VIPs, 4 IPv6 VIPs)\n"
    text = lock.read_text()
    stat = lock.stat()
    code, out, _ = run("allocate", pod)
    assert code == 0
    assert out == f"{lock}: unchanged\n"
    code, out, _ = run("allocate", pod, "--json")
    none = {"nodes": 0, "racks": 0, "ipv4_vips": 0, "ipv6_vips": 0}
    assert json.loads(out) == {
        "lock": str(lock),
        "result": "unchanged",
        "added": none,
        "freed": none,
    }
    assert lock.read_text() == text
    assert lock.stat().st_mtime_ns == stat.st_mtime_ns


def test_allocate_reports_added_and_freed(pod: Path) -> None:
    run("allocate", pod)
    pod.write_text(
        pod.read_text().replace(
            "  - {name: app1, rack: r1, role: internal, port: swp3}\n",
            "  - {name: app2, rack: r1, role: internal, port: swp4}\n",
        )
    )
    code, out, _ = run("allocate", pod)
    assert code == 0
    assert out.endswith(": 1 node added, 1 node freed\n")


def test_broken_inventory_leaves_lock_and_render_intact(pod: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    run("allocate", pod)
    run("render", pod, "--out", out_dir)
    before_lock = pod.with_suffix(".lock").read_bytes()
    before_out = snapshot(out_dir)
    pod.write_text(pod.read_text().replace("port: swp3}", "port: swp2}"))
    for args in (("allocate", pod), ("render", pod, "--out", out_dir)):
        code, _, err = run(*args)
        assert code == 1
        assert "already used by node edge2" in err
    assert pod.with_suffix(".lock").read_bytes() == before_lock
    assert snapshot(out_dir) == before_out
    assert sorted(os.listdir(tmp_path)) == ["out", "pod.lock", "pod.yaml"]


def test_broken_lock_is_reported_and_kept(pod: Path) -> None:
    run("allocate", pod)
    lock = pod.with_suffix(".lock")
    broken = lock.read_text().replace("node_asn: 64512", "node_asn: lots")
    lock.write_text(broken)
    code, _, err = run("allocate", pod)
    assert code == 1
    assert f"{lock}:5:11: expected a number" in err
    assert lock.read_text() == broken


def test_render_needs_a_current_lock(pod: Path, tmp_path: Path) -> None:
    code, _, err = run("render", pod, "--out", tmp_path / "out")
    assert code == 1
    assert "run `sixpod allocate" in err
    run("allocate", pod)
    pod.write_text(pod.read_text() + "  - {name: app2, rack: r1, role: internal, port: swp4}\n")
    code, _, err = run("render", pod, "--out", tmp_path / "out")
    assert code == 1
    assert "out of date" in err
    assert not (tmp_path / "out").exists()


def test_render_replaces_the_tree(pod: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    run("allocate", pod)
    code, out, _ = run("render", pod, "--out", out_dir)
    assert code == 0
    assert out == f"{out_dir}: 4 devices, 71 files\n"
    code, out, _ = run("render", pod, "--out", out_dir, "--json")
    assert json.loads(out) == {"out": str(out_dir), "devices": 4, "files": 71}
    pod.write_text(
        pod.read_text().replace("  - {name: app1, rack: r1, role: internal, port: swp3}\n", "")
    )
    run("allocate", pod)
    run("render", pod, "--out", out_dir)
    assert sorted({f.rsplit("/", 1)[0] for f in snapshot(out_dir)}) == [
        ".sixpod-render",
        "nodes/edge1",
        "nodes/edge1/network",
        "nodes/edge1/systemd",
        "nodes/edge2",
        "nodes/edge2/network",
        "nodes/edge2/systemd",
        "prometheus",
        "prometheus/targets",
        "tors/r1-tor",
    ]


def test_render_matches_golden_files(pod: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    run("allocate", pod)
    run("render", pod, "--out", out_dir)
    got = snapshot(out_dir)
    golden = GOLDEN / "small"
    if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(out_dir, golden)
        shutil.copy(pod.with_suffix(".lock"), GOLDEN / "small.lock")
    assert got == snapshot(golden)
    assert pod.with_suffix(".lock").read_bytes() == (GOLDEN / "small.lock").read_bytes()


FLOOR = (
    "  name: lab1\n  floor:\n    min_nodes: 1\n"
    '    redis: "[2001:db8:200::2]:6379"\n'
    "    password_file: /etc/sixpod/redis.pass\n"
    "    ttl: 3\n"
)


def test_the_safety_floor_is_a_pod_setting_rendered_for_the_vip_nodes(
    pod: Path, tmp_path: Path
) -> None:
    from sixpod.inventory.load import load_model
    from sixpod.routing.announcer import core_config
    from sixpod.routing.config import AnnouncerConfig

    pod.write_text(floorless(pod.read_text()).replace("  name: lab1\n", FLOOR, 1))
    assert run("check", pod)[0] == 0
    run("allocate", pod)
    assert run("render", pod, "--out", tmp_path / "out")[0] == 0
    floors = {}
    for node in ("edge1", "edge2", "app1"):
        path = tmp_path / f"out/nodes/{node}/announcer.yaml"
        cfg = load_model(path.read_text(), str(path), AnnouncerConfig)  # what the announcer reads
        core_config(cfg)
        floors[node] = cfg.floor
    assert floors["edge1"] == floors["edge2"]
    assert floors["edge1"].min_nodes == 1
    assert str(floors["edge1"].redis) == "[2001:db8:200::2]:6379"
    assert floors["edge1"].password_file == "/etc/sixpod/redis.pass"
    assert floors["edge1"].ttl == 3.0
    assert floors["app1"].min_nodes == 0  # announces no VIPs: never asks the floor


def test_a_pod_whose_edges_check_their_replica_without_a_floor_is_warned(pod: Path) -> None:
    # with the floor off, the Redis primary stopping withdraws every edge node at once
    assert "warning" not in run("check", pod)[2]  # the example has a floor
    pod.write_text(floorless(pod.read_text()))
    code, _, err = run("check", pod)
    assert code == 0
    assert f"warning: {NO_FLOOR}" in err
    one_edge = pod.read_text().replace(
        "edge2, rack: r1, role: edge", "edge2, rack: r1, role: internal"
    )
    pod.write_text(one_edge)
    assert "warning" not in run("check", pod)[2]  # one node: no pod-wide outage to guard


def test_a_floor_without_redis_is_an_error_naming_the_key(pod: Path) -> None:
    text = floorless(pod.read_text())
    pod.write_text(text.replace("  name: lab1\n", "  name: lab1\n  floor: {min_nodes: 1}\n", 1))
    code, _, err = run("check", pod)
    assert code == 1
    assert "pod.floor.min_nodes: 1 needs pod.floor.redis" in err
    pod.write_text(text.replace("  name: lab1\n", FLOOR.replace("min_nodes: 1", "min_nodes: 2")))
    code, _, err = run("check", pod)
    assert code == 0
    assert "warning: pod.floor.min_nodes: 2 with 2 nodes announcing the VIPs" in err
    pod.write_text(text.replace("  name: lab1\n", FLOOR.replace("[2001:db8:200::2]", "192.0.2.1")))
    code, _, err = run("check", pod)
    assert code == 1
    assert "pod.floor.redis" in err
    assert "[IPv6]:port" in err


def test_render_documents(pod: Path, tmp_path: Path) -> None:
    run("allocate", pod)
    run("render", pod, "--out", tmp_path / "out")
    edge = json.loads((tmp_path / "out/nodes/edge1/device.json").read_text())
    app = json.loads((tmp_path / "out/nodes/app1/device.json").read_text())
    tor = json.loads((tmp_path / "out/tors/r1-tor/device.json").read_text())
    assert edge["schema"] == "sixpod.node/1"
    assert edge["announce"]["vips"]["ipv4"] == [
        "203.0.113.0",
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
    ]
    assert app["announce"]["vips"] == {"ipv4": [], "ipv6": []}
    assert app["announce"]["prefixes"] == [app["prefix"]]
    assert edge["uplink"]["peer"]["asn"] == tor["asn"]
    assert edge["bgp"]["asn"] == tor["neighbors"][0]["asn"]
    assert [n["node"] for n in tor["neighbors"]] == ["app1", "edge1", "edge2"]
    assert len(tor["ports"]) == 8


def test_status_json(pod: Path) -> None:
    run("allocate", pod)
    code, out, _ = run("status", pod, "--json")
    assert code == 0
    s = json.loads(out)
    assert s["vips"] == {"ipv4": 4, "ipv6": 4}
    assert [r["asn"] for r in s["racks"]] == [64513]
    assert s["node_asn"] == 64512
    assert s["nodes"][0] == {
        "name": "edge1",
        "rack": "r1",
        "role": "edge",
        "prefix": "2001:db8:200:1::/64",
        "uplink": "2001:db8:2ff::2",
        "vips": True,
    }


def test_status_table(pod: Path) -> None:
    run("allocate", pod)
    code, out, _ = run("status", pod)
    assert code == 0
    assert "pod lab1" in out
    assert "2001:db8:200:1::/64" in out


def test_status_table_prints_addresses_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    shutil.copy(EXAMPLES / "pod.yaml", path)
    run("allocate", path)
    code, out, _ = run("status", path)
    assert code == 0
    assert "2001:db8:100:a::/64" in out  # not an emoji, not truncated
    assert "2001:db8:1ff:b::2" in out


@pytest.mark.parametrize("name", ["pod", "small"])
def test_committed_example_locks_are_current(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    shutil.copy(EXAMPLES / f"{name}.yaml", path)
    shutil.copy(EXAMPLES / f"{name}.lock", tmp_path / f"{name}.lock")
    code, out, _ = run("allocate", path)
    assert code == 0
    assert out.strip().endswith("unchanged")


def _upstream(link: str) -> str:
    return (
        "ports: [swp1-swp8], upstreams: "
        f'[{{name: spine1, port: swp8, address: "{link}1", local: "{link}2/64", asn: 65000}}]}}'
    )


# Broken copies of examples/small.yaml: (name, text to replace, replacement). What
# `sixpod check` prints for each is in golden/check-messages.txt: every message in the
# operator's terms, naming the key and what is expected, never the validation library's.
BROKEN = [
    ("typo in a node key", "rack: r1, role: internal", "rak: r1, role: internal"),
    ("typo in a pod key", "  links: 2001", "  link: 2001"),
    (
        "keys in the wrong case",
        "{name: edge1, rack: r1, role: edge, port: swp1}",
        "{name: edge1, Rack: r1, ROLE: edge, port: swp1}",
    ),
    ("typo in a role", "role: internal", "role: interal"),
    ("typo in a rack", "rack: r1, role: internal", "rack: R1, role: internal"),
    ("unknown key", "  name: lab1\n", "  name: lab1\n  colour: blue\n"),
    ("text for a number", "port: swp1}", "port: swp1, mtu: big}"),
    ("quoted number", "port: swp1}", 'port: swp1, mtu: "9000"}'),
    ("yes for a number", "  name: lab1\n", "  name: lab1\n  hold_time: yes\n"),
    ("number too small", "port: swp1}", "port: swp1, mtu: 1000}"),
    ("number too big", "/28], count: 4", "/28], count: 513"),
    ("empty list", "ports: [swp1-swp8]", "ports: []"),
    ("empty pool list", "pools: [203.0.113.0/28]", "pools: []"),
    ("text for a list", "ports: [swp1-swp8]", "ports: swp1-swp8"),
    ("text for a mapping", "asns: {first: 64512, last: 64520}", "asns: 64512-64520"),
    ("number for a name", "  name: lab1\n", "  name: 5\n"),
    ("nothing for an address", "  aggregate: 2001:db8:200::/56\n", "  aggregate:\n"),
    ("missing key", "  links: 2001:db8:2ff::/60\n", ""),
    ("unknown choice", "port: swp3}", "port: swp3, nic: vmxnet}"),
    (
        "unknown choice in a list",
        "racks:\n",
        "roles:\n  edge: {services: [announcer, edge-proxi]}\n\nracks:\n",
    ),
    ("list for a number", "/124], count: 4", "/124], count: [4]"),
    ("true for a number", "port: swp2}", "port: swp2, mtu: true}"),
    ("fraction for a whole number", "/28], count: 4", "/28], count: 4.5"),
    ("fraction for an MTU", "port: swp2}", "port: swp2, mtu: 1500.0}"),
    ("text for a fractional number", "  floor: {", "  floor: {ttl: soon, "),
    ("fractional number too small", "  floor: {", "  floor: {ttl: 0.0, "),
    ("vNIC frame too small", "port: swp3}", "port: swp3, nic: virtio, max_frame: 1500}"),
    ("VIP pool in private space", "pools: [203.0.113.0/28]", "pools: [10.0.0.0/28]"),
    ("VIP pool in link-local space", "pools: [2001:db8:2fe::/124]", "pools: [fe80::/124]"),
    ("upstream link in link-local space", "ports: [swp1-swp8]}", _upstream("fe80::")),
    ("upstream link in ULA space", "ports: [swp1-swp8]}", _upstream("fd00:1::")),
    (
        "VIP pool in IPv4-mapped space",
        "pools: [2001:db8:2fe::/124]",
        'pools: ["::ffff:10.0.0.0/124"]',
    ),
    (
        "VIP pool in IPv4-mapped documentation space",
        "pools: [2001:db8:2fe::/124]",
        'pools: ["::ffff:203.0.113.0/124"]',
    ),
    ("VIP pool in site-local space", "pools: [2001:db8:2fe::/124]", "pools: [fec0::/124]"),
    ("VIP pool in discard-only space", "pools: [2001:db8:2fe::/124]", "pools: [100::/124]"),
    ("VIP pool in IETF protocol space", "pools: [2001:db8:2fe::/124]", "pools: [2001:5::/124]"),
    ("VIP pool in Teredo space", "pools: [2001:db8:2fe::/124]", "pools: [2001::/124]"),
    ("VIP pool in benchmarking space", "pools: [203.0.113.0/28]", "pools: [198.18.0.0/28]"),
    ("VIP pool in IETF protocol space (IPv4)", "pools: [203.0.113.0/28]", "pools: [192.0.0.0/28]"),
    ("VIP pool in shared address space", "pools: [203.0.113.0/28]", "pools: [100.64.0.0/28]"),
    ("upstream link in site-local space", "ports: [swp1-swp8]}", _upstream("fec0::")),
    ("upstream link in discard-only space", "ports: [swp1-swp8]}", _upstream("100::")),
    ("upstream link in IETF protocol space", "ports: [swp1-swp8]}", _upstream("2001:5::")),
    ("upstream link in Teredo space", "ports: [swp1-swp8]}", _upstream("2001::")),
    ("upstream link overlapping the unspecified address", "ports: [swp1-swp8]}", _upstream("::")),
]


def test_check_messages_match_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = (EXAMPLES / "small.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    got = []
    for name, old, new in BROKEN:
        assert old in small, name
        Path("pod.yaml").write_text(small.replace(old, new, 1))
        code, out, err = run("check", "pod.yaml")
        assert code == 1, name
        assert out == ""
        got.append(f"## {name}: {old.strip()!r} -> {new.strip()!r}\n{err}")
    text = "\n".join(got)
    golden = GOLDEN / "check-messages.txt"
    if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    for leak in ("Input should", "should have at least", "after validation", "valid integer"):
        assert leak not in text


# Copies of examples/small.yaml that check ok with warnings; what `sixpod check` prints for
# each is in golden/check-warnings.txt.
WARNED = [
    (
        "vSwitch below the ToR port",
        "port: swp3}",
        "port: swp3, mtu: 1500, nic: vmxnet3, vswitch_mtu: 1500}",
    ),
    (
        "vSwitch MTU not set, below the ToR port",
        "port: swp3}",
        "port: swp3, mtu: 1500, nic: e1000}",
    ),
    (
        "vNIC below the ToR port",
        "port: swp3}",
        "port: swp3, mtu: 1500, nic: virtio, vswitch_mtu: 9216, max_frame: 1518}",
    ),
    (
        "vmxnet3 default below the ToR port",
        "port: swp3}",
        "port: swp3, nic: vmxnet3, vswitch_mtu: 9216}",
    ),
]


def test_check_warnings_match_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = (EXAMPLES / "small.yaml").read_text()
    monkeypatch.chdir(tmp_path)
    got = []
    for name, old, new in WARNED:
        assert old in small, name
        Path("pod.yaml").write_text(small.replace(old, new, 1))
        code, out, err = run("check", "pod.yaml")
        assert code == 0, name
        assert " 1 warning," in out, name
        warnings = "".join(line for line in err.splitlines(True) if ": warning: " in line)
        got.append(f"## {name}: {old.strip()!r} -> {new.strip()!r}\n{warnings}")
    text = "\n".join(got)
    golden = GOLDEN / "check-warnings.txt"
    if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_a_typo_is_one_message_with_a_suggestion(pod: Path) -> None:
    pod.write_text(pod.read_text().replace("rack: r1, role: internal", "rak: r1, role: internal"))
    code, _, err = run("check", pod)
    assert code == 1
    [message] = err.splitlines()
    assert message.endswith("unknown key 'rak': did you mean 'rack'?")


def test_keys_in_the_wrong_case_are_one_message_each_with_a_suggestion(pod: Path) -> None:
    pod.write_text(
        pod.read_text().replace(
            "{name: edge1, rack: r1, role: edge, port: swp1}",
            "{name: edge1, Rack: r1, ROLE: edge, port: swp1}",
        )
    )
    code, _, err = run("check", pod)
    assert code == 1
    messages = err.splitlines()
    assert [m.split(": ", 1)[1] for m in messages] == [
        "unknown key 'Rack': did you mean 'rack'?",
        "unknown key 'ROLE': did you mean 'role'?",
    ]


def test_check_notes_documentation_space_for_labs(pod: Path) -> None:
    code, _, err = run("check", pod)
    assert code == 0
    notes = err.splitlines()
    assert len(notes) == 2
    assert all(": note: VIP pool " in n and "fine for a lab" in n for n in notes)


@pytest.mark.parametrize("where", [".", ".."])
def test_render_refuses_the_directory_of_the_inventory_or_above(
    pod: Path, tmp_path: Path, where: str
) -> None:
    run("allocate", pod)
    (tmp_path / "sub").mkdir()
    before = snapshot(tmp_path)
    for force in ((), ("--force",)):
        code, out, err = run("render", pod, "--out", pod.parent / where, *force)
        assert (code, out) == (1, "")
        assert f"it holds {pod}" in err
        assert snapshot(tmp_path) == before
        assert sorted(os.listdir(tmp_path)) == ["pod.lock", "pod.yaml", "sub"]


def test_render_refuses_the_directory_of_the_lock(pod: Path, tmp_path: Path) -> None:
    run("allocate", pod)
    code, _, err = run("render", pod, "--out", tmp_path / "sub" / "..", "--force")
    assert code == 1
    assert "pod.lock" in err or "pod.yaml" in err
    assert sorted(os.listdir(tmp_path)) == ["pod.lock", "pod.yaml"]


def test_render_refuses_a_directory_that_is_not_a_render_unless_forced(
    pod: Path, tmp_path: Path
) -> None:
    run("allocate", pod)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me\n")
    code, out, err = run("render", pod, "--out", victim)
    assert (code, out) == (1, "")
    assert f"{victim}: not replacing it: it is not empty and not a previous render" in err
    assert "--force" in err
    assert snapshot(victim) == {"important.txt": b"keep me\n"}
    assert sorted(os.listdir(tmp_path)) == ["pod.lock", "pod.yaml", "victim"]
    assert run("render", pod, "--out", victim, "--force")[0] == 0
    assert not (victim / "important.txt").exists()
    assert (victim / ".sixpod-render").is_file()


def test_render_replaces_an_empty_directory_and_a_previous_render(
    pod: Path, tmp_path: Path
) -> None:
    run("allocate", pod)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert run("render", pod, "--out", out_dir)[0] == 0
    (out_dir / "nodes" / "stale.txt").write_text("from an old render\n")
    assert run("render", pod, "--out", out_dir)[0] == 0
    assert not (out_dir / "nodes" / "stale.txt").exists()


def test_render_refuses_the_current_directory_and_the_filesystem_root(
    pod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("allocate", pod)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for out, why in (
        (".", "it is the current directory"),
        ("/", "it is the root of the filesystem"),
    ):
        code, stdout, err = run("render", pod, "--out", out, "--force")
        assert (code, stdout) == (1, "")
        assert f"{out}: not replacing it: {why}" in err
    assert os.listdir(work) == []
    assert sorted(os.listdir(tmp_path)) == ["pod.lock", "pod.yaml", "work"]


def test_render_through_a_dotdot_path_replaces_the_tree_and_leaves_no_temporaries(
    pod: Path, tmp_path: Path
) -> None:
    run("allocate", pod)
    assert run("render", pod, "--out", tmp_path / "v4/out")[0] == 0
    before = snapshot(tmp_path / "v4/out")
    code, _, err = run("render", pod, "--out", tmp_path / "v4/out/../out")
    assert code == 0
    assert "Error" not in err
    assert snapshot(tmp_path / "v4/out") == before
    assert os.listdir(tmp_path / "v4") == ["out"]


def test_an_alias_bomb_in_the_inventory_or_the_lock_is_one_error(pod: Path) -> None:
    rows = ["bomb0: &a0 [x, x, x, x, x, x, x, x, x]"]
    rows += [f"bomb{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb = "\n".join(rows) + "\n"
    run("allocate", pod)
    lock = pod.with_suffix(".lock")
    lock.write_text(lock.read_text() + bomb)
    code, _, err = run("check", pod)
    assert code == 1
    assert f"{lock}:" in err
    assert "anchors and aliases expand to more than 10000 values" in err
    pod.write_text(pod.read_text() + bomb)
    code, _, err = run("check", pod)
    assert code == 1
    assert err.endswith(": anchors and aliases expand to more than 10000 values\n")
    assert err.startswith(f"{pod}:")


def test_deep_nesting_is_one_line_exit_1(tmp_path: Path) -> None:
    deep = tmp_path / "d.yaml"
    deep.write_text("pod: " + "[" * 1000 + "]" * 1000 + "\n")
    code, out, err = run("check", deep)
    assert (code, out) == (1, "")
    assert err == f"{deep}:1:105: nested more than 100 levels deep\n"


def test_a_render_from_before_the_marker_is_replaced_without_force(
    pod: Path, tmp_path: Path
) -> None:
    run("allocate", pod)
    out_dir = tmp_path / "out"
    run("render", pod, "--out", out_dir)
    (out_dir / ".sixpod-render").unlink()
    assert run("render", pod, "--out", out_dir)[0] == 0
    (out_dir / ".sixpod-render").unlink()
    (out_dir / "nodes" / "edge1" / "notes.txt").write_text("mine\n")
    code, _, err = run("render", pod, "--out", out_dir)
    assert code == 1
    assert "not a previous render" in err
    assert (out_dir / "nodes" / "edge1" / "notes.txt").read_text() == "mine\n"
