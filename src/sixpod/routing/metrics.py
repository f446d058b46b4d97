"""Prometheus metrics of the announcer: check and node states, routes, session, transitions."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge

from sixpod import addr
from sixpod.metricshttp import MetricsServer
from sixpod.routing.events import CheckState, NodeState
from sixpod.routing.health import Announcer
from sixpod.routing.liveness import SpeakerState
from sixpod.routing.routesync import RouteSync


class AnnouncerMetrics:
    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.node_state = Gauge(
            "sixpod_announcer_state", "1 for the node's current state", ["state"], registry=r
        )
        self.state_since = Gauge(
            "sixpod_announcer_state_since_seconds",
            "monotonic time of the last node state transition",
            registry=r,
        )
        self.check_state = Gauge(
            "sixpod_announcer_check_state",
            "1 for each check's state",
            ["check", "state"],
            registry=r,
        )
        self.check_since = Gauge(
            "sixpod_announcer_check_since_seconds",
            "monotonic time of each check's last transition",
            ["check"],
            registry=r,
        )
        self.routes = Gauge(
            "sixpod_announcer_routes_announced",
            "routes acknowledged by ExaBGP",
            ["family"],
            registry=r,
        )
        self.blackholed = Gauge(
            "sixpod_announcer_vips_blackholed",
            "this node's VIPs withdrawn because they are blackholed through the API",
            registry=r,
        )
        self.pending = Gauge(
            "sixpod_announcer_routes_pending", "route operations awaiting ExaBGP", registry=r
        )
        self.session_up = Gauge(
            "sixpod_announcer_session_up", "1 while the BGP session is established", registry=r
        )
        self.family = Gauge(
            "sixpod_announcer_session_family",
            "1 if the last BGP session negotiated carrying this family from the node (IPv4: RFC"
            " 8950 extended next hop), 0 if not, -1 if ExaBGP did not report it",
            ["family"],
            registry=r,
        )
        self.refused = Gauge(
            "sixpod_announcer_routes_refused",
            "routes the node would announce but does not, as the session cannot carry them",
            ["family"],
            registry=r,
        )
        self.speaker_alive = Gauge(
            "sixpod_announcer_speaker_alive",
            "1 while ExaBGP answers the announcer, 0 while it is hung, -1 before its first answer",
            registry=r,
        )
        self.bfd_shutdown = Gauge(
            "sixpod_announcer_bfd_shutdown",
            "1 while the announcer holds the node's BFD session down (ExaBGP hung)",
            registry=r,
        )
        self.floor_held = Gauge(
            "sixpod_announcer_floor_held",
            "1 while the pod-wide floor keeps the VIPs announced despite failing checks",
            registry=r,
        )
        self.info = Gauge("sixpod_announcer_info", "the node", ["node"], registry=r)
        self.info.labels(node=node).set(1)
        self.families(None)
        self.speaker(SpeakerState.UNKNOWN, None)
        self._server: MetricsServer | None = None

    def session(self, *, up: bool) -> None:
        self.session_up.set(1 if up else 0)

    def speaker(self, state: SpeakerState, bfd_shutdown: bool | None) -> None:
        alive = {SpeakerState.ALIVE: 1, SpeakerState.HUNG: 0, SpeakerState.UNKNOWN: -1}
        self.speaker_alive.set(alive[state])
        self.bfd_shutdown.set(1 if bfd_shutdown else 0)

    def families(self, carries: frozenset[int] | None) -> None:
        for family, version in (("ipv4", 4), ("ipv6", 6)):
            self.family.labels(family=family).set(
                -1 if carries is None else int(version in carries)
            )

    def update(self, core: Announcer, sync: RouteSync) -> None:
        for node_state in NodeState:
            self.node_state.labels(state=node_state.value).set(int(core.state is node_state))
        self.state_since.set(core.state_since)
        for check in core.checks:
            for state in CheckState:
                self.check_state.labels(check=check.name, state=state.value).set(
                    1 if check.state is state else 0
                )
            self.check_since.labels(check=check.name).set(check.since)
        for family, version in (("ipv4", 4), ("ipv6", 6)):
            self.routes.labels(family=family).set(sync.announced_count(version))
        refused = core.refused()
        for family, version in (("ipv4", 4), ("ipv6", 6)):
            self.refused.labels(family=family).set(
                sum(1 for r in refused if r.prefix.version == version)
            )
        self.pending.set(sync.pending_count)
        self.blackholed.set(len(core.blackholed_vips))
        self.floor_held.set(1 if core.floor_held else 0)

    def serve(self, endpoints: Sequence[addr.Endpoint]) -> None:
        """Serve ``/metrics`` on every endpoint (IPv6 or IPv4) in background threads.

        Raises :class:`~sixpod.metricshttp.MetricsServerError` if one cannot be bound."""
        self._server = MetricsServer(self.registry, endpoints)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
