"""Writing files so that readers see the old content or the new, never a mix."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` by writing a temporary file beside it and renaming.

    The file gets ``mode`` exactly (the umask does not apply): 0600, the temporary file's, by
    default; 0644 for what other users read (the announcer's status and ledger)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def replace_tree(root: Path, files: dict[str, str]) -> None:
    """Make ``root`` hold exactly ``files``: build a new tree beside it, then swap it in."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{root.name}.new.", dir=root.parent))
    old = root.parent / f".{root.name}.old.{os.getpid()}"
    try:
        for rel, text in files.items():
            target = new / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        new.chmod(0o755)
        if root.exists():
            os.rename(root, old)
        os.rename(new, root)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if old.exists() and not root.exists():
            os.rename(old, root)
        raise
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(root.parent)
