"""The publisher: outbox rows, in revision order, to the Redis primary.

:func:`plan` (pure) turns a run of outbox rows into one batch: its revision range, the
coalesced ops, and the endpoint removals the churn guard weighs. :class:`Publisher` is the
adapter: it holds the lease in the store (exactly one active publisher; the lease's fencing
token is checked by every Redis script, so a stale one cannot write), rebuilds Redis from a
store snapshot when Redis is empty or on another epoch, and otherwise ships batches.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as MetricCounter

from sixpod.tenants import layout, ops
from sixpod.tenants.errors import Fenced, TenantError, Unavailable
from sixpod.tenants.guard import ChurnWindow, GuardLimits, Trip
from sixpod.tenants.store import OutboxRow, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Batch:
    prev: int
    rev: int
    ts: float
    ops: list[ops.Op]
    removals: dict[str, int]
    forced: bool


def plan(prev: int, rows: Sequence[OutboxRow]) -> Batch:
    """One batch from consecutive outbox rows after revision ``prev``."""
    if not rows:
        raise ValueError("plan: no rows")
    removals: Counter[str] = Counter()
    for row in rows:
        if row.op[0] == "ep-" and not row.forced:
            removals[row.op[1]] += 1
    return Batch(
        prev=prev,
        rev=rows[-1].revision,
        ts=rows[-1].committed_at,
        ops=ops.coalesce([r.op for r in rows]),
        removals=dict(removals),
        forced=all(r.forced for r in rows),
    )


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    prefix: str = "sixpod"
    holder: str = field(default_factory=lambda: f"publisher-{secrets.token_hex(4)}")
    debounce: float = 0.005
    """Seconds the oldest unpublished change may wait for more to coalesce with it."""
    batch: int = 5000
    """Most outbox rows in one Redis write."""
    poll: float = 0.1
    """Seconds between looks at the outbox when not woken by a local commit."""
    lease: float = 5.0
    """Seconds a lease lasts; renewed every third of that."""
    stream_length: int = 100_000
    """Approximate entries kept in the Redis stream (readers further behind rebuild)."""
    outbox_keep: int = 1_000_000
    """Revisions kept in the store's outbox behind what is published."""
    guard: GuardLimits = field(default_factory=GuardLimits)


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
        self._apply = client.register_script(layout.APPLY)
        self._begin = client.register_script(layout.BEGIN)
        self._finish = client.register_script(layout.FINISH)
        self._total_cache: tuple[float, int] | None = None
        self._last_prune = 0.0

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        next_lease = 0.0
        while not stop.is_set():
            now = self.clock()
            try:
                if now >= next_lease:
                    self._renew()
                    next_lease = now + self.settings.lease / 3
                busy = self.fence is not None and self.step()
                self.last_error = None
            except Fenced as e:
                log.warning("publisher fenced: %s", e.detail)
                self._lose_lease()
                busy = False
            except (TenantError, redis.RedisError) as e:
                self.last_error = str(e)
                log.warning("publisher: %s", e)
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

    def _renew(self) -> None:
        fence = self.store.acquire_lease(self.settings.holder, ttl=self.settings.lease)
        if fence != self.fence:
            self.epoch = None
        self.fence = fence
        self.metrics.active.set(0 if fence is None else 1)

    def _lose_lease(self) -> None:
        self.fence = None
        self.epoch = None
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
            return False
        self.metrics.store_revision.set(rows[-1].revision)
        now = self.clock()
        self.metrics.lag.set(max(0.0, now - rows[0].committed_at))
        if len(rows) < self.settings.batch and now - rows[0].committed_at < self.settings.debounce:
            time.sleep(self.settings.debounce - (now - rows[0].committed_at))
            return True
        batch = plan(self.published, rows)
        if not self._guard_allows(batch, now):
            return False
        self._ship(batch)
        self.metrics.changes.inc(len(rows))
        return len(rows) == self.settings.batch

    def _attach(self) -> None:
        """Adopt what Redis holds if this store built it and can continue it; else rebuild.

        The epoch recorded in the store says Redis holds this store's data (not another
        pod's, nor a restored backup's); the outbox must still hold what follows.
        """
        assert self.fence is not None
        meta = {_str(k): _str(v) for k, v in self.client.hgetall(self.keys.meta).items()}
        head = self.store.head()
        ours = self.store.publisher_row()["epoch"]
        if (
            meta.get("state") == "ready"
            and meta.get("epoch") == ours
            and int(meta.get("fence", 0)) <= self.fence
        ):
            revision = int(meta["revision"])
            oldest = self.store.oldest_outbox()
            reachable = revision == head or (oldest is not None and oldest <= revision + 1)
            if revision <= head and reachable:
                self.epoch = meta["epoch"]
                self.published = revision
                log.info("publisher: following epoch %s at revision %d", self.epoch, revision)
                return
        self.rebuild()

    def rebuild(self) -> None:
        """Rewrite Redis from a consistent store snapshot, under a new epoch."""
        assert self.fence is not None
        epoch = secrets.token_hex(8)
        self._check(self._begin(args=[self.settings.prefix, self.fence, epoch]), ok_only=True)
        self._drop_keys()
        snap = self.store.snapshot()
        revision = next(snap)
        assert isinstance(revision, int)
        for chunk in snap:
            assert isinstance(chunk, list)
            self._check(
                self._apply(
                    args=[
                        self.settings.prefix,
                        self.fence,
                        epoch,
                        "build",
                        0,
                        0,
                        0,
                        0,
                        ops.encode(chunk),
                    ]
                ),
                ok_only=True,
            )
        self._check(
            self._finish(
                args=[
                    self.settings.prefix,
                    self.fence,
                    epoch,
                    revision,
                    f"{self.clock():.6f}",
                    self.settings.stream_length,
                ]
            ),
            ok_only=True,
        )
        self.store.set_published_epoch(self.fence, epoch)
        self.epoch = epoch
        self.published = revision
        self.metrics.rebuilds.inc()
        self.metrics.revision.set(revision)
        log.info("publisher: rebuilt Redis at revision %d, epoch %s", revision, epoch)

    def _drop_keys(self) -> None:
        batch: list[bytes | str] = []
        for key in self.client.scan_iter(match=f"{self.settings.prefix}:*", count=1000):
            if _str(key) != self.keys.meta:
                batch.append(key)
            if len(batch) >= 1000:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    def _ship(self, batch: Batch) -> None:
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
            self.window.record(self.clock(), batch.removals)
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

    def _guard_allows(self, batch: Batch, now: float) -> bool:
        """Weigh the batch's removals against what the edges have now (Redis)."""
        if not batch.removals:
            self._clear_trip()
            return True
        apps = sorted(batch.removals)
        pipe = self.client.pipeline(transaction=False)
        for app in apps:
            pipe.hlen(self.keys.up(app))
        remaining = {
            app: max(0, int(n) - batch.removals[app])
            for app, n in zip(apps, pipe.execute(), strict=True)
        }
        trip = self.window.check(now, batch.removals, remaining, self._endpoint_total(now))
        if trip is None:
            self._clear_trip()
            return True
        if batch.rev <= int(self.store.publisher_row()["forced_through"]):
            self._clear_trip()
            return True
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
        self.metrics.guard_tripped.set(1)
        return False

    def _clear_trip(self) -> None:
        if self.trip is not None:
            self.trip = None
            self.trip_revisions = None
            self.metrics.guard_tripped.set(0)

    def _endpoint_total(self, now: float) -> int:
        if self._total_cache is None or now - self._total_cache[0] > 5.0:
            self._total_cache = (now, self.store.endpoint_total())
        return self._total_cache[1]

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
        }
