"""The root of every package's root exception, and the diagnostic that points into a file.

Each package has one root (``InventoryError``, ``RoutingError``, ``RazorError``,
``TenantError``, ``LabError``...), split below it by whose fault it is. They all derive from
:class:`SixpodError`, which carries what the command line needs: the process's exit code and,
for a file the operator wrote, the ``FILE:LINE:COL`` diagnostics. Wire consequences (an HTTP
status, a DNS rcode) are the packages' own attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self, TypeAlias

__all__ = [
    "ConfigFileError",
    "Diagnostic",
    "ExceptionMap",
    "SixpodError",
    "map_exceptions",
    "sort_diagnostics",
]


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


def sort_diagnostics(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """In the order an operator reads them: by file, line, column."""
    return sorted(diagnostics, key=lambda d: (d.filename, d.line, d.column))


class SixpodError(Exception):
    """Root of every package's root exception.

    ``exit_code`` is the command line's exit status when this error ends a command (1: wrong
    input or failed; see :mod:`sixpod.cli`). ``diagnostics`` are the positions in the
    operator's files it is about, if any; ``str(err)`` is then one per line.

    A package root takes its message as its first argument, so :meth:`at` builds any of them.
    """

    exit_code: int = 1
    diagnostics: Sequence[Diagnostic] = ()

    @classmethod
    def at(cls, diagnostics: Sequence[Diagnostic]) -> Self:
        """This error about ``diagnostics`` (a config file's problems, say)."""
        found = sort_diagnostics(diagnostics)
        err = cls("\n".join(str(d) for d in found))
        err.diagnostics = found
        return err


class ConfigFileError(SixpodError):
    """The operator's fault: a config file cannot be used. Exit 1.

    Raised for a model that does not name its package's own config error (its
    ``config_error`` class attribute); the daemons' configs all do.
    """


ExceptionMap: TypeAlias = Mapping[
    type[BaseException] | tuple[type[BaseException], ...],
    Callable[[Any], BaseException] | None,
]
"""Foreign exception types to what builds the error raised in their place (``None``: let it
through as it is, before a broader entry would take it). The first matching entry wins."""


@contextmanager
def map_exceptions(mapping: ExceptionMap) -> Iterator[None]:
    """Translate foreign exceptions once, at the I/O edge (httpcore's ``map_exceptions``).

    An exception of a listed type is replaced by the error its entry builds, raised without the
    foreign chain; anything not listed (a bug, a cancellation) passes through unchanged.
    """
    try:
        yield
    except Exception as exc:
        for kinds, translate in mapping.items():
            if isinstance(exc, kinds):
                if translate is None:
                    raise
                raise translate(exc) from None
        raise
