"""`sixpod help TOPIC` (the inventory format, from the model itself) and shell completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from sixpod.cli import cli
from sixpod.inventory import model

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point, as an operator's shell runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from sixpod.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
        check=False,
        timeout=60,
    )


MODELS = [
    m
    for m in vars(model).values()
    if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == model.__name__
    and not m.__name__.startswith("_")
]  # fmt: skip


def test_help_lists_the_topics() -> None:
    r = CliRunner().invoke(cli, ["help"])
    assert r.exit_code == 0
    assert "inventory" in r.stdout


@pytest.mark.parametrize("m", MODELS, ids=[m.__name__ for m in MODELS])
def test_help_inventory_documents_every_key(m: type[BaseModel]) -> None:
    text = CliRunner().invoke(cli, ["help", "inventory"]).stdout
    for name, field in m.model_fields.items():
        assert f"  {name}" in text, (m.__name__, name)
        assert field.description, f"{m.__name__}.{name} has no description"
        assert field.description in text


def test_help_inventory_shows_every_bound() -> None:
    text = CliRunner().invoke(cli, ["help", "inventory"]).stdout
    assert "ttl: number > 0 and <= 3600 (default 5.0)" in text  # gt, not ge: 0 is refused
    assert "hold_time: number 3-65535 (default 9)" in text
    assert "max_frame: number >= 1518 (optional)" in text


def test_help_inventory_example_is_a_valid_pod(tmp_path: Path) -> None:
    text = CliRunner().invoke(cli, ["help", "inventory"]).stdout
    example = text.split("\nEXAMPLE\n", 1)[1].split("\n\n", 1)[0]
    lines = [line.removeprefix("    ") for line in example.splitlines()]
    (tmp_path / "pod.yaml").write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(cli, ["check", str(tmp_path / "pod.yaml")])
    assert r.exit_code == 0, r.stderr


def test_help_of_a_command_is_its_help() -> None:
    r = CliRunner().invoke(cli, ["help", "render"])
    assert r.exit_code == 0
    assert "resilient.yaml" in r.stdout


def test_unknown_topic_is_a_usage_error_with_a_suggestion() -> None:
    r = CliRunner().invoke(cli, ["help", "inventroy"])
    assert r.exit_code == 2
    assert "did you mean 'inventory'?" in r.stderr


def test_completion_script_for_bash() -> None:
    r = run(env={"_SIXPOD_COMPLETE": "bash_source"})
    assert r.returncode == 0, r.stderr
    assert "_sixpod_completion()" in r.stdout
    assert "complete -o nosort -F _sixpod_completion sixpod" in r.stdout
    again = run("completion", "bash")
    assert again.returncode == 0
    assert again.stdout.strip() == r.stdout.strip()


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_scripts_for_other_shells(shell: str) -> None:
    r = run("completion", shell)
    assert r.returncode == 0, r.stderr
    assert "_SIXPOD_COMPLETE" in r.stdout


def test_completion_completes_verbs_and_options() -> None:
    def complete(words: str) -> list[str]:
        r = run(
            env={
                "_SIXPOD_COMPLETE": "bash_complete",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
            }
        )
        assert r.returncode == 0, r.stderr
        return [line.split(",", 1)[1] for line in r.stdout.splitlines()]

    assert complete("sixpod ap") == ["app"]
    assert set(complete("sixpod app ")) == {"create", "delete", "list", "set", "show"}
    assert "--json" in complete("sixpod status pod.yaml --")
