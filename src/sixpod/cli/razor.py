"""``sixpod razor``: run the authoritative DNS server; ``sixpod razor attribute``: who is
under attack, and the re-shard that moves them away."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sixpod import addr
from sixpod.cli.config import load_config_or_exit
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.razor.config import RazorConfig
from sixpod.razor.errors import RazorError


def load_config(path: Path) -> RazorConfig:
    """The Razor config; exit 1 with ``FILE:LINE:COL: message`` if it is wrong."""
    return load_config_or_exit(path, RazorConfig)


CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="razor.yaml: run the server with it (needed unless a subcommand is given).",
)


@examples(
    "sixpod razor --config /etc/sixpod/razor.yaml",
    "sixpod razor attribute --config /etc/sixpod/razor.yaml 203.0.113.7",
)
@click.group(invoke_without_command=True)
@CONFIG
@click.pass_context
def razor(ctx: click.Context, config_path: Path | None) -> None:
    """Authoritative DNS: random, shuffle-sharded VIPs.

    `sixpod razor --config razor.yaml` runs the server until SIGTERM (SIGHUP re-reads the
    state file).
    """
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("--config is required to run the server")
    from sixpod import logs
    from sixpod.razor.server import main

    cfg = load_config(config_path)
    logs.setup("razor")  # before main's own basicConfig, which it overrides
    sys.exit(main(cfg))


def _vips(texts: tuple[str, ...]) -> list[addr.IPAddress]:
    out = []
    for t in texts:
        try:
            out.append(addr.parse_ip(t))
        except addr.AddressError as e:
            raise CommandFailed.because(e, f"sixpod razor: {e}") from None
    return out


@examples(
    "sixpod razor attribute --config razor.yaml 203.0.113.7 2001:db8:ffff::7",
    "sixpod razor attribute --config razor.yaml 203.0.113.7 --reshard shop",
    "sixpod razor attribute --config razor.yaml 203.0.113.7 --reshard shop"
    " --api 'http://[::1]:8700' --token-file /etc/sixpod/controller.token",
)
@razor.command()
@click.argument("vips", nargs=-1, required=True, metavar="VIP...")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="razor.yaml (its pool and state file or tenants Redis are read; nothing is sent)",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many suspect apps to list.",
)
@click.option("--reshard", "reshard_app", metavar="APP", help="plan moving APP off the VIPs")
@click.option("--api", "api_url", metavar="URL", help="controller API: carry the plan out")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="file holding the controller API token (with --api)",
)
def attribute(
    vips: tuple[str, ...],
    config_path: Path,
    as_json: bool,
    limit: int,
    reshard_app: str | None,
    api_url: str | None,
    token_file: Path | None,
) -> None:
    """Who an attack on the VIPs aims at; re-shard the victim.

    Ranks the apps whose shuffle shards hold the VIPs. Offline: reads the pool and state
    from razor.yaml's sources and sends nothing. With --reshard APP, print the plan (new
    shard seed, VIPs to blackhole); with --api as well, carry it out through the controller.
    """
    from sixpod.razor.attribution import plan_reshard, rank_apps
    from sixpod.razor.feed import StaticFeed
    from sixpod.razor.shard import Shards

    if api_url is not None and (reshard_app is None or token_file is None):
        raise click.UsageError("--api needs --reshard APP and --token-file")
    attacked = _vips(vips)
    cfg = load_config(config_path)
    try:
        state = StaticFeed(cfg).load()
    except RazorError as e:
        raise CommandFailed.because(e, f"sixpod razor: {e.message}") from None
    unknown = [addr.format_ip(ip) for ip in attacked if ip not in state.vips]
    if unknown:
        raise CommandFailed(f"sixpod razor: not in the pool: {', '.join(unknown)}")
    shards = Shards(cfg.shard_size, cfg.max_overlap)
    ranked = rank_apps(attacked, state, shards, limit=limit)
    plan = None
    if reshard_app is not None:
        try:
            plan = plan_reshard(reshard_app, attacked, state, shards)
        except KeyError:
            raise CommandFailed(f"sixpod razor: no app {reshard_app!r} in the state") from None
    applied: list[str] = []
    if plan is not None and api_url is not None and token_file is not None:
        from sixpod.razor.reshard import apply_plan

        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise CommandFailed(f"{token_file}: cannot read: {e.strerror}") from None
        try:
            applied = apply_plan(plan, api_url, token)
        except RazorError as e:
            raise CommandFailed.because(e, f"sixpod razor: {e.message}") from None
    if as_json:
        out: dict[str, object] = {
            "attacked": [addr.format_ip(ip) for ip in attacked],
            "suspects": [s.to_json() for s in ranked],
        }
        if plan is not None:
            out["reshard"] = plan.to_json()
            out["applied"] = applied
        click.echo(json.dumps(out, indent=2))
        return
    if not ranked:
        click.echo("no app's shard holds these VIPs (an attack on the shared name or the IPs)")
    else:
        click.echo(f"{'rank':>4}  {'app':<24} {'hits':>9}  {'coverage':>8}  chance")
        for i, s in enumerate(ranked, 1):
            click.echo(
                f"{i:>4}  {s.app:<24} {s.hits:>4}/{s.attacked:<4}  {s.coverage:>8.0%}  "
                f"{s.chance:.2g}"
            )
    if plan is not None:
        p = plan.to_json()
        click.echo(
            f"re-shard {plan.app}: shard_seed {plan.old_seed} -> {plan.new_seed} "
            f"({p['kept']} of {len(plan.new_shard)} shard VIPs kept); "
            f"blackhole {', '.join(p['pull']) or 'nothing'}"  # type: ignore[arg-type]
        )
        for line in applied:
            click.echo(f"done: {line}")
        if api_url is None:
            click.echo("(plan only: add --api URL --token-file FILE to apply it)")
