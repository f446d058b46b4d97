"""One output rule for every verb: a table (or one line) by default, ``--json`` for scripts,
the same fields in both. Counts read as English: :func:`plural`.

Errors never come through here: they go to stderr with a non-zero exit, in both modes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from sixpod.words import plural

__all__ = [
    "JSON_OPTION",
    "cell",
    "echo_json",
    "flatten",
    "line",
    "plural",
    "record",
    "rows",
    "table",
]

JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts): the same fields."
)


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else "-"
    return str(value)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def rows(items: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool) -> None:
    """A list: one row per item, one column per field; with ``as_json`` a JSON list of
    objects with exactly those fields. An empty list prints nothing but the header."""
    picked = [{c: i.get(c) for c in columns} for i in items]
    if as_json:
        echo_json(picked)
        return
    table(list(columns), [[cell(item[c]) for c in columns] for item in picked])


def table(header: list[str] | None, body: list[list[str]]) -> None:
    """Columns aligned with two spaces, like kubectl's; no borders, no trailing blanks."""
    lines = ([header] if header else []) + body
    if not lines:
        return
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    for row in lines:
        click.echo("  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip())


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the fields of a record, for a two-column table."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def record(data: Mapping[str, Any], *, as_json: bool) -> None:
    """One object: a field/value table (nested fields as ``a.b``), or the object as JSON."""
    if as_json:
        echo_json(data)
        return
    table(None, [[key, cell(value)] for key, value in flatten(data).items()])


def line(text: str, data: Mapping[str, Any], *, as_json: bool) -> None:
    """A verb that did one thing: ``text`` (which states ``data``'s fields), or ``data``."""
    if as_json:
        echo_json(data)
    else:
        click.echo(text)
