"""``sixpod tor-resilient``: keep the ToR's VIP routes on resilient nexthop groups."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from sixpod import logs
from sixpod.cli.config import load_config_or_exit
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.cli.output import plural

log = logging.getLogger("sixpod.tor-resilient")


@examples(
    "sixpod tor-resilient --config /etc/sixpod/resilient.yaml",
    "sixpod tor-resilient --config /etc/sixpod/resilient.yaml --once   # one sync, then exit",
)
@click.command("tor-resilient")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="resilient.yaml (rendered by `sixpod render` beside the ToR's frr.conf).",
)
@click.option("--once", is_flag=True, help="Sync once, print the operations applied, exit.")
def tor_resilient(config_path: Path, once: bool) -> None:
    """Keep the ToR's VIP routes on resilient nexthop groups.

    Mirrors FRR's VIP paths into kernel resilient nexthop groups; run it on the ToR.

    On exit (SIGTERM) the helper's rules and routes are removed, so VIP traffic falls back
    to FRR's own ECMP routes; run it under a supervisor that restarts it.
    """
    from sixpod.metricshttp import MetricsServer, MetricsServerError
    from sixpod.routing.resilient.adapters import IpKernel, RouteEvents, VtyshFrr
    from sixpod.routing.resilient.config import TorResilientConfig
    from sixpod.routing.resilient.daemon import SyncResult, run, sync
    from sixpod.routing.resilient.errors import ResilientError
    from sixpod.routing.resilient.metrics import ResilientMetrics
    from sixpod.routing.resilient.plan import teardown_plan

    logs.setup("tor-resilient")
    cfg = load_config_or_exit(config_path, TorResilientConfig)
    frr = VtyshFrr(vty_socket=cfg.vty_socket, vtysh=cfg.vtysh, timeout=cfg.command_timeout)
    kernel = IpKernel(netns=cfg.netns, ip=cfg.ip, timeout=cfg.command_timeout)
    settings = cfg.settings()
    try:
        if cfg.set_hash_policy:
            kernel.set_multipath_hash(1)
        if once:
            result = sync(settings, frr=frr, kernel=kernel)
            click.echo(plural(len(result.plan.ops), "operation"))
            return
    except ResilientError as e:
        raise CommandFailed.because(e, f"sixpod tor-resilient: {e}") from None

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    metrics = ResilientMetrics(cfg.vips)
    served = MetricsServer(metrics.registry, cfg.metrics)
    try:
        served.start()
    except MetricsServerError as e:
        raise CommandFailed.because(e, f"sixpod tor-resilient: {e}") from None

    def report(result: SyncResult | ResilientError) -> None:
        metrics.observe(result)
        if isinstance(result, ResilientError):
            log.error("%s", result)
        elif result.applied:
            log.info("applied %d operations", len(result.plan.ops))

    try:
        with RouteEvents(netns=cfg.netns, ignore_table=cfg.table) as events:
            run(cfg, frr=frr, kernel=kernel, stop=stop, events=events, on_result=report)
    finally:
        served.stop()
        try:
            kernel.apply(teardown_plan(kernel.read(settings), settings).ops)
            log.info("removed the helper's rules and routes")
        except ResilientError as e:
            log.error("teardown: %s", e)
