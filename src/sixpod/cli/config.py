"""Loading a daemon's typed config for the command line: exit 1 with positioned messages."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from sixpod.cli.errors import CommandFailed
from sixpod.errors import SixpodError
from sixpod.inventory.load import load_model

M = TypeVar("M", bound=BaseModel)


def load_config_or_exit(path: Path, model: type[M]) -> M:
    """``model`` read from ``path``; if it cannot be, the command fails with each problem
    as ``FILE:LINE:COL: message`` (the config error of the model's package)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CommandFailed(f"{path}: cannot read: {e.strerror}") from None
    try:
        return load_model(text, str(path), model)
    except SixpodError as e:
        raise CommandFailed.because(e) from None
