"""The BFD adapter: vtysh command lines, and failures as our own error."""

from __future__ import annotations

import asyncio
import os
import time
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


def test_a_cancelled_call_kills_and_reaps_vtysh(tmp_path: Path) -> None:
    """The announcer exits while vtysh hangs: vtysh is killed and reaped, so it cannot apply
    `shutdown` after the announcer has gone (and leaves no zombie)."""
    pid_file, applied = tmp_path / "pid", tmp_path / "applied"
    vtysh = tmp_path / "vtysh"
    vtysh.write_text(f'#!/bin/sh\necho $$ > {pid_file}\nsleep 1\necho "$@" > {applied}\n')
    vtysh.chmod(0o755)

    async def main() -> int:
        task = asyncio.create_task(set_shutdown(bfd(str(vtysh)), shutdown=True))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert loop.time() < deadline, "vtysh did not start"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return int(pid_file.read_text())

    pid = asyncio.run(main())
    with pytest.raises(ProcessLookupError):  # gone, not even a zombie: it was reaped
        os.kill(pid, 0)
    time.sleep(1.5)  # past the sleep: a vtysh left running would have applied it
    assert not applied.exists()
