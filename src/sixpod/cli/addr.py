"""``sixpod addr``: normalize address text, and write it for one consumer.

All-or-nothing: every input is checked first; if any is malformed, each problem is reported
on stderr as ``sixpod: addr: 'TEXT': reason``, nothing is printed on stdout, and the exit
code is 1. Usage errors exit 2 (click).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click

from sixpod.addr import CONSUMERS, AddressError, Consumer, format_for, format_value, parse_any
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.output import JSON_OPTION, echo_json


def _convert_all(texts: Sequence[str], convert: Callable[[str], str], as_json: bool) -> None:
    out: list[str] = []
    failed = False
    for text in texts:
        try:
            out.append(convert(text))
        except AddressError as e:
            click.echo(f"sixpod: addr: {e}", err=True)
            failed = True
    if failed:
        raise CommandFailed(exit_code=AddressError.exit_code)  # each one is on stderr
    if as_json:
        echo_json([{"input": t, "output": o} for t, o in zip(texts, out, strict=True)])
        return
    for line in out:
        click.echo(line)


@examples(
    "sixpod addr normalize 2001:DB8:0:0::1 '[2001:db8::1]:443'",
    "sixpod addr format --for nginx '[2001:db8::1]:443'",
)
@click.group()
def addr() -> None:
    """Normalize addresses, prefixes and endpoints; format them.

    Every address sixpod reads or writes goes through the same rules (RFC 5952 output).
    """


@examples(
    "sixpod addr normalize 2001:DB8:0:0::1   # 2001:db8::1",
    "sixpod addr normalize 2001:db8::/64 '[2001:db8::1]:443' 192.0.2.1",
    "sixpod addr normalize --json 2001:DB8::1",
)
@addr.command()
@click.argument("texts", nargs=-1, required=True, metavar="TEXT...")
@JSON_OPTION
def normalize(texts: tuple[str, ...], as_json: bool) -> None:
    """Print the canonical RFC 5952 form of each TEXT, one per line.

    TEXT is an address (2001:DB8::1, [2001:db8::1], fe80::1%eth0, 192.0.2.1), a prefix
    (2001:db8::/64; host bits are kept: 2001:DB8::1/64 -> 2001:db8::1/64), an endpoint
    ([2001:db8::1]:443, 192.0.2.1:80) or a URL. Unbracketed IPv6 is always an address.
    """
    _convert_all(texts, lambda t: format_value(parse_any(t, allow_zone=True)), as_json)


@examples(
    "sixpod addr format --for url '[2001:db8::1]:443'",
    "sixpod addr format --for exabgp 2001:db8::/64 192.0.2.1",
)
@addr.command("format")
@click.option(
    "--for",
    "consumer",
    required=True,
    type=click.Choice(CONSUMERS),
    help="The program or syntax that will read the text.",
)
@click.argument("texts", nargs=-1, required=True, metavar="TEXT...")
@JSON_OPTION
def format_(consumer: Consumer, texts: tuple[str, ...], as_json: bool) -> None:
    """Write each TEXT as CONSUMER expects it, one per line.

    \b
    url         endpoints -> [2001:db8::1]:443 (URL authority), and whole URLs
    nginx       endpoints -> [2001:db8::1]:443 (listen/server), prefixes (allow/deny)
    exabgp      addresses and prefixes, bare
    redis       endpoints -> [2001:db8::1]:8080 (members), addresses bare (bind/replicaof)
    prometheus  endpoints -> [2001:db8::1]:9100 (targets)

    A zone id is never written for any consumer (RFC 9844).
    """
    _convert_all(texts, lambda t: format_for(consumer, parse_any(t, allow_zone=True)), as_json)
