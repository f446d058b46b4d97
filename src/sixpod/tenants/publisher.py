"""The publisher: outbox rows, in revision order, to the Redis primary.

:func:`~sixpod.tenants.outbox.plan` (pure) turns a run of outbox rows into one batch: its
revision range, the coalesced ops, and the endpoint removals the churn guard weighs.
:class:`Publisher` is the adapter: it holds the lease in the store (exactly one active
publisher; the lease's fencing token is checked by every Redis script, so a stale one cannot
write), rebuilds Redis from a store snapshot when Redis is empty or on another epoch, and
otherwise ships batches.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as MetricCounter
from pydantic import Field

from sixpod.tenants import layout, ops
from sixpod.tenants.config import PublisherConfig
from sixpod.tenants.errors import Fenced, TenantError, Unavailable
from sixpod.tenants.guard import ChurnWindow, GuardLimits, Trip
from sixpod.tenants.outbox import Batch, Churn, OutboxRow, first_removal, plan
from sixpod.tenants.store import Store

log = logging.getLogger(__name__)


class PublisherSettings(PublisherConfig):
    """The ``publisher`` section of ``controller.yaml`` and what the controller wires in."""

    prefix: str = "sixpod"
    """The Redis key prefix (``redis.prefix``)."""
    holder: str = Field(default_factory=lambda: f"publisher-{secrets.token_hex(4)}")
    """This publisher's name in the lease."""
    guard: GuardLimits = GuardLimits()


class PublisherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.revision = Gauge(
            "sixpod_publisher_revision", "Last revision published to Redis", registry=registry
        )
        self.store_revision = Gauge(
            "sixpod_publisher_store_revision", "Last revision committed", registry=registry
        )
        self.lag = Gauge(
            "sixpod_publisher_lag_seconds",
            "Age of the oldest committed change not yet published",
            registry=registry,
        )
        self.active = Gauge(
            "sixpod_publisher_active", "1 when this controller holds the lease", registry=registry
        )
        self.changes = MetricCounter(
            "sixpod_publisher_changes", "Outbox rows published", registry=registry
        )
        self.batches = MetricCounter(
            "sixpod_publisher_batches", "Batches written to Redis", registry=registry
        )
        self.rebuilds = MetricCounter(
            "sixpod_publisher_rebuilds", "Full rebuilds of Redis from the store", registry=registry
        )
        self.guard_trips = MetricCounter(
            "sixpod_publisher_guard_trips",
            "Batches held back by the churn guard",
            registry=registry,
        )
        self.guard_tripped = Gauge(
            "sixpod_publisher_guard_tripped",
            "1 while a batch is held back by the churn guard",
            registry=registry,
        )


