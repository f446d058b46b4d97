"""`sixpod ci`: the pull-request pipeline, on copies of the small example."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from fabkit import EXAMPLES, ROOT

from sixpod.cli import cli

pytestmark = pytest.mark.skipif(
    not Path("/usr/lib/frr/frr-reload.py").exists() or shutil.which("vtysh") is None,
    reason="FRR's vtysh and frr-reload.py are needed",
)
APP2 = "  - {name: app2, rack: r1, role: internal, port: swp4}\n"


def repo(tmp: Path, extra: str = "") -> Path:
    """An inventory repository: pod.yaml (small's, plus ``extra`` nodes) and its lock."""
    pod = tmp / "pod.yaml"
    pod.write_text((EXAMPLES / "small.yaml").read_text() + extra)
    shutil.copy(EXAMPLES / "small.lock", tmp / "pod.lock")
    assert CliRunner().invoke(cli, ["allocate", str(pod)]).exit_code == 0
    return pod


def deployed(tmp: Path) -> Path:
    """The render of the deployed revision (small as it is)."""
    base = tmp / "base"
    base.mkdir()
    out = tmp / "deployed"
    r = CliRunner().invoke(cli, ["render", str(repo(base)), "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    return out


def ci(pod: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["ci", str(pod), *args])


def steps(r: Result) -> dict[str, str]:
    found = dict(re.findall(r"^\| (\w+) \| (\w+) \|", r.stdout, re.M))
    del found["step"]  # the table's header
    return found


def test_the_example_passes_from_nothing(tmp_path: Path) -> None:
    r = ci(repo(tmp_path))
    assert r.exit_code == 0, r.stderr
    assert steps(r) == dict.fromkeys(("check", "allocate", "render", "syntax", "plan"), "ok")
    assert r.stdout.startswith(f"### sixpod ci: `{tmp_path / 'pod.yaml'}` passed\n")
    assert "1 frr.conf, 1 interfaces, 4 lldpd.conf, 1 nftables.conf" in r.stdout


def test_adding_a_node_plans_exactly_its_neighbor_and_prefix_list(tmp_path: Path) -> None:
    base = deployed(tmp_path)
    r = ci(repo(tmp_path, APP2), "--deployed", str(base), "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    allocate = next(s for s in doc["steps"] if s["step"] == "allocate")
    assert "adds app2, removes nothing" in allocate["detail"]
    (plan,) = doc["plans"]
    assert plan["added_neighbors"] == ["2001:db8:2ff:3::2"]
    assert plan["removed_neighbors"] == []
    assert plan["delta"][0] == "Lines To Add"  # nothing to delete
    mentions = {m for line in plan["delta"] for m in re.findall(r"2001:db8:2ff:\d*::\d", line)}
    assert mentions == {"2001:db8:2ff:3::1", "2001:db8:2ff:3::2"}  # app2's link only
    assert "ipv6 prefix-list NODE-app2-V6 seq 5 permit 2001:db8:200:4::/64" in plan["delta"]


def test_an_out_of_date_lock_fails(tmp_path: Path) -> None:
    pod = repo(tmp_path)
    pod.write_text(pod.read_text() + APP2)
    r = ci(pod)
    assert r.exit_code == 1
    assert steps(r) == {
        "check": "ok", "allocate": "failed", "render": "skipped", "syntax": "skipped",
        "plan": "skipped",
    }  # fmt: skip
    assert "would add app2" in r.stdout
    assert "sixpod ci failed: allocate" in r.stderr


def test_a_renumbered_node_fails_against_the_deployed_render(tmp_path: Path) -> None:
    base = deployed(tmp_path)
    pod = repo(tmp_path)
    lock = tmp_path / "pod.lock"
    text = lock.read_text()
    # swap edge1's and edge2's /64s by hand: the lock is "current", the numbers moved
    text = text.replace("2001:db8:200:1::/64", "X").replace(
        "2001:db8:200:2::/64", "2001:db8:200:1::/64"
    )
    lock.write_text(text.replace("X", "2001:db8:200:2::/64"))
    r = ci(pod, "--deployed", str(base))
    assert r.exit_code == 1
    assert steps(r)["allocate"] == "failed"
    assert "node edge1: prefix 2001:db8:200:1::/64 -> 2001:db8:200:2::/64" in r.stdout


def test_removing_most_nodes_is_refused_by_the_guard(tmp_path: Path) -> None:
    base = deployed(tmp_path)
    pod = repo(tmp_path)
    text = pod.read_text()
    pod.write_text(re.sub(r"  - \{name: (edge2|app1),.*\n", "", text))
    assert CliRunner().invoke(cli, ["allocate", str(pod)]).exit_code == 0
    r = ci(pod, "--deployed", str(base))
    assert r.exit_code == 1
    assert steps(r)["plan"] == "failed"
    assert "neighbors-removed: removes 2 of 3 BGP neighbors" in r.stdout


def test_a_broken_inventory_fails_the_check_and_skips_the_rest(tmp_path: Path) -> None:
    pod = repo(tmp_path)
    pod.write_text(pod.read_text().replace("port: swp3", "port: swp99"))
    r = ci(pod)
    assert r.exit_code == 1
    assert steps(r)["check"] == "failed"
    assert set(list(steps(r).values())[1:]) == {"skipped"}
    assert "swp99" in r.stdout


def test_the_summary_is_appended_for_the_ci(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier\n")
    r = ci(repo(tmp_path), "--summary", str(summary))
    assert r.exit_code == 0
    assert summary.read_text() == "earlier\n" + r.stdout


def test_the_example_workflow_runs_sixpod_ci() -> None:
    flow = yaml.safe_load((ROOT / "examples" / "ci-github-workflow.yml").read_text())
    runs = [s.get("run", "") for job in flow["jobs"].values() for s in job["steps"]]
    assert any("sixpod ci " in r and "--deployed" in r and "--summary" in r for r in runs)
    assert any("sixpod render" in r for r in runs)


def test_a_plan_that_renumbers_router_bgp_is_refused_without_a_delta(tmp_path: Path) -> None:
    base = deployed(tmp_path)
    pod = repo(tmp_path)
    lock = tmp_path / "pod.lock"
    lock.write_text(lock.read_text().replace("r1: {asn: 64513}", "r1: {asn: 64514}"))
    r = CliRunner().invoke(cli, ["fabric", "plan", str(pod), "--against", str(base)])
    assert r.exit_code == 1
    assert "bgp-removed: replaces router bgp 64513 with router bgp 64514" in r.stdout
    assert "Lines To" not in r.stdout
    assert "--force shows and deploys it" in r.stdout
    r = CliRunner().invoke(cli, ["fabric", "plan", str(pod), "--against", str(base), "--force"])
    assert r.exit_code == 0
    assert "no router bgp 64513" in r.stdout  # forced: the delta it would deploy
    r = ci(pod, "--deployed", str(base))
    assert r.exit_code == 1
    assert steps(r)["plan"] == "failed"
    assert "no router bgp" not in r.stdout  # nor in the review's summary
    assert "(no delta: refused)" in r.stdout
