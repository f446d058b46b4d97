"""Errors of the inventory package: diagnostics that point at a file, line and column.

One root, :class:`InventoryError`; every error here is the operator's fault (the inventory,
its lock, or what was asked of them) and nothing was written. Exit code 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from sixpod.errors import Diagnostic, SixpodError, sort_diagnostics

__all__ = ["Diagnostic", "InventoryError"]


class InventoryError(SixpodError):
    """The inventory or its lock is wrong; nothing was written. Exit code 1.

    ``diagnostics`` name the file, line and column of each problem; an error that has no
    position (its subclasses') says what is wrong in ``message`` instead.
    """

    exit_code = 1

    def __init__(self, diagnostics: Sequence[Diagnostic], message: str | None = None) -> None:
        self.diagnostics: list[Diagnostic] = sort_diagnostics(diagnostics)
        if message is None:
            message = "\n".join(str(d) for d in self.diagnostics)
        super().__init__(message)