def _str(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Publisher:
    """Publishes the store's outbox to Redis. Run :meth:`run` in a thread of its own."""

    def __init__(
        self,
        store: Store,
        client: redis.Redis,
        settings: PublisherSettings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.keys = layout.Keys(settings.prefix)
        self.clock = clock
        self.metrics = PublisherMetrics(registry or CollectorRegistry())
        self.wake = threading.Event()
        self.window = ChurnWindow(settings.guard)
        self.epoch: str | None = None
        self.published = 0
        self.fence: int | None = None
        self.trip: Trip | None = None
        self.trip_revisions: tuple[int, int] | None = None
        self.last_error: str | None = None
        self.last_loop = 0.0
        self._apply = client.register_script(layout.APPLY)
        self._begin = client.register_script(layout.BEGIN)
        self._finish = client.register_script(layout.FINISH)
        self._drop = client.register_script(layout.DROP)
        self._claim = client.register_script(layout.CLAIM)
        self._last_prune = 0.0
        self._next_lease = 0.0
        self._must_rebuild = False
        self._held: tuple[int, int] | None = None
        self._first_seen = (0, 0.0)

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set. No error ends the loop: it is logged and retried."""
        while not stop.is_set():
            self.last_loop = self.clock()
            try:
                self._keep_lease()
                busy = self.fence is not None and self.step()
                self.last_error = None
            except Fenced as e:
                log.warning("publisher fenced: %s", e.detail)
                self._lose_lease()
                busy = False
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                if isinstance(e, TenantError | redis.RedisError):
                    log.warning("publisher: %s", self.last_error)
                else:
                    log.exception("publisher: unexpected error; retrying")
                self.epoch = None
                stop.wait(1.0)
                continue
            if not busy:
                self.wake.wait(self.settings.poll)
                self.wake.clear()
        if self.fence is not None:
            self.store.release_lease(self.settings.holder)
            self._lose_lease()

    def notify(self, _revision: int) -> None:
        self.wake.set()

    def _keep_lease(self) -> None:
        """Take or renew the lease every third of its length (also in the middle of a rebuild)."""
        now = self.clock()
        if now < self._next_lease:
            return
        self._next_lease = now + self.settings.lease / 3
        fence = self.store.acquire_lease(self.settings.holder, ttl=self.settings.lease)
        if fence != self.fence:
            self.epoch = None
        self.fence = fence
        self.metrics.active.set(0 if fence is None else 1)

    def _lose_lease(self) -> None:
        self.fence = None
        self.epoch = None
        self._next_lease = 0.0
        self.metrics.active.set(0)

    # -- one step -----------------------------------------------------------------------

    def step(self) -> bool:
        """Publish what is pending (or rebuild). True if there may be more to do at once."""
        if self.epoch is None:
            self._attach()
        rows = self.store.outbox_after(self.published, limit=self.settings.batch)
        if not rows:
            self.metrics.lag.set(0)
            self._prune()
            if not self._redis_holds_ours():
                log.warning(
                    "publisher: Redis no longer holds epoch %s at revision %d (restarted empty "
                    "or from an old snapshot?); rebuilding",
                    self.epoch,
                    self.published,
                )
                self.epoch = None
                return True
            return False
        if rows[0].revision != self.published + 1:
            log.warning(
                "publisher: the outbox no longer holds revision %d (it starts at %d); rebuilding",
                self.published + 1,
                rows[0].revision,
            )
            self._must_rebuild = True
            self.epoch = None
            return True
        self.metrics.store_revision.set(rows[-1].revision)
        now = self.clock()
        self.metrics.lag.set(max(0.0, now - rows[0].committed_at))
        if self._first_seen[0] != rows[0].revision:
            self._first_seen = (rows[0].revision, now)
        # Debounce on this clock: another controller's clock may be ahead of ours.
        waited = now - self._first_seen[1]
        if len(rows) < self.settings.batch and waited < self.settings.debounce:
            time.sleep(self.settings.debounce - waited)
            return True
        return self._publish(rows, now)

    def _publish(self, rows: list[OutboxRow], now: float) -> bool:
        if self._held is not None:
            held = (rows[-1].revision, self._forced_through())
            if self._held == held:
                return False  # still held, and nothing new to weigh
        batch = plan(self.published, rows)
        removals, trip = self._weigh(batch, now)
        if trip is None:
            self._ship(batch, record=removals)
            self.metrics.changes.inc(len(rows))
            return len(rows) == self.settings.batch
        held = (rows[-1].revision, self._forced_through())
        forced_through = held[1]
        if forced_through > self.published:
            released = [r for r in rows if r.revision <= forced_through]
            log.warning(
                "publisher: revisions %d-%d released by force past the churn guard",
                released[0].revision,
                released[-1].revision,
            )
            self._ship(plan(self.published, released), record=None)
            self.metrics.changes.inc(len(released))
            return True
        cut = first_removal(rows, trip.app)
        if cut > 0:
            prefix = plan(self.published, rows[:cut])
            prefix_removals, prefix_trip = self._weigh(prefix, now)
            if prefix_trip is None:
                self._ship(prefix, record=prefix_removals)
                self.metrics.changes.inc(cut)
                return True
        self._hold(trip, batch, held)
        return False

    def _redis_holds_ours(self) -> bool:
        """One round trip per idle poll: a primary that lost what was published is noticed
        without waiting for the next write (a new reader could not bootstrap meanwhile)."""
        epoch, state, revision = self.client.hmget(self.keys.meta, ["epoch", "state", "revision"])
        return (
            epoch is not None
            and _str(epoch) == self.epoch
            and state is not None
            and _str(state) == "ready"
            and revision is not None
            and int(_str(revision)) == self.published
        )

    def _forced_through(self) -> int:
        return self.store.publisher_row().forced_through

    def _attach(self) -> None:
        """Adopt what Redis holds if this store built it and can continue it; else rebuild.

        Redis is adopted only under the epoch the store recorded, at a revision whose commit
        time matches the store's outbox (not another pod's data, nor a restored backup's),
        and only if the outbox still holds what follows.
        """
        assert self.fence is not None
        self._check(self._claim(args=[self.settings.prefix, self.fence]))
        meta = {_str(k): _str(v) for k, v in self.client.hgetall(self.keys.meta).items()}
        if not self._must_rebuild and meta.get("state") == "ready":
            ours = self.store.publisher_row().epoch
            revision = int(meta.get("revision", -1))
            row = self.store.outbox_row(revision)
            if (
                meta.get("epoch") == ours
                and row is not None
                and f"{row.committed_at:.6f}" == meta.get("ts")
            ):
                self.epoch = meta["epoch"]
                self.published = revision
                log.info("publisher: following epoch %s at revision %d", self.epoch, revision)
                return
        self.rebuild()
        self._must_rebuild = False

    def rebuild(self) -> None:
        """Rewrite Redis from a consistent store snapshot, under a new epoch."""
        fence = self.fence
        assert fence is not None
        epoch = secrets.token_hex(8)
        prefix = self.settings.prefix
        self._check(self._begin(args=[prefix, fence, epoch]), ok_only=True)
        self._drop_keys(fence, epoch)
        with contextlib.closing(self.store.snapshot()) as snap:
            revision = next(snap)
            assert isinstance(revision, int)
            for chunk in snap:
                assert isinstance(chunk, list)
                self._still_holding(fence)
                reply = self._apply(
                    args=[prefix, fence, epoch, "build", 0, 0, 0, 0, ops.encode(chunk)]
                )
                self._check(reply, ok_only=True)
        row = self.store.outbox_row(revision)
        ts = f"{row.committed_at:.6f}" if row is not None else "0"
        reply = self._finish(args=[prefix, fence, epoch, revision, ts, self.settings.stream_length])
        self._check(reply, ok_only=True)
        self.store.set_published_epoch(fence, epoch)
        self.epoch = epoch
        self.published = revision
        self.metrics.rebuilds.inc()
        self.metrics.revision.set(revision)
        log.info("publisher: rebuilt Redis at revision %d, epoch %s", revision, epoch)

    def _still_holding(self, fence: int) -> None:
        self._keep_lease()
        if self.fence != fence:
            raise Fenced(f"the lease moved on (fence {self.fence}) during a rebuild")

    def _drop_keys(self, fence: int, epoch: str) -> None:
        """Remove every key of the prefix but the meta, through the fenced script."""
        batch: list[bytes | str] = []
        for key in self.client.scan_iter(match=f"{self.settings.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._still_holding(fence)
                self._check(
                    self._drop(keys=batch, args=[self.settings.prefix, fence, epoch]), ok_only=True
                )
                batch = []
        if batch:
            self._check(
                self._drop(keys=batch, args=[self.settings.prefix, fence, epoch]), ok_only=True
            )

    def _ship(self, batch: Batch, *, record: dict[str, tuple[int, int]] | None) -> None:
        """Write a batch; ``record``: its removals (and net losses) for the churn window."""
        assert self.fence is not None
        assert self.epoch is not None
        status, detail = self._check(
            self._apply(
                args=[
                    self.settings.prefix,
                    self.fence,
                    self.epoch,
                    "log",
                    batch.prev,
                    batch.rev,
                    f"{batch.ts:.6f}",
                    self.settings.stream_length,
                    ops.encode(batch.ops),
                ]
            )
        )
        if status not in ("OK", "DUP", "GAP", "EPOCH"):
            raise Unavailable(f"Redis answered {status} {detail}")
        if status in ("OK", "DUP"):
            self.published = batch.rev if status == "OK" else max(batch.rev, int(detail))
            if record:
                net = sum(n for _, n in record.values())
                self.window.record(self.clock(), {a: r for a, (r, _) in record.items()}, net=net)
            self._clear_trip()
            self.metrics.batches.inc()
            self.metrics.revision.set(self.published)
        else:  # GAP or EPOCH: Redis is not where we left it
            log.warning("publisher: Redis reports %s %s; re-attaching", status, detail)
            self.epoch = None

    def _check(self, reply: Any, *, ok_only: bool = False) -> tuple[str, str]:
        status, detail = (_str(x) for x in reply)
        if status == "FENCED":
            raise Fenced(f"Redis holds fencing token {detail}, newer than ours ({self.fence})")
        if ok_only and status != "OK":
            raise Unavailable(f"rebuilding Redis: {status} {detail} (another rebuild?)")
        return status, detail

    # -- the churn guard ----------------------------------------------------------------

    def _weigh(self, batch: Batch, now: float) -> tuple[dict[str, tuple[int, int]], Trip | None]:
        """Per app (removed, lost) by this batch against what the edges have (Redis)."""
        churn = Churn.of(batch)
        apps = churn.apps
        if not apps:
            return {}, None
        pipe = self.client.pipeline(transaction=False)
        for app in apps:
            fields = churn.removed.get(app, []) + churn.added.get(app, [])
            pipe.hlen(self.keys.up(app))
            pipe.hmget(self.keys.up(app), fields) if fields else pipe.echo("")
        replies = pipe.execute()
        removals: dict[str, tuple[int, int]] = {}
        remaining: dict[str, int] = {}
        for i, app in enumerate(apps):
            before = int(replies[2 * i])
            values = replies[2 * i + 1] if isinstance(replies[2 * i + 1], list) else []
            gone = churn.removed.get(app, [])
            present = values[: len(gone)]
            new = values[len(gone) :]
            if app in churn.cleared:
                removed, added = before, len(new)
            else:
                removed = sum(v is not None for v in present)
                added = sum(v is None for v in new)
            if removed:
                removals[app] = (removed, max(0, removed - added))
                remaining[app] = before - removed + added
        if not removals:
            return {}, None
        net = sum(n for _, n in removals.values())
        counted, at = self.store.endpoint_total_cached(now)
        total = counted - self.window.net_since(now, at) - net
        trip = self.window.check(
            now, {a: r for a, (r, _) in removals.items()}, remaining, total, net=net
        )
        return removals, trip

    def _hold(self, trip: Trip, batch: Batch, held: tuple[int, int]) -> None:
        if self.trip != trip or self.trip_revisions is None:
            self.metrics.guard_trips.inc()
            log.error(
                "publisher: churn guard holds revisions %d-%d: %s; "
                "force with `sixpod publisher force` after checking",
                batch.prev + 1,
                batch.rev,
                trip.reason,
            )
        self.trip = trip
        self.trip_revisions = (batch.prev + 1, batch.rev)
        self._held = held
        self.metrics.guard_tripped.set(1)

    def _clear_trip(self) -> None:
        self._held = None
        if self.trip is not None:
            self.trip = None
            self.trip_revisions = None
            self.metrics.guard_tripped.set(0)

    def _prune(self) -> None:
        now = self.clock()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        try:
            self.store.prune_outbox(below=self.published - self.settings.outbox_keep)
        except Unavailable as e:
            log.warning("publisher: pruning the outbox: %s", e.detail)

    def status(self) -> dict[str, Any]:
        return {
            "active": self.fence is not None,
            "holder": self.settings.holder,
            "fence": self.fence,
            "epoch": self.epoch,
            "published": self.published,
            "guard": None
            if self.trip is None
            else {"reason": self.trip.reason, "revisions": self.trip_revisions},
            "error": self.last_error,
            "last_loop": self.last_loop,
        }
