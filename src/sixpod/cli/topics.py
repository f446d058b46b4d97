"""``sixpod help [TOPIC|COMMAND]``: man-style topics; ``sixpod completion SHELL``.

The inventory topic is written from the model itself (every key, its type, default and
description), so it cannot drift from what ``sixpod check`` accepts.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from enum import Enum
from ipaddress import IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any

import annotated_types
import click
from click.shell_completion import get_completion_class
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sixpod import addr
from sixpod.cli.help import examples
from sixpod.inventory.model import Inventory

COMPLETE_VAR = "_SIXPOD_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

EXAMPLE = """\
pod:
  name: lab1
  aggregate: 2001:db8:200::/56
  links: 2001:db8:2ff::/60
  asns: {first: 64512, last: 64520}
  vips:
    ipv4: {pools: [203.0.113.0/28], count: 4}
    ipv6: {pools: [2001:db8:2fe::/124], count: 4}
racks:
  - name: r1
    tor:
      name: r1-tor
      ports: [swp1-swp8]
      port_mtu: {swp8: 1500}
nodes:
  - {name: edge1, rack: r1, role: edge, port: swp1}
  - {name: edge2, rack: r1, role: edge, port: swp2}
  - {name: vm1, rack: r1, role: internal, port: swp3, nic: vmxnet3, vswitch_mtu: 9000}
"""

_WORDS: dict[Any, str] = {
    int: "number",
    str: "text",
    bool: "true or false",
    IPv6Network: "IPv6 prefix",
    IPv4Network: "IPv4 prefix",
    IPv6Address: "IPv6 address",
    IPv6Interface: "IPv6 address/length",
    addr.Endpoint: "[IPv6]:port",
    float: "number",
}


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``(hint without Annotated and None, whether None is allowed)``."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint, optional


def _kind(hint: Any) -> str:
    hint, _ = _unwrap(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return f"list of {_kind(typing.get_args(hint)[0])}"
    if origin is dict:
        return f"mapping of name to {_kind(typing.get_args(hint)[1])}"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return "mapping"
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(str(m.value) for m in hint)
    return _WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def _constraints(hint: Any) -> list[Any]:
    """The metadata of the Annotated types inside ``hint`` (``MTU | None``, say)."""
    out: list[Any] = []
    if typing.get_origin(hint) is typing.Annotated:
        for m in typing.get_args(hint)[1:]:
            out += m.metadata if isinstance(m, FieldInfo) else [m]
    for arg in typing.get_args(hint) if typing.get_origin(hint) is not typing.Annotated else ():
        out += _constraints(arg)
    return out


def _bounds(field: FieldInfo) -> str:
    """``1280-65535``, ``>= 3``, ``> 0 and <= 3600``: every bound the model enforces."""
    meta = [*field.metadata, *_constraints(field.annotation)]
    lo = next((m.ge for m in meta if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in meta if isinstance(m, annotated_types.Le)), None)
    if lo is not None and hi is not None:
        return f" {lo}-{hi}"
    above = next((m.gt for m in meta if isinstance(m, annotated_types.Gt)), None)
    below = next((m.lt for m in meta if isinstance(m, annotated_types.Lt)), None)
    parts = [
        f"{op} {v}"
        for op, v in ((">=", lo), (">", above), ("<=", hi), ("<", below))
        if v is not None
    ]
    return f" {' and '.join(parts)}" if parts else ""


def _yaml(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(value) if value else "{}"
    if value is None:
        return "none"
    return str(value)


def _model_of(hint: Any) -> type[BaseModel] | None:
    hint, _ = _unwrap(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return _model_of(typing.get_args(hint)[0])
    if origin is dict:
        return _model_of(typing.get_args(hint)[1])
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    return None


def _keys(model: type[BaseModel], depth: int, out: list[str]) -> None:
    for name, field in model.model_fields.items():
        if field.is_required():
            when = "required"
        else:
            default = field.get_default(call_default_factory=True)
            when = "optional" if default is None or isinstance(default, BaseModel) else (
                f"default {_yaml(default)}"
            )  # fmt: skip
        pad = "  " * depth
        out.append(f"{pad}  {name}: {_kind(field.annotation)}{_bounds(field)} ({when})")
        out.append(f"{pad}      {field.description or ''}".rstrip())
        sub = _model_of(field.annotation)
        if sub is not None:
            _keys(sub, depth + 1, out)


def inventory_topic() -> str:
    keys: list[str] = []
    _keys(Inventory, 1, keys)
    example = "\n".join(f"    {line}" for line in EXAMPLE.splitlines())
    return f"""\
