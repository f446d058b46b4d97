"""The ``sixpod`` command line: one entry point, one module per group of verbs.

Exit codes (the contract other tools rely on): 0 success, 1 wrong input, 2 usage error.
"""

from __future__ import annotations

import click

from sixpod import __version__
from sixpod.cli.addr import addr
from sixpod.cli.inventory import allocate_cmd, check, render_cmd, status
from sixpod.cli.lab import lab
from sixpod.cli.node import announcer, edge_agent, node
from sixpod.cli.razor import razor
from sixpod.cli.tenants import app, controller, domain, endpoint, publisher, vip
from sixpod.cli.tor import tor_resilient


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sixpod")
def cli() -> None:
    """Control plane of an IPv6-only anycast hosting pod."""


for command in (
    check,
    allocate_cmd,
    render_cmd,
    status,
    addr,
    announcer,
    edge_agent,
    node,
    tor_resilient,
    lab,
    controller,
    app,
    domain,
    endpoint,
    vip,
    publisher,
    razor,
):
    cli.add_command(command)


def main() -> None:
    cli()
