"""The publisher lease: one controller publishes at a time, fenced by a token that only grows.

The lease lives in the store's ``publisher`` row, so it fails over with the database; a
holder renews it every loop, and a new holder raises the fence before it writes to Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sixpod.tenants.schema import publisher_t


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The store's ``publisher`` row."""

    holder: str
    """Who holds (or last held) the lease; "" before anyone took it."""
    fence: int
    """The fencing token: raised by each new holder, checked by Redis writes."""
    lease_until: float
    """Unix seconds; the lease is free after."""
    forced_through: int
    """The churn guard lets every change up to this revision pass."""
    epoch: str
    """The epoch Redis was last built under by this store's publisher ("" before)."""


class PublisherLease:
    """The lease's side of :class:`~sixpod.tenants.store.Store` (a base class of it)."""

    clock: Callable[[], float]
    sqlite: bool

    def _connect(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def acquire_lease(self, holder: str, *, ttl: float) -> int | None:
        """Take or renew the publisher lease; the fencing token, or None if another holds it."""
        now = self.clock()
        with self._connect() as conn, conn.begin():
            conn.execute(publisher_t.update().where(publisher_t.c.id == 1).values(id=1))
            row = conn.execute(sa.select(publisher_t).where(publisher_t.c.id == 1)).one()
            if row.holder == holder and row.lease_until >= now:
                fence = int(row.fence)
            elif row.lease_until < now or not row.holder:
                fence = int(row.fence) + 1
            else:
                return None
            conn.execute(
                publisher_t.update()
                .where(publisher_t.c.id == 1)
                .values(holder=holder, fence=fence, lease_until=now + ttl)
            )
        return fence

    def release_lease(self, holder: str) -> None:
        with self._connect() as conn, conn.begin():
            conn.execute(
                publisher_t.update()
                .where(publisher_t.c.id == 1)
                .where(publisher_t.c.holder == holder)
                .values(lease_until=0.0)
            )

    def force_through(self, revision: int) -> None:
        """Let the publisher pass the churn guard for every change up to ``revision``."""
        with self._connect() as conn, conn.begin():
            conn.execute(
                publisher_t.update()
                .where(publisher_t.c.id == 1)
                .values(
                    forced_through=sa.func.max(publisher_t.c.forced_through, revision)
                    if self.sqlite
                    else sa.func.greatest(publisher_t.c.forced_through, revision)
                )
            )

    def set_published_epoch(self, fence: int, epoch: str) -> None:
        """Record the epoch this store's publisher built Redis under (checked on attach)."""
        with self._connect() as conn, conn.begin():
            conn.execute(
                publisher_t.update()
                .where(publisher_t.c.id == 1)
                .where(publisher_t.c.fence == fence)
                .values(epoch=epoch)
            )

    def publisher_row(self) -> LeaseState:
        with self._connect() as conn:
            r = conn.execute(sa.select(publisher_t)).one()
        return LeaseState(
            r.holder, int(r.fence), float(r.lease_until), int(r.forced_through), r.epoch
        )
