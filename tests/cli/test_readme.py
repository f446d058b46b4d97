"""The README's console examples are what the commands print: each ``$ sixpod ...`` line in a
```console block is run (offline verbs on a copy of examples/, API verbs against a real API
over a store of examples/small.lock) and its output compared."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sixpod.cli import cli

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```console\n(.*?)^```$", re.S | re.M)


def sessions() -> list[list[tuple[str, str]]]:
    """Each console block as [(command, expected output)]."""
    out = []
    for block in BLOCK.findall((ROOT / "README.md").read_text()):
        steps: list[tuple[str, str]] = []
        for line in block.splitlines(keepends=True):
            if line.startswith("$ "):
                steps.append((line[2:].strip(), ""))
            else:
                assert steps, f"output before any command in\n{block}"
                steps[-1] = (steps[-1][0], steps[-1][1] + line)
        out.append(steps)
    return out


SESSIONS = sessions()


def test_the_readme_has_console_examples() -> None:
    assert len(SESSIONS) >= 2


@pytest.mark.parametrize("steps", SESSIONS, ids=[s[0][0] for s in SESSIONS])
def test_readme_console_examples_match(
    steps: list[tuple[str, str]], api: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    monkeypatch.chdir(work)
    env = {"SIXPOD_TOKEN_FILE": str(api), "COLUMNS": "160"}
    for command, expected in steps:
        args = shlex.split(command)
        assert args[0] == "sixpod"
        result = CliRunner().invoke(cli, args[1:], env=env)
        assert result.exit_code == 0, (command, result.output)
        assert result.stdout == expected, command


def test_readme_check_messages_are_golden() -> None:
    """The README's sample `sixpod check` messages are ones the golden cases produce."""
    golden = (ROOT / "tests/inventory/golden/check-messages.txt").read_text().splitlines()
    quoted = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("pod.yaml:")
    ]
    assert quoted
    for line in quoted:
        assert line in golden, line


def test_readme_command_table_names_every_verb() -> None:
    """Each command, and each verb of a group, is in a row of the README's command table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `sixpod ")]
    assert len(rows) >= 15
    for name, cmd in cli.commands.items():
        mine = [r for r in rows if re.search(rf"`sixpod {re.escape(name)}\b", r)]
        assert mine, f"no row for sixpod {name}"
        if isinstance(cmd, click.Group):
            for verb in cmd.commands:
                assert any(re.search(rf"\b{re.escape(verb)}\b", r) for r in mine), (name, verb)
