"""What ``sixpod render`` writes for a fresh server: the network config, the Redis replica,
and systemd units that ``systemd-analyze verify`` accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sixpod import devices
from sixpod.cli import cli
from sixpod.node import netconfig
from sixpod.node.render import node_address

ROOT = Path(__file__).resolve().parents[2]
FLOOR = (
    "  name: lab1\n  floor:\n"
    '    redis: "[2001:db8:200::2]:6379"\n'
    "    password_file: /etc/sixpod/pod-redis.pass\n"
)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
@pytest.mark.parametrize("node", ["edge1", "app1"])
def test_the_units_pass_systemd_analyze_verify(rendered: Path, node: str) -> None:
    units = sorted((rendered / "nodes" / node / "systemd").iterdir())
    names = {u.name for u in units}
    assert {"sixpod-node.target", "sixpod-exabgp.service", "sixpod-bfdd.service"} <= names
    assert ("sixpod-redis.service" in names) == (node == "edge1")
    assert ("sixpod-edge.service" in names) == (node == "edge1")
    assert ("sixpod-razor.service" in names) == (node == "edge1")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    exabgp = (rendered / "nodes" / node / "systemd" / "sixpod-exabgp.service").read_text()
    assert (
        f"ExecStart={Path(sys.executable).with_name('exabgp')} /etc/sixpod/{node}/exabgp.conf"
        in exabgp
    )


def test_a_broken_unit_fails_verify(rendered: Path, tmp_path: Path) -> None:
    """The check above can fail: a unit naming a program that is not there does."""
    text = (rendered / "nodes/edge1/systemd/sixpod-redis.service").read_text()
    bad = tmp_path / "sixpod-redis.service"
    bad.write_text(text.replace("/usr/bin/redis-server", "/usr/bin/no-such-redis"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "no-such-redis" in result.stderr


def test_the_network_config_is_the_device_data(rendered: Path) -> None:
    for node_dir in sorted((rendered / "nodes").iterdir()):
        doc = devices.load((node_dir / "device.json").read_text())
        assert isinstance(doc, devices.NodeDevice)
        cfg = netconfig.parse((node_dir / "network.json").read_text())
        up = cfg.link("eth0")
        assert up.mtu == doc.uplink.mtu
        assert [a.ip for a in up.addresses] == [doc.uplink.address]
        assert up.addresses[0].network == doc.uplink.link
        assert {r.to.version: r.via for r in cfg.routes if r.via} == {
            6: doc.uplink.peer.address,
            4: doc.uplink.peer.address,
        }
        assert cfg.link("lo").addresses == (node_address(doc),)
        # the node's own traffic leaves from its own address (the pod routes it everywhere)
        [default6] = [r for r in cfg.routes if str(r.to) == "::/0"]
        own = node_address(doc)
        assert own is not None
        assert default6.src == own.ip
        uplink_file = (node_dir / "network/10-sixpod-uplink.network").read_text()
        assert f"Address={doc.uplink.address}/64\n" in uplink_file
        assert f"MTUBytes={doc.uplink.mtu}\n" in uplink_file
        assert uplink_file.count(f"Gateway={doc.uplink.peer.address}\n") == 2
        assert f"PreferredSource={own.ip}\n" in uplink_file
        sysctl = (node_dir / "network/90-sixpod.conf").read_text()
        assert "net.ipv6.conf.eth0.accept_dad = 0\n" in sysctl
        assert "net.ipv6.conf.all.keep_addr_on_down = 1\n" in sysctl


def test_the_replica_follows_the_pods_primary_without_its_password(tmp_path: Path) -> None:
    pod = tmp_path / "pod.yaml"
    small = (ROOT / "examples/small.yaml").read_text()
    pod.write_text(re.sub(r"  floor: .*\n", "", small, count=1).replace("  name: lab1\n", FLOOR))
    for args in (["allocate", str(pod)], ["render", str(pod), "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    node = tmp_path / "out/nodes/edge1"
    conf = (node / "redis.conf").read_text()
    assert "\nreplicaof 2001:db8:200::2 6379\n" in conf
    assert "\nbind ::1 127.0.0.1\n" in conf
    assert "\nrepl-diskless-load on-empty-db\n" in conf
    assert "requirepass" not in conf
    assert conf.endswith("include /run/sixpod/redis/auth.conf\n")
    unit = (node / "systemd/sixpod-redis.service").read_text()
    assert "$$(cat /etc/sixpod/pod-redis.pass)" in unit
    assert '"/etc/sixpod/pod-redis.pass"' in (node / "edge.yaml").read_text()
    assert '"password_file": "/etc/sixpod/pod-redis.pass"' in (node / "announcer.yaml").read_text()
    assert not (tmp_path / "out/nodes/app1/redis.conf").exists()


def test_razor_answers_the_route_zone_on_the_pods_vips(rendered: Path) -> None:
    from sixpod.inventory.load import load_model
    from sixpod.razor.config import RazorConfig

    node = rendered / "nodes/edge1"
    doc = devices.load((node / "device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    path = node / "razor.yaml"
    cfg = load_model(path.read_text(), str(path), RazorConfig)
    assert cfg.zone == f"route.{doc.pod}.example"
    first = {doc.vips.ipv6[0], doc.vips.ipv4[0]}
    assert set(cfg.nameservers[0].addresses) == first
    assert {e.ip for e in cfg.listen} == first
    assert {e.port for e in cfg.listen} == {53}
    assert set(cfg.pool.vips) == set(doc.vips.all)
    assert cfg.tenants is not None
    assert str(cfg.tenants.address) == "[::1]:6379"
    assert cfg.metrics is not None
    assert cfg.metrics.ip == doc.uplink.address
    sysctl = (node / "network/90-sixpod.conf").read_text()
    assert "net.ipv4.ip_nonlocal_bind = 1\n" in sysctl
    assert "net.ipv6.ip_nonlocal_bind = 1\n" in sysctl
    app = rendered / "nodes/app1"
    assert not (app / "razor.yaml").exists()
    assert "nonlocal" not in (app / "network/90-sixpod.conf").read_text()
