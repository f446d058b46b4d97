"""The lab's copy of the rendered prometheus.yml: only the intervals differ, and Debian's
promtool accepts it with the rendered targets and rules beside it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit import render_small
from sixpod.lab import monitoring
from sixpod.lab.monitoring import LAB_INTERVAL, lab_config
from sixpod.lab.netns import LabError


def test_the_lab_changes_only_the_intervals(tmp_path: Path) -> None:
    rendered = render_small(tmp_path) / "prometheus"
    text = (rendered / "prometheus.yml").read_text()
    before, after = yaml.safe_load(text), yaml.safe_load(lab_config(text))
    assert after["global"] == before["global"] | {
        "scrape_interval": LAB_INTERVAL,
        "scrape_timeout": LAB_INTERVAL,
        "evaluation_interval": LAB_INTERVAL,
    }
    # the VIP probes keep the rendered interval (a pod has up to 512 + 512 VIPs)
    probes = {j["job_name"] for j in after["scrape_configs"] if j.get("metrics_path") == "/probe"}
    assert probes == {"vips-ip6", "vips-ip4"}
    for job in after["scrape_configs"]:
        if job["job_name"] in probes:
            assert job.pop("scrape_interval") == before["global"]["scrape_interval"] == "15s"
    assert {k: v for k, v in after.items() if k != "global"} == {
        k: v for k, v in before.items() if k != "global"
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian prometheus: promtool")
def test_promtool_accepts_the_lab_copy(tmp_path: Path) -> None:
    rendered = render_small(tmp_path) / "prometheus"
    copy = tmp_path / "copy"
    shutil.copytree(rendered, copy)
    (copy / "prometheus.yml").write_text(lab_config((rendered / "prometheus.yml").read_text()))
    r = subprocess.run(
        ["promtool", "check", "config", str(copy / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_missing_program_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(
        monitoring.shutil, "which", lambda p: None if p == "prometheus-frr-exporter" else real(p)
    )
    with pytest.raises(LabError, match=r"prometheus-frr-exporter \(Debian package "):
        monitoring._require()
