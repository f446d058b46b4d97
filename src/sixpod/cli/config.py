"""Loading a daemon's typed config for the command line: exit 1 with positioned messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

import click
from pydantic import BaseModel

from sixpod.errors import SixpodError
from sixpod.inventory.load import load_model

M = TypeVar("M", bound=BaseModel)


def load_config_or_exit(path: Path, model: type[M]) -> M:
    """``model`` read from ``path``; on error print ``FILE:LINE:COL: message`` and exit 1."""
    try:
        return load_model(path.read_text(encoding="utf-8"), str(path), model)
    except OSError as e:
        click.echo(f"{path}: cannot read: {e.strerror}", err=True)
    except SixpodError as e:  # the config error of the model's package
        for d in e.diagnostics:
            click.echo(str(d), err=True)
    sys.exit(1)
