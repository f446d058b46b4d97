"""Writing files so that readers see the old content or the new, never a mix."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

MARKER = ".sixpod-render"
"""Written into every tree :func:`replace_tree` makes: a later render may replace that tree."""
MARKER_TEXT = "Written by `sixpod render`; the next render replaces this directory whole.\n"


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


def _only(root: Path, patterns: Iterable[str]) -> bool:
    """Whether every file under ``root`` matches one of ``patterns`` (``NAME`` and ``JOB``
    match a name without '/'), with at least one file: a tree rendered before :data:`MARKER`
    existed."""
    regexes = [
        re.compile(re.escape(p).replace("NAME", "[^/]+").replace("JOB", "[^/]+") + r"\Z")
        for p in patterns
    ]
    found = False
    for path in root.rglob("*"):
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            return False
        if path.is_file():
            found = True
            rel = path.relative_to(root).as_posix()
            if not any(r.match(rel) for r in regexes):
                return False
    return found


def refuse_tree(
    root: Path, keep: Iterable[Path], *, force: bool = False, rendered: Iterable[str] = ()
) -> str | None:
    """Why replacing ``root`` would destroy something not ours, or None if it would not.

    ``root`` is never the filesystem root or the current directory (which cannot be renamed).
    ``root`` must not be, nor hold, any of the ``keep`` files (the inventory and its lock),
    whatever ``force`` says; and a non-empty ``root`` must be a previous render unless
    ``force``: it holds :data:`MARKER`, or holds only files named by ``rendered`` (patterns
    like ``nodes/NAME/device.json``; a render from before the marker).
    """
    root = Path(root).resolve()
    if root == root.parent:
        return "it is the root of the filesystem"
    if root == Path.cwd().resolve():
        return "it is the current directory; render into a directory of its own"
    for path in keep:
        where = Path(path).resolve().parent
        if root == where or root in where.parents:
            return f"it holds {path}; render into a directory of its own"
    if (
        not force
        and root.is_dir()
        and not (root / MARKER).is_file()
        and any(root.iterdir())
        and not _only(root, rendered)
    ):
        return (
            f"it is not empty and not a previous render (no {MARKER}); "
            "everything in it would be deleted: give --force if that is intended"
        )
    return None


def replace_tree(root: Path, files: dict[str, str]) -> None:
    """Make ``root`` hold exactly ``files`` (and :data:`MARKER`): build the new tree beside it,
    then swap it in with two renames, ``root`` to a temporary name and the new tree to ``root``.

    Not atomic for readers: between the two renames (microseconds) ``root`` does not exist, so
    a reader that opens a file then sees it missing, never a mix of old and new files. On any
    failure, the old tree is put back exactly as it was and the temporaries are removed; the
    exception propagates. ``root`` is resolved first, so ``out/../out`` and symlinks in its
    path are safe; the filesystem root is refused (:class:`ValueError`).
    """
    root = Path(root).resolve()
    if root == root.parent:
        raise ValueError(f"{root}: cannot replace the root of the filesystem")
    parent = root.parent
    parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{root.name}.new.", dir=parent))
    old: Path | None = None
    try:
        for rel, text in files.items():
            target = new / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        (new / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        new.chmod(0o755)
        if root.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old.", dir=parent))
            os.rename(root, old)  # replaces the empty placeholder
        os.rename(new, root)
    except BaseException:
        if old is not None and old.exists() and not root.exists():
            os.rename(old, root)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)  # an unused placeholder: root never moved
        shutil.rmtree(new, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(parent)
