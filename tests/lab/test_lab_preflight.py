"""What `sixpod lab up` refuses before it creates anything: not root, a missing program."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sixpod.cli import cli
from sixpod.lab import preflight


def test_not_root_is_named_first() -> None:
    assert preflight.problems(euid=1000) == [
        "the lab needs root (it creates network namespaces, veth pairs and routes)"
    ]


def test_a_missing_program_names_what_installs_it() -> None:
    def which(name: str) -> str | None:
        return None if name in ("redis-server", "nginx") else f"/usr/bin/{name}"

    got = preflight.problems(euid=0, which=which)
    assert got == [
        "redis-server is not installed (Debian package redis-server)",
        "nginx is not installed (Debian packages nginx, libnginx-mod-http-lua and lua-resty-core)",
    ]


@pytest.mark.integration
def test_this_machine_can_run_a_lab() -> None:
    assert preflight.problems() == []  # root, every program, namespaces made and removed


def test_lab_up_refuses_before_it_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "problems", lambda: ["the lab needs root (...)"])
    result = CliRunner().invoke(cli, ["lab", "up", "--workdir", str(tmp_path / "lab")])
    assert result.exit_code == 1
    assert "sixpod lab: the lab needs root" in result.output
    assert not (tmp_path / "lab").exists()
