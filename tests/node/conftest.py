"""Fixtures of the node tests: the small example pod rendered."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nodekit import EXAMPLES
from sixpod.cli import cli


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sixpod render examples/small.yaml`` with this environment's sixpod."""
    d = tmp_path_factory.mktemp("render")
    shutil.copy(EXAMPLES / "small.yaml", d / "pod.yaml")
    sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
    for args in (
        ["allocate", str(d / "pod.yaml")],
        ["render", str(d / "pod.yaml"), "--out", str(d / "out"), "--sixpod-bin", sixpod_bin],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return d / "out"
