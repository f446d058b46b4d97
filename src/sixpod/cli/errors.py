"""How a command fails: raise :class:`CommandFailed`; :mod:`sixpod.cli` prints it and exits.

Every verb fails the same way, in one place: the lines go to stderr and the process exits
with the error's ``exit_code``. A command that fails because of a package's error takes the
exit code that error carries (:meth:`CommandFailed.because`).
"""

from __future__ import annotations

from sixpod.errors import SixpodError

__all__ = ["CommandFailed"]


class CommandFailed(SixpodError):
    """The command failed; ``lines`` say why (none if it already said so on stdout).

    Exit code 1 (wrong input or failed) unless given; usage errors are click's (2).
    """

    def __init__(self, *lines: str, exit_code: int | None = None) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        if exit_code is not None:
            self.exit_code = exit_code

    @classmethod
    def because(cls, error: SixpodError, *lines: str) -> CommandFailed:
        """Failed because of ``error``: ``lines`` (default: the error's diagnostics, one per
        line, or its message), and the exit code it carries."""
        own = [str(d) for d in error.diagnostics] or [str(error)]
        return cls(*(lines or own), exit_code=error.exit_code)
