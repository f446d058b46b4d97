"""Help that says something: every verb and option described, every verb with an example that
parses, `render --help` naming every file a render writes, and `sixpod --help` as a guide."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sixpod.cli import SECTIONS, cli
from sixpod.inventory.render import RENDERED_FILES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def commands(
    cmd: click.Command = cli, path: tuple[str, ...] = ("sixpod",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from commands(cmd.commands[name], (*path, name))


ALL = list(commands())
IDS = [" ".join(p) for p, _ in ALL]


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path[1:], "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.stdout


def examples_in(text: str) -> list[str]:
    """The lines of the help's "Examples:" section that run sixpod."""
    _, sep, rest = text.partition("  Examples:\n")
    assert sep, f"no Examples: section in\n{text}"
    lines = [line.strip() for line in rest.splitlines()]
    return [line for line in lines if line.startswith("sixpod ")]


def parse(tokens: list[str]) -> tuple[str, ...]:
    """Parse an example as click would run it (required options, choices, types); the path of
    the command it reaches. A usage error fails the test."""
    assert tokens[0] == "sixpod"
    cmd: click.Command = cli
    name, args, parent = "sixpod", tokens[1:], None
    path = ["sixpod"]
    while True:
        ctx = cmd.make_context(name, args, parent=parent)
        rest = [*ctx._protected_args, *ctx.args]
        if not isinstance(cmd, click.Group) or not rest:
            return tuple(path)
        found, sub, args = cmd.resolve_command(ctx, rest)
        assert found is not None
        assert sub is not None
        name, cmd, parent = found, sub, ctx
        path.append(found)


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_every_command_has_a_one_line_description(
    path: tuple[str, ...], cmd: click.Command
) -> None:
    assert cmd.get_short_help_str(limit=200), f"{' '.join(path)}: no one-line description"
    if isinstance(cmd, click.Group):  # its listing shows every description whole, at 80 columns
        listing = help_text(path).split("\nOptions:\n", 1)[1]
        assert "..." not in listing.split("Examples:")[0], listing


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_every_option_has_a_description(path: tuple[str, ...], cmd: click.Command) -> None:
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{' '.join(path)} {param.opts[0]}: no help"


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_every_command_has_examples_that_parse(path: tuple[str, ...], cmd: click.Command) -> None:
    found = examples_in(help_text(path))
    assert found, f"{' '.join(path)}: no example"
    for line in found:
        commands = shell_commands(line)
        reached = [parse(tokens) for tokens in commands if tokens[0] == "sixpod"]
        assert reached[0][: len(path)] == path, f"{line!r} is not an example of {' '.join(path)}"


def shell_commands(line: str) -> list[list[str]]:
    """``a x | b && c > f`` -> ``[[a, x], [b], [c]]``."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    out: list[list[str]] = [[]]
    redirect = False
    for token in lex:
        if token in ("|", "||", "&&", ";"):
            out.append([])
        elif token in (">", ">>", "<"):
            redirect = True
        elif redirect:
            redirect = False  # the redirection's file
        else:
            out[-1].append(token)
    return [c for c in out if c]


def rendered_patterns(pod: str, tmp_path: Path) -> set[str]:
    tmp_path.mkdir(exist_ok=True)
    shutil.copy(EXAMPLES / f"{pod}.yaml", tmp_path / f"{pod}.yaml")
    shutil.copy(EXAMPLES / f"{pod}.lock", tmp_path / f"{pod}.lock")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["render", str(tmp_path / f"{pod}.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {
        re.sub(
            r"^prometheus/targets/[^/]+\.json$",
            "prometheus/targets/JOB.json",
            re.sub(r"^(nodes|tors|spines)/[^/]+/", r"\1/NAME/", str(p.relative_to(out))),
        )
        for p in out.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("pod", ["small", "pod"])
def test_render_help_names_every_file_a_render_writes(pod: str, tmp_path: Path) -> None:
    text = help_text(("sixpod", "render"))
    written = rendered_patterns(pod, tmp_path)
    missing = sorted(p for p in written if p not in text)
    assert not missing, f"render --help does not name {missing}"


def test_the_rendered_files_list_is_exact(tmp_path: Path) -> None:
    written = rendered_patterns("pod", tmp_path / "a") | rendered_patterns("small", tmp_path / "b")
    assert written == {path for path, _ in RENDERED_FILES}


def test_readme_names_every_file_a_render_writes(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(p for p in rendered_patterns("pod", tmp_path) if f"`{p}`" not in readme)
    assert not missing, f"README.md's rendered files table does not name {missing}"


def test_top_level_help_reads_as_a_guide() -> None:
    text = help_text(("sixpod",))
    assert "sixpod check" in text
    assert "sixpod render" in text
    listed = [name for _, names in SECTIONS for name in names]
    assert sorted(listed) == sorted(cli.commands), "each command in exactly one section"
    for title, names in SECTIONS:
        assert f"\n{title}:\n" in text
        block = text.split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]
        for name in names:
            assert re.search(rf"^  {re.escape(name)}\s+\S", block, re.M), (title, name)


def test_no_top_level_description_is_cut_short_at_80_columns() -> None:
    """As an operator's 80-column terminal shows it: click lays help out 2 columns narrower
    than the terminal (CliRunner's terminal_width does not), and cuts what does not fit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "80"}
    r = subprocess.run(
        [sys.executable, "-c", "from sixpod.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    listing = r.stdout.split("\nOptions:\n", 1)[1].split("\n  Examples:\n", 1)[0]
    truncated = [line for line in listing.splitlines() if line.rstrip().endswith("...")]
    assert not truncated, "cut short: give the command a short_help that fits"
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_help_of_the_installed_program() -> None:
    """The real entry point, as an operator runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run(
        [sys.executable, "-c", "from sixpod.cli import main; main()", "app", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    for verb in ("create", "delete", "list", "set", "show"):
        assert re.search(rf"^  {verb}\s+\S", r.stdout, re.M), r.stdout
