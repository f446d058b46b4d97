"""The alert rules: valid for Prometheus, each one tested by promtool, every metric real."""

from __future__ import annotations

import re
import subprocess
from importlib import resources
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration  # runs promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = resources.files("sixpod.monitoring") / "alerts.yml"
CASES = Path(__file__).with_name("alerts_test.yml")


def _alerts() -> list[dict[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_promtool_accepts_the_rules() -> None:
    r = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in r.stdout


def test_every_alert_fires_and_resolves_as_its_cases_say(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yml"
    cases.write_text(CASES.read_text().replace("  - ALERTS", f"  - {RULES}"))
    r = subprocess.run(
        ["promtool", "test", "rules", str(cases)], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_alert_has_a_case() -> None:
    tested = set(re.findall(r"alertname: (\w+)", CASES.read_text()))
    assert {a["alert"] for a in _alerts()} <= tested


def test_every_sixpod_metric_an_alert_reads_is_exported() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "sixpod").rglob("*.py"))
    for rule in _alerts():
        for name in re.findall(r"\bsixpod_[a-z_]+", rule["expr"]):
            base = name.removesuffix("_total")
            family = base.split("_")[1]  # sixpod_FAMILY_rest: edge, razor, acme, ...
            rest = base.removeprefix(f"sixpod_{family}_")
            assert base in source or (f'"{rest}"' in source and f"sixpod_{family}_" in source), (
                f"{rule['alert']}: {name} is not a metric any daemon exports"
            )
