"""The rendered Prometheus config: Debian's promtool accepts it (rules, file_sd targets
too), the blackbox exporter accepts its modules, and the targets are the inventory's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sixpod import addr
from sixpod.cli import cli
from sixpod.devices import NodeDevice, TorDevice
from sixpod.devices import load as load_device
from sixpod.monitoring import ports

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROM = "prometheus"

# examples/small.yaml with a DNS node running Razor and a floor naming the pod's Redis
# primary (which runs on the controller's host).
EXTRA = (
    "roles:\n"
    "  edge: {announce: [node-prefix, vips], services: [announcer, edge-proxy, redis-replica]}\n"
    "  internal: {announce: [node-prefix], services: [announcer]}\n"
    "  dns: {announce: [node-prefix], services: [announcer, razor]}\n"
)
FLOOR = '  floor: {min_nodes: 1, redis: "[2001:db8:200::2]:6379", password_file: /etc/p}\n'


def render(tmp_path: Path, example: str, *, extended: bool = False) -> Path:
    pod = tmp_path / "pod.yaml"
    text = (EXAMPLES / f"{example}.yaml").read_text()
    if extended:
        text = text.replace("\nracks:\n", f"\n{EXTRA}\nracks:\n", 1)
        text = re.sub(r"  floor: .*\n", "", text, count=1)  # the example's own
        text = text.replace("  vips:\n", f"{FLOOR}  vips:\n", 1)
        text += "  - {name: dns1, rack: r1, role: dns, port: swp4}\n"
    pod.write_text(text)
    runner = CliRunner()
    for args in (["allocate", str(pod)], ["render", str(pod), "--out", str(tmp_path / "out")]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    return tmp_path / "out"


def targets(out: Path, job: str) -> list[dict[str, Any]]:
    doc: list[dict[str, Any]] = json.loads((out / PROM / "targets" / f"{job}.json").read_text())
    return doc


def flat(out: Path, job: str) -> dict[str, dict[str, str]]:
    """target -> labels"""
    return {t: g["labels"] for g in targets(out, job) for t in g["targets"]}


pytestmark = pytest.mark.integration  # runs promtool and the blackbox exporter


@pytest.mark.parametrize("example", ["small", "pod"])
def test_promtool_accepts_the_rendered_config(example: str, tmp_path: Path) -> None:
    out = render(tmp_path, example)
    r = subprocess.run(
        ["promtool", "check", "config", str(out / PROM / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr
    assert "alerts.yml" in r.stdout  # the rule file is found and checked
    assert "WARNING" not in r.stdout + r.stderr  # every file_sd file exists


@pytest.mark.skipif(not shutil.which("prometheus-blackbox-exporter"), reason="needs blackbox")
def test_the_blackbox_exporter_accepts_its_modules(tmp_path: Path) -> None:
    out = render(tmp_path, "small")
    path = out / PROM / "blackbox.yml"
    r = subprocess.run(
        ["prometheus-blackbox-exporter", f"--config.file={path}", "--config.check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    modules = yaml.safe_load(path.read_text())["modules"]
    assert modules["http_ip6"]["http"]["preferred_ip_protocol"] == "ip6"
    assert modules["http_ip6"]["http"]["ip_protocol_fallback"] is False
    assert modules["http_ip4"]["http"]["preferred_ip_protocol"] == "ip4"
    assert modules["http_ip4"]["http"]["ip_protocol_fallback"] is False
    assert modules["http_ip6"]["http"]["valid_status_codes"] == [404]  # the edge's own answer


def test_targets_are_every_device_of_the_inventory(tmp_path: Path) -> None:
    out = render(tmp_path, "small", extended=True)
    nodes: dict[str, NodeDevice] = {}
    tors: dict[str, TorDevice] = {}
    for p in out.glob("*/*/device.json"):
        doc = load_device(p.read_text(), str(p))
        if isinstance(doc, NodeDevice):
            nodes[doc.name] = doc
        else:
            assert isinstance(doc, TorDevice)
            tors[doc.name] = doc
    assert sorted(nodes) == ["app1", "dns1", "edge1", "edge2"]

    def at(ip: addr.IPAddress | None, port: int) -> str:
        assert ip is not None
        return addr.for_prometheus(addr.Endpoint(ip, port))

    announcers = flat(out, "sixpod-announcer")
    assert set(announcers) == {at(n.uplink.address, ports.ANNOUNCER) for n in nodes.values()}
    assert announcers[at(nodes["edge1"].uplink.address, ports.ANNOUNCER)] == {
        "device": "edge1",
        "rack": "r1",
        "role": "edge",
    }
    assert set(flat(out, "sixpod-edge")) == {
        at(nodes[n].uplink.address, ports.EDGE) for n in ("edge1", "edge2")
    }
    assert set(flat(out, "sixpod-razor")) == {at(nodes["dns1"].uplink.address, ports.RAZOR)}
    assert set(flat(out, "sixpod-resilient")) == {
        at(t.address, ports.RESILIENT) for t in tors.values()
    }
    assert set(flat(out, "sixpod-controller")) == {"[2001:db8:200::2]:8700"}
    every = {at(n.uplink.address, ports.NODE_EXPORTER) for n in nodes.values()}
    every |= {at(t.address, ports.NODE_EXPORTER) for t in tors.values()}
    assert set(flat(out, "node")) == every
    assert flat(out, "frr") == {
        at(t.address, ports.FRR_EXPORTER): {"device": t.name, "rack": t.rack, "role": "tor"}
        for t in tors.values()
    }
    [tor] = tors.values()
    assert set(flat(out, "vips-ip6")) == {f"http://[{addr.format_ip(v)}]/" for v in tor.vips.ipv6}
    assert set(flat(out, "vips-ip4")) == {f"http://{addr.format_ip(v)}/" for v in tor.vips.ipv4}
    assert len(flat(out, "vips-ip6")) == len(flat(out, "vips-ip4")) == 4


def test_the_scrape_jobs_name_the_target_files_and_the_rules(tmp_path: Path) -> None:
    out = render(tmp_path, "small")
    conf = yaml.safe_load((out / PROM / "prometheus.yml").read_text())
    assert conf["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    for name, job in jobs.items():
        [sd] = job["file_sd_configs"]
        assert sd["files"] == [f"targets/{name}.json"]
    for family, module in (("ip6", "http_ip6"), ("ip4", "http_ip4")):
        probe = jobs[f"vips-{family}"]
        assert probe["metrics_path"] == "/probe"
        assert probe["params"] == {"module": [module]}
        relabel = probe["relabel_configs"]
        assert relabel[-1] == {
            "target_label": "__address__",
            "replacement": f"[::1]:{ports.BLACKBOX_EXPORTER}",
        }
    rules = (out / PROM / "alerts.yml").read_text()
    from importlib import resources

    assert rules == (resources.files("sixpod.monitoring") / "alerts.yml").read_text()
