"""Help text that says something: examples under every verb, the top level as a guide.

Each command's help ends with an ``Examples:`` section (kubectl's layout): one command per
line, unwrapped, a ``#`` comment allowed. The tests parse every example as click would run
it, so an example that stops working fails the build.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

C = TypeVar("C", bound=click.Command)


def examples(*lines: str) -> Callable[[C], C]:
    """Put ``lines`` (each a whole ``sixpod ...`` command) under the command's help."""

    def apply(cmd: C) -> C:
        cmd.epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
        return cmd

    return apply


class GuideGroup(click.Group):
    """The top level: commands listed by what an operator is doing, not alphabetically."""

    def __init__(self, *args: Any, sections: Sequence[tuple[str, Sequence[str]]], **kw: Any):
        super().__init__(*args, **kw)
        self.sections = sections

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(n) for _, names in self.sections for n in names)
        for title, names in self.sections:
            rows = []
            for name in names:
                cmd = self.get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
