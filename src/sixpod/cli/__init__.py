"""The ``sixpod`` command line: one entry point, one module per group of verbs.

Exit codes (the contract other tools rely on): 0 success, 1 wrong input, 2 usage error.
A verb fails by raising :class:`~sixpod.cli.errors.CommandFailed`, which carries its exit
code; :class:`Sixpod` prints it and exits with that code, here and nowhere else.
"""

from __future__ import annotations

from typing import Any

import click

from sixpod import __version__
from sixpod.cli.addr import addr
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import GuideGroup, examples
from sixpod.cli.inventory import allocate_cmd, check, render_cmd, status
from sixpod.cli.lab import lab
from sixpod.cli.node import announcer, edge_agent, node
from sixpod.cli.probe import probe
from sixpod.cli.razor import razor
from sixpod.cli.tenants import app, cert, controller, domain, endpoint, publisher, vip
from sixpod.cli.topics import completion_cmd, help_cmd
from sixpod.cli.tor import tor_resilient

# How `sixpod --help` groups the commands: by what the operator is doing, and where.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("The inventory (pod.yaml, on any machine)", ("check", "allocate", "render", "status")),
    ("On a node", ("announcer", "node", "edge-agent", "probe")),
    ("On a ToR switch", ("tor-resilient",)),
    (
        "Tenants (through the controller's API)",
        ("controller", "app", "domain", "cert", "endpoint", "vip", "publisher"),
    ),
    ("DNS", ("razor",)),
    ("Trying and tools", ("lab", "addr", "help", "completion")),
)


class Sixpod(GuideGroup):
    """The top level; it ends every failed verb: stderr, then the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommandFailed as e:
            for line in e.lines:
                click.echo(line, err=True)
            raise click.exceptions.Exit(e.exit_code) from e


@examples(
    "sixpod check examples/small.yaml",
    "sixpod render examples/small.yaml --out out/small",
)
@click.group(
    cls=Sixpod,
    sections=SECTIONS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="sixpod")
def cli() -> None:
    """Control plane of an IPv6-only anycast hosting pod.

    Start with the inventory: describe the pod's racks, nodes, prefixes and VIP pools in a
    pod.yaml (examples/small.yaml is a small one), then:

    \b
      sixpod check pod.yaml              validate it; errors as FILE:LINE:COL
      sixpod allocate pod.yaml           record /64s, ASNs and VIPs in pod.lock
      sixpod render pod.yaml --out out/  write every device's configs into out/
      sixpod status pod.yaml             the pod at a glance
      sixpod lab up pod.yaml             the whole pod in namespaces here (root)

    Each node and ToR then runs its sixpod daemon from its rendered config, and tenants
    (apps, domains, endpoints) are managed through the controller. Every command has
    examples in its --help; `sixpod help inventory` describes pod.yaml key by key, and
    `eval "$(sixpod completion bash)"` completes commands with TAB. Output is a table or
    one line; --json where a script reads it (`sixpod help output`). Exit codes: 0 done,
    1 wrong input or failed, 2 usage error.
    """


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
    cert,
    endpoint,
    vip,
    publisher,
    razor,
    probe,
    help_cmd,
    completion_cmd,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="sixpod")