SIXPOD-INVENTORY(5)

NAME
    pod.yaml - the inventory of a sixpod pod: racks, nodes, prefixes, ASNs, VIP pools

DESCRIPTION
    One YAML file, reviewed like code. `sixpod check` validates it, `sixpod allocate`
    records what it allocates (node /64s, rack ASNs, uplink addresses, VIPs) in pod.lock
    beside it, `sixpod render` writes each device's configs from both.

    Unknown keys are errors. Numbers are written without quotes ("9000" is text).
    Addresses and prefixes may be in any valid text form and are normalised; prefixes
    must have their host bits clear. Names are lowercase letters, digits and '-'.
    VIP pools and upstream links must be space clients on the Internet can reach;
    documentation ranges (2001:db8::/32, 203.0.113.0/24, ...) are allowed, for labs.

KEYS
    Each key with its type, whether it is required or its default, and what it is.
    A mapping's keys are indented under it; a list of mappings holds items with those keys.

{chr(10).join(keys)}

EXAMPLE
{example}

SEE ALSO
    sixpod check --help, sixpod allocate --help, sixpod render --help;
    examples/pod.yaml (3 racks, 12 nodes, 512 + 512 VIPs) in the source tree.
"""


def output_topic() -> str:
    return """\
SIXPOD-OUTPUT(7)

NAME
    sixpod output and exit codes

DESCRIPTION
    Every verb prints a table, or one line when it did one thing. With --json it prints
    the same fields as JSON: a list of objects for a table, one object otherwise (nested
    fields, shown as a.b in a table, are nested objects). Counts read as English.

    Errors go to stderr, never stdout, in both modes. Messages about a file have the form
    FILE:LINE:COL: message; "warning:" and "note:" ones do not fail.

EXIT CODES
    0   done
    1   wrong input, or the command could not do what it was asked
    2   usage error (unknown option, missing argument)
"""


TOPICS: dict[str, tuple[str, Callable[[], str]]] = {
    "inventory": ("the pod.yaml format: every key, its type and default", inventory_topic),
    "output": ("tables, --json and exit codes", output_topic),
}


@examples("sixpod help inventory", "sixpod help output", "sixpod help render")
@click.command("help", short_help="Man-style topics (pod.yaml), or a command's help.")
@click.argument("words", nargs=-1, metavar="[TOPIC | COMMAND...]")
@click.pass_context
def help_cmd(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Man-style topics (the inventory format), or a command's help.

    With no argument, lists the topics.
    """
    root = ctx.find_root()
    if not words:
        click.echo("Topics (sixpod help TOPIC):")
        for name, (what, _) in TOPICS.items():
            click.echo(f"  {name:<10} {what}")
        click.echo("\nAny command's help: sixpod help COMMAND, or sixpod COMMAND --help.")
        return
    if len(words) == 1 and words[0] in TOPICS:
        click.echo(TOPICS[words[0]][1](), nl=False)  # plain: read with less, grep, a pipe
        return
    cmd: click.Command = root.command
    sub_ctx = root
    for word in words:
        group = cmd if isinstance(cmd, click.Group) else None
        found = group.get_command(sub_ctx, word) if group else None
        if found is None:
            choices = [*TOPICS, *(group.list_commands(sub_ctx) if group else [])]
            close = difflib.get_close_matches(word, choices, n=1)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise click.UsageError(f"no help topic or command {word!r}{hint}", ctx)
        cmd = found
        sub_ctx = click.Context(cmd, info_name=word, parent=sub_ctx)
    click.echo(cmd.get_help(sub_ctx))


@examples(
    "sixpod completion bash > /etc/bash_completion.d/sixpod",
    'eval "$(sixpod completion bash)"   # or this, in ~/.bashrc',
    "sixpod completion zsh > ~/.zfunc/_sixpod",
    "sixpod completion fish > ~/.config/fish/completions/sixpod.fish",
)
@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    The same script as `_SIXPOD_COMPLETE=bash_source sixpod` (click's own completion):
    verbs, options and file names complete with TAB.
    """
    cls = get_completion_class(shell)
    assert cls is not None
    comp = cls(ctx.find_root().command, {}, "sixpod", COMPLETE_VAR)
    click.echo(comp.source())
