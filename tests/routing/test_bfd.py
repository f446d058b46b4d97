"""The BFD adapter: vtysh command lines, and failures as our own error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sixpod.routing.bfd import BfdError, set_shutdown, vtysh_argv
from sixpod.routing.config import BfdConfig


def bfd(vtysh: str = "vtysh", **kw: object) -> BfdConfig:
    return BfdConfig.model_validate(
        {"peer": "2001:db8:2ff::1", "local_address": "2001:db8:2ff::2", "vtysh": vtysh, **kw}
    )


def test_argv_names_the_rendered_session() -> None:
    assert vtysh_argv(bfd(), shutdown=True) == [
        "vtysh", "-d", "bfdd",
        "-c", "configure terminal",
        "-c", "bfd",
        "-c", "peer 2001:db8:2ff::1 local-address 2001:db8:2ff::2",
        "-c", "shutdown",
    ]  # fmt: skip
    argv = vtysh_argv(bfd(vty_socket="/run/frr-x"), shutdown=False)
    assert argv[3:5] == ["--vty_socket", "/run/frr-x"]
    assert argv[-1] == "no shutdown"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo 'Exiting: failed to connect to any daemons.'; exit 1", "exit 1: Exiting"),
        ("echo '% Unknown command: shutdown'", "% Unknown command"),
    ],
)
def test_vtysh_failures_are_our_error(tmp_path: Path, script: str, message: str) -> None:
    vtysh = tmp_path / "vtysh"
    vtysh.write_text(f"#!/bin/sh\n{script}\n")
    vtysh.chmod(0o755)
    with pytest.raises(BfdError, match=message):
        asyncio.run(set_shutdown(bfd(str(vtysh)), shutdown=True))


def test_missing_vtysh_is_our_error(tmp_path: Path) -> None:
    with pytest.raises(BfdError, match="No such file"):
        asyncio.run(set_shutdown(bfd(str(tmp_path / "absent")), shutdown=True))
