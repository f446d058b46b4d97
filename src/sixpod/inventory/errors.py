"""Errors of the inventory package: diagnostics that point at a file, line and column."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding, printed as ``FILE:LINE:COL: message`` (warnings say so)."""

    filename: str
    line: int
    column: int
    message: str
    warning: bool = False
    note: bool = False  # nothing wrong; printed as ``note:`` and never fails a check

    @property
    def error(self) -> bool:
        return not (self.warning or self.note)

    def __str__(self) -> str:
        kind = "warning: " if self.warning else "note: " if self.note else ""
        return f"{self.filename}:{self.line}:{self.column}: {kind}{self.message}"


class InventoryError(Exception):
    """The inventory or its lock is wrong; nothing was written. Exit code 1."""

    exit_code = 1

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.filename, d.line, d.column))
        super().__init__("\n".join(str(d) for d in self.diagnostics))
