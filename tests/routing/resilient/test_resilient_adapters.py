"""The ``vtysh`` adapter, against fake programs."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from resilientkit import (
    V4,
    V6,
    nodes,
)
from sixpod.routing.resilient.adapters import VtyshFrr
from sixpod.routing.resilient.errors import CommandError, ParseError
from sixpod.routing.resilient.frr import decode_frr_routes, format_frr_routes


def _fake_program(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_vtysh_adapter_reads_both_documents(tmp_path: Path) -> None:
    text4, text6 = format_frr_routes({V4: nodes(1), V6: nodes(2)})
    body = f"sys.stdout.write({text4!r} + '\\n' + {text6!r} + '\\n')"
    frr = VtyshFrr(vtysh=_fake_program(tmp_path, "vtysh", body))
    doc4, doc6 = frr.read()
    assert decode_frr_routes(doc4, doc6, [V4, V6]).paths == {V4: nodes(1), V6: nodes(2)}


def test_vtysh_adapter_errors_are_ours(tmp_path: Path) -> None:
    down = _fake_program(tmp_path, "down", "sys.exit('Exiting: failed to connect')")
    with pytest.raises(CommandError, match="failed to connect"):
        VtyshFrr(vtysh=down).read()
    with pytest.raises(CommandError):
        VtyshFrr(vtysh=str(tmp_path / "missing")).read()
    half = _fake_program(tmp_path, "half", "print('{}')")
    with pytest.raises(ParseError, match="IPv6"):
        VtyshFrr(vtysh=half).read()
    slow = _fake_program(tmp_path, "slow", "import time; time.sleep(5)")
    with pytest.raises(CommandError, match="no answer"):
        VtyshFrr(vtysh=slow, timeout=0.2).read()
