"""replace_tree: the new tree or the old one, exactly, and never a temporary left behind;
write_atomic: the new content or the old, and the mode asked for."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sixpod.inventory import files
from sixpod.inventory.files import MARKER, replace_tree, write_atomic


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_replaces_through_a_dotdot_path(tmp_path: Path) -> None:
    replace_tree(tmp_path / "v4/out", {"a/b.txt": "old\n"})
    replace_tree(tmp_path / "v4/out/../out", {"c.txt": "new\n"})
    assert tree(tmp_path / "v4/out") == {"c.txt": "new\n", MARKER: files.MARKER_TEXT}
    assert os.listdir(tmp_path / "v4") == ["out"]


@pytest.mark.parametrize("failing", [1, 2])
def test_a_failed_swap_keeps_the_old_tree_and_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    out = tmp_path / "out"
    replace_tree(out, {"a/b.txt": "old\n"})
    before = tree(out)
    calls = []
    real = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        calls.append((src, dst))
        if len(calls) == failing:
            raise OSError(16, "Device or resource busy")
        real(src, dst)

    monkeypatch.setattr(files.os, "rename", rename)
    with pytest.raises(OSError, match="busy"):
        replace_tree(out, {"c.txt": "new\n"})
    monkeypatch.undo()
    assert tree(out) == before
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_write_keeps_the_old_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    replace_tree(out, {"a.txt": "old\n"})
    with pytest.raises(FileExistsError):
        replace_tree(out, {"a.txt": "new\n", "a.txt/b": "a file under a file\n"})
    assert tree(out)["a.txt"] == "old\n"
    assert os.listdir(tmp_path) == ["out"]


def test_the_filesystem_root_is_refused() -> None:
    with pytest.raises(ValueError, match="root of the filesystem"):
        replace_tree(Path("/"), {})


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
