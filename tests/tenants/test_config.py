"""controller.yaml: the README's example loads; mistakes are FILE:LINE:COL errors, exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sixpod.inventory.load import load_model
from sixpod.tenants.config import ControllerConfig

ROOT = Path(__file__).resolve().parents[2]
SIXPOD = str(Path(sys.executable).with_name("sixpod"))


def test_readme_example_loads() -> None:
    text = (ROOT / "README.md").read_text()
    start = text.index("# controller.yaml")
    cfg = load_model(text[start : text.index("```", start)], "README.md", ControllerConfig)
    assert [e.port for e in cfg.listen] == [8700, 8700]
    assert cfg.guard.app_share == 0.5
    assert cfg.redis.prefix == "sixpod"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "token_file: t\nlock: l\nredis: {address: '[::1]:6379', password_file: p}\nport: 1\n",
            "controller.yaml:4:1: unknown key 'port'",
        ),
        (
            "token_file: t\nlock: l\nredis: {address: '[::1]', password_file: p}\n",
            "controller.yaml:3:",
        ),
        ("token_file: t\nlock: l\n", "redis"),
        (
            "token_file: t\nlock: l\nredis: {address: '[::1]:6379', password_file: p}\n"
            "guard: {app_share: 2}\n",
            "app_share",
        ),
    ],
)
def test_bad_config_is_refused_with_its_position(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "controller.yaml"
    path.write_text(text)
    r = subprocess.run(
        [SIXPOD, "controller", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert message in r.stderr.replace(str(tmp_path) + "/", "")
    assert "Traceback" not in r.stderr


def test_missing_token_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "controller.yaml"
    lock = ROOT / "examples" / "small.lock"
    path.write_text(
        f"token_file: {tmp_path / 'nope'}\nlock: {lock}\ndatabase: sqlite:///{tmp_path / 'x.db'}\n"
        "redis: {address: '[::1]:6379', password_file: p}\n"
    )
    r = subprocess.run(
        [SIXPOD, "controller", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert "nope" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_guard_and_publisher_sections_are_the_settings_the_daemon_runs_with() -> None:
    """One definition each: the guard section is the GuardLimits the store and publisher use,
    the publisher section the base of PublisherSettings; both validated however built."""
    from sixpod.tenants.guard import GuardLimits
    from sixpod.tenants.publisher import PublisherSettings

    text = (
        "token_file: t\nlock: l\nredis: {address: '[::1]:6379', password_file: p}\n"
        "guard: {window: 30}\npublisher: {batch: 100}\n"
    )
    cfg = load_model(text, "controller.yaml", ControllerConfig)
    assert isinstance(cfg.guard, GuardLimits)
    assert cfg.guard.window == 30
    settings = PublisherSettings(**cfg.publisher.model_dump(), guard=cfg.guard)
    assert (settings.batch, settings.lease, settings.guard.window) == (100, 5.0, 30)
    with pytest.raises(ValueError, match="app_share"):
        GuardLimits(app_share=0)
    with pytest.raises(ValueError, match="batch"):
        PublisherSettings(batch=0)
    raw = {"token_file": "t", "lock": "l", "redis": {"address": "[::1]:6379", "password_file": "p"}}
    ControllerConfig.model_validate({**raw, "publisher": {"batch": 100}})
    with pytest.raises(ValueError, match=r"1 validation error(.|\n)*publisher\.holder"):
        ControllerConfig.model_validate({**raw, "publisher": {"holder": "x"}})  # no wiring keys
