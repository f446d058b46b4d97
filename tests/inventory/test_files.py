"""Atomic writes: the new content or the old, and the mode asked for."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sixpod.inventory.files import write_atomic


def test_write_atomic_replaces_and_sets_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_atomic(path, "one\n")
    assert path.read_text() == "one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the default: private
    old = os.umask(0o077)  # the mode is given exactly, whatever the umask
    try:
        write_atomic(path, "two\n", mode=0o644)
    finally:
        os.umask(old)
    assert path.read_text() == "two\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temporary file left
