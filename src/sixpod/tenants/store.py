"""The controller's store: tenant state in SQL (SQLAlchemy Core) with a transactional outbox.

Every write transaction first locks the one ``revision`` row, so writers are serialised and
commit in revision order on SQLite and PostgreSQL alike; the publisher can then read the
outbox by revision and never see a gap that a later commit would fill. Each change to an
object is one outbox row holding its op (see :mod:`sixpod.tenants.ops`), written in the same
transaction as the data. The tables and their migrations are :mod:`sixpod.tenants.schema`;
the publisher lease is :mod:`sixpod.tenants.lease`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType, SimpleNamespace
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy.engine import Connection, Engine

from sixpod import addr
from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.inventory.lock import Lock
from sixpod.tenants import certs, issuance, names, ops, schema, sealed
from sixpod.tenants.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from sixpod.tenants.guard import ChurnWindow, GuardLimits
from sixpod.tenants.lease import PublisherLease
from sixpod.tenants.model import (
    PAGE_MAX,
    App,
    AppPatch,
    AppRecord,
    AppSpec,
    CertInfo,
    Challenge,
    DomainRecord,
    Endpoint,
    EndpointRecord,
    EndpointRef,
    EndpointSpec,
    EndpointState,
    Node,
    NodeRecord,
    NodeSpec,
    NodeState,
    Vip,
    VipRecord,
    VipSpec,
    VipState,
    text_field,
)
from sixpod.tenants.outbox import OutboxRow
from sixpod.tenants.schema import (
    SCHEMA_VERSION,
    acme_t,
    apps_t,
    certs_t,
    challenges_t,
    domains_t,
    endpoints_t,
    nodes_t,
    outbox_t,
    revision_t,
    vips_t,
)

log = logging.getLogger(__name__)

IfMatch = int | Collection[int] | None
"""A conditional write: the revision, or revisions, the object must be at."""


_DATABASE_ERRORS: ExceptionMap = {
    sa.exc.OperationalError: lambda e: Unavailable(f"database: {e.orig}"),
    sa.exc.TimeoutError: lambda e: Unavailable("database: no free connection in the pool; retry"),
    sa.exc.DataError: lambda e: InvalidInput(f"a value the database cannot store: {e.orig}"),
}

_LOCK_REVISION = (
    revision_t.update()
    .where(revision_t.c.id == 1)
    .values(value=revision_t.c.value)
    .returning(revision_t.c.value)
)
_SET_REVISION = (
    revision_t.update().where(revision_t.c.id == 1).values(value=sa.bindparam("b_value"))
)
_OUTBOX_INSERT = outbox_t.insert()
_OUTBOX_AFTER = (
    sa.select(outbox_t)
    .where(outbox_t.c.revision > sa.bindparam("b_after"))
    .order_by(outbox_t.c.revision)
    .limit(sa.bindparam("b_limit"))
)
_APP_EXISTS = sa.select(apps_t.c.name).where(apps_t.c.name == sa.bindparam("b_app"))
_APP_ENDPOINTS = sa.select(
    endpoints_t.c.address, endpoints_t.c.port, endpoints_t.c.weight, endpoints_t.c.state
).where(endpoints_t.c.app == sa.bindparam("b_app"))
_EP_KEY = sa.and_(
    endpoints_t.c.app == sa.bindparam("b_app"),
    endpoints_t.c.address == sa.bindparam("b_address"),
    endpoints_t.c.port == sa.bindparam("b_port"),
)
_EP_UPDATE = (
    endpoints_t.update()
    .where(_EP_KEY)
    .values(
        weight=sa.bindparam("b_weight"),
        state=sa.bindparam("b_state"),
        revision=sa.bindparam("b_revision"),
    )
)
_EP_DELETE = endpoints_t.delete().where(_EP_KEY)


MAX_PAGE = PAGE_MAX
MAX_BATCH = 10_000


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next`` is the cursor of the next page (None: the last)."""

    items: list[T]
    next: str | None


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """The result of a write: the object as stored and the last revision the write used."""

    item: T
    revision: int


@dataclass(frozen=True, slots=True)
class EndpointsChanged:
    """What one endpoints write did: endpoints added or updated, and endpoints removed."""

    changed: int
    removed: int


@dataclass(slots=True)
class _Tx:
    conn: Connection
    base: int
    forced: bool
    now: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, op: ops.Op) -> int:
        rev = self.base + len(self.rows) + 1
        self.rows.append(
            {"revision": rev, "op": ops.dumps(op), "forced": self.forced, "committed_at": 0.0}
        )
        return rev

    @property
    def last(self) -> int:
        return self.base + len(self.rows)


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, decide where transactions begin (real snapshots)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def _endpoint_text(address: str, port: int) -> str:
    """The Redis member form of a stored endpoint.

    Stored addresses are already canonical RFC 5952 text (from :func:`addr.format_ip`), so
    this only adds what :func:`addr.for_redis` adds for IPv6: brackets and the port.
    """
    return f"[{address}]:{port}"


def _parse_endpoint_text(text: str) -> addr.Endpoint:
    try:
        return addr.parse_endpoint(text)
    except addr.AddressError as e:
        raise InvalidInput(f"endpoint: {e}") from None


class Store(PublisherLease):
    """Tenant state and its outbox. Methods are thread-safe; each write is one transaction."""

    def __init__(
        self,
        url: str,
        *,
        lock: Lock | None = None,
        guard: GuardLimits | None = None,
        clock: Callable[[], float] = time.time,
        seal_key: X25519PublicKey | None = None,
    ) -> None:
        self.url = url
        self.seal_key = seal_key
        """The edge nodes' public sealing key: keys are stored and published sealed by it
        (without it, certificates cannot be stored)."""
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            _sqlite_transactions(self.engine)
        self.guard = guard or GuardLimits()
        self._window = ChurnWindow(self.guard)
        self._window_lock = threading.Lock()
        self._total: tuple[float, int] | None = None
        self._total_lock = threading.Lock()
        self._total_refreshing = False
        self.clock = clock
        self._nodes_by_prefix: dict[int, str] = {}
        self._vips: set[str] = set()
        self._lock = lock
        if lock is not None:
            self._nodes_by_prefix = {
                int(a.prefix.network_address) >> 64: n for n, a in lock.nodes.items()
            }
            pool: list[IPv4Address | IPv6Address] = [*lock.vips4, *lock.vips6]
            self._vips = {addr.format_ip(v) for v in pool}
        self.on_commit: Callable[[int], None] | None = None
        self._outbox_conn: Connection | None = None
        self._outbox_lock = threading.Lock()

    def close(self) -> None:
        with self._outbox_lock:
            if self._outbox_conn is not None:
                self._outbox_conn.close()
                self._outbox_conn = None
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._connect() as conn:
            return schema.version(conn)

    def migrate(self) -> int:
        """Create the schema, or upgrade it with the Alembic scripts; data is kept.

        One transaction: a migration that fails leaves the database as it was. On PostgreSQL
        an advisory lock serialises controllers that start together.
        """
        with self._connect() as conn, conn.begin():
            if not self.sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(726373)")
            current = schema.version(conn)
            if current > SCHEMA_VERSION:
                raise Unavailable(
                    f"database schema version {current} is newer than this sixpod "
                    f"({SCHEMA_VERSION}); upgrade sixpod"
                )
            schema.upgrade(conn)
        self._seal_clear_keys()
        self._unshadow_uploads()
        return SCHEMA_VERSION

    def _unshadow_uploads(self) -> None:
        """Withdraw ACME certificates an uploaded wildcard covers, left by a sixpod that
        ordered them (the edge would serve them before the upload, and past their expiry)."""
        with self._write() as tx:
            for wildcard in sorted(self._uploaded_wildcards(tx.conn)):
                for shadowing in self._acme_certs_under(tx.conn, wildcard):
                    tx.conn.execute(certs_t.delete().where(certs_t.c.domain == shadowing))
                    tx.emit(ops.cert_deleted(shadowing))
                    log.info("store: %s is covered by the upload of %s", shadowing, wildcard)

    def _seal_clear_keys(self) -> None:
        """Seal (and publish) keys a sixpod that stored them in clear left in the store."""
        with self._connect() as conn:
            clear = conn.execute(
                sa.select(certs_t.c.domain).where(~certs_t.c.key.startswith(sealed.PREFIX))
            ).all()
        if not clear:
            return
        if self.seal_key is None:
            raise Unavailable(
                f"{len(clear)} stored certificates hold a key in clear; set cert_seal_key "
                "in controller.yaml (the edge nodes' public sealing key) to seal them"
            )
        for (domain,) in clear:
            with self._write() as tx:
                r = tx.conn.execute(sa.select(certs_t).where(certs_t.c.domain == domain)).one()
                if sealed.is_sealed(r.key):
                    continue
                key = sealed.seal(r.key, domain, self.seal_key)
                tx.conn.execute(certs_t.update().where(certs_t.c.domain == domain).values(key=key))
                tx.emit(_cert_op(r, key))
        log.info("store: sealed and published %d certificate keys", len(clear))

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with map_exceptions(_DATABASE_ERRORS), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, *, forced: bool = False) -> Iterator[_Tx]:
        with self._connect() as conn, conn.begin():
            base = int(conn.execute(_LOCK_REVISION).scalar_one())
            tx = _Tx(conn, base, forced, self.clock())
            yield tx
            if tx.rows:
                now = self.clock()
                for row in tx.rows:
                    row["committed_at"] = now
                conn.execute(_OUTBOX_INSERT, tx.rows)
                conn.execute(_SET_REVISION, {"b_value": tx.last})
        if tx.rows and self.on_commit is not None:
            self.on_commit(tx.last)

    def head(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(sa.select(revision_t.c.value)).scalar_one())

    # -- pod inventory ------------------------------------------------------------------

    def sync_pool(self) -> int:
        """Make the VIP and node rows match ``pod.lock``: add new ones, remove gone ones."""
        if self._lock is None:
            return self.head()
        with self._write() as tx:
            have = {r.address for r in tx.conn.execute(sa.select(vips_t.c.address))}
            for v in sorted(self._vips - have):
                rev = tx.emit(ops.vip(v, VipState.ACTIVE, ""))
                tx.conn.execute(
                    vips_t.insert().values(address=v, state="active", reason="", revision=rev)
                )
            for v in sorted(have - self._vips):
                tx.emit(ops.vip_deleted(v))
                tx.conn.execute(vips_t.delete().where(vips_t.c.address == v))
            wanted = set(self._lock.nodes)
            have = {r.name for r in tx.conn.execute(sa.select(nodes_t.c.name))}
            for n in sorted(wanted - have):
                rev = tx.emit(ops.node(n, NodeState.ACTIVE, ""))
                tx.conn.execute(
                    nodes_t.insert().values(name=n, state="active", reason="", revision=rev)
                )
            for n in sorted(have - wanted):
                tx.emit(ops.node_deleted(n))
                tx.conn.execute(nodes_t.delete().where(nodes_t.c.name == n))
            last = tx.last
        return last

    def node_of(self, address: IPv6Address) -> str:
        node = self._nodes_by_prefix.get(int(address) >> 64)
        if node is None:
            raise InvalidInput(
                f"endpoint address {addr.format_ip(address)}: not inside any node's /64 in pod.lock"
            )
        return node

    # -- apps ---------------------------------------------------------------------------

    def list_apps(self, *, after: str | None = None, limit: int = 100) -> Page[AppRecord]:
        q = sa.select(apps_t).order_by(apps_t.c.name)
        if _cursor(after):
            q = q.where(apps_t.c.name > after)
        return self._page(q, limit, _app_record, lambda r: r.app.name)

    def _page(
        self, q: sa.Select[Any], limit: int, item: Callable[[Any], T], key: Callable[[T], str]
    ) -> Page[T]:
        limit = _limit(limit)
        with self._connect() as conn:
            rows = conn.execute(q.limit(limit + 1)).all()
        items = [item(r) for r in rows[:limit]]
        nxt = key(items[-1]) if len(rows) > limit else None
        return Page(items, nxt)

    def get_app(self, name: str) -> AppRecord:
        _known_app(name)
        with self._connect() as conn:
            row = conn.execute(sa.select(apps_t).where(apps_t.c.name == name)).first()
        if row is None:
            raise NotFound(f"app {name!r} does not exist")
        return _app_record(row)

    def create_app(self, spec: AppSpec) -> Written[AppRecord]:
        _built(spec, AppSpec)
        name, owner, shard_seed = spec.name, spec.owner, spec.shard_seed
        settings = dict(spec.settings)
        with self._write() as tx:
            if tx.conn.execute(sa.select(apps_t.c.name).where(apps_t.c.name == name)).first():
                raise Conflict(f"app {name!r} already exists")
            rev = tx.emit(ops.app(name, owner, shard_seed, settings))
            row = {
                "name": name,
                "owner": owner,
                "shard_seed": shard_seed,
                "settings": json.dumps(settings, sort_keys=True),
                "revision": rev,
            }
            tx.conn.execute(apps_t.insert().values(**row))
            last = tx.last
        return Written(
            AppRecord(App(name, owner, shard_seed, MappingProxyType(settings)), rev), last
        )

    def update_app(
        self, name: str, patch: AppPatch, *, if_match: IfMatch = None
    ) -> Written[AppRecord]:
        _known_app(name)
        _built(patch, AppPatch)
        with self._write() as tx:
            row = tx.conn.execute(sa.select(apps_t).where(apps_t.c.name == name)).first()
            if row is None:
                raise NotFound(f"app {name!r} does not exist")
            _precondition(f"app {name!r}", row.revision, if_match)
            old = _app_record(row)
            new = App(
                name,
                old.app.owner if patch.owner is None else patch.owner,
                old.app.shard_seed if patch.shard_seed is None else patch.shard_seed,
                old.app.settings if patch.settings is None else patch.settings,
            )
            if new == old.app:
                return Written(old, tx.base)
            rev = tx.emit(ops.app(name, new.owner, new.shard_seed, dict(new.settings)))
            tx.conn.execute(
                apps_t.update()
                .where(apps_t.c.name == name)
                .values(
                    owner=new.owner,
                    shard_seed=new.shard_seed,
                    settings=json.dumps(dict(new.settings), sort_keys=True),
                    revision=rev,
                )
            )
            last = tx.last
        return Written(AppRecord(new, rev), last)

    def delete_app(self, name: str, *, if_match: IfMatch = None, force: bool = False) -> int:
        """Delete an app with its domains and endpoints (the churn guard counts those)."""
        _known_app(name)
        with self._write(forced=force) as tx:
            row = tx.conn.execute(sa.select(apps_t).where(apps_t.c.name == name)).first()
            if row is None:
                raise NotFound(f"app {name!r} does not exist")
            _precondition(f"app {name!r}", row.revision, if_match)
            eps = tx.conn.execute(
                sa.select(endpoints_t.c.address, endpoints_t.c.port).where(
                    endpoints_t.c.app == name
                )
            ).all()
            if not force:
                self._check_churn(name, removed=len(eps), added=0, remaining=0)
            for d in tx.conn.execute(sa.select(domains_t.c.name).where(domains_t.c.app == name)):
                tx.emit(ops.domain_deleted(d.name))
            for e in eps:
                tx.emit(ops.endpoint_deleted(name, _endpoint_text(e.address, e.port)))
            tx.emit(ops.app_deleted(name))
            tx.conn.execute(domains_t.delete().where(domains_t.c.app == name))
            tx.conn.execute(endpoints_t.delete().where(endpoints_t.c.app == name))
            tx.conn.execute(apps_t.delete().where(apps_t.c.name == name))
            last = tx.last
        if not force:
            self._record_churn(name, len(eps), added=0)
        return last

    # -- domains ------------------------------------------------------------------------

    def list_domains(
        self, *, app: str | None = None, after: str | None = None, limit: int = 100
    ) -> Page[DomainRecord]:
        q = sa.select(domains_t).order_by(domains_t.c.name)
        _cursor(after)
        if app is not None:
            _known_app(app)
            q = q.where(domains_t.c.app == app)
        if after:
            q = q.where(domains_t.c.name > after)
        return self._page(q, limit, _domain_record, lambda d: d.name)

    def get_domain(self, host: str) -> DomainRecord:
        name = names.hostname(host)
        with self._connect() as conn:
            row = conn.execute(sa.select(domains_t).where(domains_t.c.name == name)).first()
        if row is None:
            raise NotFound(f"domain {name!r} is not attached to any app")
        return _domain_record(row)

    def attach_domain(self, host: str, app: str) -> Written[DomainRecord]:
        """Attach a hostname to an app. A domain belongs to one app at a time."""
        name = names.hostname(host)
        _known_app(app)
        with self._write() as tx:
            if not tx.conn.execute(sa.select(apps_t.c.name).where(apps_t.c.name == app)).first():
                raise NotFound(f"app {app!r} does not exist")
            row = tx.conn.execute(sa.select(domains_t).where(domains_t.c.name == name)).first()
            if row is not None:
                if row.app != app:
                    raise Conflict(
                        f"domain {name!r} belongs to app {row.app!r}; detach it there first"
                    )
                return Written(DomainRecord(name, app, row.revision), tx.base)
            rev = tx.emit(ops.domain(name, app))
            tx.conn.execute(domains_t.insert().values(name=name, app=app, revision=rev))
            last = tx.last
        return Written(DomainRecord(name, app, rev), last)

    def detach_domain(self, host: str, *, app: str | None = None) -> int:
        name = names.hostname(host)
        with self._write() as tx:
            row = tx.conn.execute(sa.select(domains_t).where(domains_t.c.name == name)).first()
            if row is None:
                raise NotFound(f"domain {name!r} is not attached to any app")
            if app is not None and row.app != app:
                raise Conflict(f"domain {name!r} belongs to app {row.app!r}, not {app!r}")
            tx.emit(ops.domain_deleted(name))
            tx.conn.execute(domains_t.delete().where(domains_t.c.name == name))
            last = tx.last
        return last

    # -- certificates -------------------------------------------------------------------

    def put_cert(self, domain: str, chain: str, key: str, *, source: str = "upload") -> CertInfo:
        """Store a certificate for ``domain`` (replacing any), validated whole first; the
        answer never holds the key. An uploaded certificate is replaced only by another
        upload: an ``acme`` one arriving after an upload is refused (409)."""
        if source not in CERT_SOURCES:
            raise InvalidInput(f"source: expected one of {', '.join(CERT_SOURCES)}")
        cert = certs.validate(
            domain, chain, key, now=dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        )
        if self.seal_key is None:
            raise Unavailable(
                "this controller has no cert_seal_key (the edge nodes' public sealing key): "
                "certificates cannot be stored"
            )
        sealed_key = sealed.seal(cert.key, cert.domain, self.seal_key)
        row = {
            "domain": cert.domain,
            "chain": cert.chain,
            "key": sealed_key,
            "info": json.dumps(cert.public()),
            "source": source,
            "not_after": cert.not_after.timestamp(),
            "stored_at": self.clock(),
        }
        with self._write() as tx:
            if source != "upload":
                for name in (cert.domain, _wildcard_over(cert.domain)):
                    was = tx.conn.execute(
                        sa.select(certs_t.c.source).where(certs_t.c.domain == name)
                    ).scalar()
                    if was == "upload":
                        raise Conflict(
                            f"{cert.domain!r} is covered by the uploaded certificate of "
                            f"{name!r}; only an upload replaces it"
                        )
            tx.conn.execute(certs_t.delete().where(certs_t.c.domain == cert.domain))
            tx.conn.execute(certs_t.insert().values(**row))
            tx.emit(_cert_op(SimpleNamespace(**row), sealed_key))
            if source == "upload" and cert.domain.startswith("*."):
                # the edge would serve these exact ACME certificates before the upload (and
                # keep serving them, unrenewed, past their expiry): the upload wins
                for shadowing in self._acme_certs_under(tx.conn, cert.domain):
                    tx.conn.execute(certs_t.delete().where(certs_t.c.domain == shadowing))
                    tx.emit(ops.cert_deleted(shadowing))
        return _cert_info(SimpleNamespace(**row))

    def get_cert(self, domain: str) -> CertInfo:
        name = names.hostname(domain)
        with self._connect() as conn:
            row = conn.execute(sa.select(certs_t).where(certs_t.c.domain == name)).first()
        if row is None:
            raise NotFound(f"no certificate for {name!r}")
        return _cert_info(row)

    def list_certs(self, *, after: str | None = None, limit: int = 100) -> Page[CertInfo]:
        q = sa.select(certs_t).order_by(certs_t.c.domain)
        if _cursor(after):
            q = q.where(certs_t.c.domain > after)
        return self._page(q, limit, _cert_info, lambda c: c.domain)

    @staticmethod
    def _acme_certs_under(conn: Connection, wildcard: str) -> list[str]:
        """The ACME certificates of the names ``wildcard`` covers (one label below it)."""
        parent = wildcard[1:]  # ".shop.example"
        rows = conn.execute(
            sa.select(certs_t.c.domain).where(
                certs_t.c.source == "acme", certs_t.c.domain.endswith(parent, autoescape=True)
            )
        )
        return [d for (d,) in rows if _wildcard_over(d) == wildcard]

    @staticmethod
    def _uploaded_wildcards(conn: Connection) -> dict[str, float]:
        """Uploaded wildcard certificates: domain -> notAfter (Unix time)."""
        rows = conn.execute(
            sa.select(certs_t.c.domain, certs_t.c.not_after).where(
                certs_t.c.source == "upload", certs_t.c.domain.startswith("*.", autoescape=True)
            )
        )
        return {d: float(t) for d, t in rows}

    def delete_cert(self, domain: str) -> None:
        name = names.hostname(domain)
        with self._write() as tx:
            gone = tx.conn.execute(certs_t.delete().where(certs_t.c.domain == name)).rowcount
            if not gone:
                raise NotFound(f"no certificate for {name!r}")
            tx.emit(ops.cert_deleted(name))

    # -- ACME -----------------------------------------------------------------------------

    def put_challenge(self, token: str, key_authorization: str, *, domain: str) -> int:
        """Publish an HTTP-01 challenge for every edge to answer; the revision it is at."""
        if not _TOKEN.fullmatch(token):
            raise InvalidInput("ACME token: expected 1-128 base64url characters")
        if not key_authorization.startswith(f"{token}.") or not _TOKEN.fullmatch(
            key_authorization[len(token) + 1 :]
        ):
            raise InvalidInput("ACME key authorization: expected TOKEN.THUMBPRINT (base64url)")
        name = names.hostname(domain)
        with self._write() as tx:
            tx.conn.execute(challenges_t.delete().where(challenges_t.c.token == token))
            tx.conn.execute(
                challenges_t.insert().values(
                    token=token,
                    key_authorization=key_authorization,
                    domain=name,
                    created_at=tx.now,
                )
            )
            tx.emit(ops.challenge(token, key_authorization))
            last = tx.last
        return last

    def delete_challenge(self, token: str) -> int:
        """Withdraw a challenge (a token not stored is no error); the revision after."""
        with self._write() as tx:
            gone = tx.conn.execute(
                challenges_t.delete().where(challenges_t.c.token == token)
            ).rowcount
            if gone:
                tx.emit(ops.challenge_deleted(token))
            last = tx.last
        return last

    def list_challenges(self) -> list[Challenge]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(challenges_t).order_by(challenges_t.c.token)).all()
        return [Challenge(r.token, r.key_authorization, r.domain, r.created_at) for r in rows]

    _ACME_FACTS = (
        sa.select(
            domains_t.c.name,
            certs_t.c.source,
            certs_t.c.not_after.label("cert_not_after"),
            acme_t,
        )
        .select_from(
            domains_t.outerjoin(certs_t, certs_t.c.domain == domains_t.c.name).outerjoin(
                acme_t, acme_t.c.domain == domains_t.c.name
            )
        )
        .order_by(domains_t.c.name)
    )

    def acme_facts(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[issuance.Facts]:
        """What the issuer plans with, for every attached domain (or a page of them)."""
        q = self._ACME_FACTS
        if _cursor(after):
            q = q.where(domains_t.c.name > after)
        if limit is not None:
            q = q.limit(limit)
        with self._connect() as conn:
            wild = self._uploaded_wildcards(conn)
            return [_facts(r, wild) for r in conn.execute(q)]

    def acme_domain(self, domain: str) -> issuance.Facts:
        name = names.hostname(domain)
        with self._connect() as conn:
            r = conn.execute(self._ACME_FACTS.where(domains_t.c.name == name)).first()
            wild = self._uploaded_wildcards(conn)
        if r is None:
            raise NotFound(f"domain {name!r} is not attached to any app")
        return _facts(r, wild)

    def list_acme(
        self, *, after: str | None = None, limit: int = 100
    ) -> tuple[list[issuance.Facts], str | None]:
        limit = _limit(limit)
        facts = self.acme_facts(after=after, limit=limit + 1)
        nxt = facts[limit - 1].domain if len(facts) > limit else None
        return facts[:limit], nxt

    def record_acme(self, domain: str, record: issuance.Record) -> None:
        """Keep the issuer's record of ``domain`` (not published: edges never need it)."""
        row = {
            "domain": domain,
            "status": record.status.value,
            "error": record.error[: issuance.MAX_ERROR],
            "failures": record.failures,
            "next_attempt": record.next_attempt,
            "not_after": record.not_after,
            "last_success": record.last_success,
            "updated_at": self.clock(),
        }
        with self._connect() as conn, conn.begin():
            conn.execute(acme_t.delete().where(acme_t.c.domain == domain))
            conn.execute(acme_t.insert().values(**row))

    def prune_acme(self, *, challenges_before: float) -> list[str]:
        """Forget records of detached domains and withdraw challenges created before
        ``challenges_before`` (left by an issuer that stopped mid-order); the tokens withdrawn."""
        with self._connect() as conn, conn.begin():
            conn.execute(acme_t.delete().where(acme_t.c.domain.not_in(sa.select(domains_t.c.name))))
        with self._connect() as conn:
            stale = [
                r.token
                for r in conn.execute(
                    sa.select(challenges_t.c.token).where(
                        challenges_t.c.created_at < challenges_before
                    )
                )
            ]
        for token in stale:
            self.delete_challenge(token)
        return stale

    # -- endpoints ----------------------------------------------------------------------

    def list_endpoints(
        self, app: str, *, after: str | None = None, limit: int = 100
    ) -> Page[EndpointRecord]:
        self.get_app(app)
        q = sa.select(endpoints_t).where(endpoints_t.c.app == app)
        q = q.order_by(endpoints_t.c.address, endpoints_t.c.port)
        if after:
            e = _parse_endpoint_text(after)
            a = addr.format_ip(e.ip)
            q = q.where(
                sa.or_(
                    endpoints_t.c.address > a,
                    sa.and_(endpoints_t.c.address == a, endpoints_t.c.port > e.port),
                )
            )
        return self._page(q, limit, _endpoint_record, lambda e: e.text)

    def set_endpoints(
        self,
        app: str,
        items: Sequence[EndpointSpec],
        *,
        remove: Sequence[EndpointRef] = (),
        force: bool = False,
    ) -> Written[EndpointsChanged]:
        """Add or update endpoints and remove others, in one transaction.

        Each endpoint must lie in a node's /64 of pod.lock (and in the node it names, if it
        names one); an endpoint may appear once per call. A refusal rejects the whole call.
        """
        _known_app(app)
        if len(items) + len(remove) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} endpoints per call")
        wanted = [self._endpoint_row(e, n) for n, e in enumerate(items)]
        gone = [(addr.format_ip(_built(r, EndpointRef).address), r.port) for r in remove]
        keys = [(w["address"], w["port"]) for w in wanted]
        if len(set(keys)) != len(keys) or set(keys) & set(gone):
            raise InvalidInput("an endpoint appears twice in one call")
        try:
            return self._change_endpoints(app, wanted, gone, force)
        except sa.exc.IntegrityError:
            pass  # an address:port another app holds (the unique constraint): name it
        owners = self._owners([(w["address"], w["port"]) for w in wanted])
        for (a, p), other in owners.items():
            if other != app:
                text = _endpoint_text(a, p)
                raise Conflict(f"endpoint {text} belongs to app {other!r}") from None
        raise Conflict("a concurrent change conflicted with this one; retry") from None

    def _change_endpoints(
        self,
        app: str,
        wanted: list[dict[str, Any]],
        gone: list[tuple[str, int]],
        force: bool,
    ) -> Written[EndpointsChanged]:
        with self._write(forced=force) as tx:
            if tx.conn.execute(_APP_EXISTS, {"b_app": app}).first() is None:
                raise NotFound(f"app {app!r} does not exist")
            current = {
                (r.address, r.port): (r.weight, r.state)
                for r in tx.conn.execute(_APP_ENDPOINTS, {"b_app": app})
            }
            removing = [k for k in gone if k in current]
            if removing and not force:
                added = sum(1 for w in wanted if (w["address"], w["port"]) not in current)
                remaining = len(current) - len(removing) + added
                self._check_churn(app, removed=len(removing), added=added, remaining=remaining)
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for w in wanted:
                key = (w["address"], w["port"])
                old = current.get(key)
                if old == (w["weight"], w["state"]):
                    continue
                text = _endpoint_text(w["address"], w["port"])
                rev = tx.emit(ops.endpoint(app, text, w["weight"], w["state"]))
                if old is None:
                    inserts.append({**w, "app": app, "revision": rev})
                else:
                    updates.append(
                        {
                            "b_app": app,
                            "b_address": key[0],
                            "b_port": key[1],
                            "b_weight": w["weight"],
                            "b_state": w["state"],
                            "b_revision": rev,
                        }
                    )
            for a, p in removing:
                tx.emit(ops.endpoint_deleted(app, _endpoint_text(a, p)))
            if inserts:
                tx.conn.execute(endpoints_t.insert(), inserts)
            if updates:
                tx.conn.execute(_EP_UPDATE, updates)
            if removing:
                tx.conn.execute(
                    _EP_DELETE,
                    [{"b_app": app, "b_address": a, "b_port": p} for a, p in removing],
                )
            last = tx.last
        if removing and not force:
            self._record_churn(app, len(removing), added=len(inserts))
        return Written(EndpointsChanged(len(inserts) + len(updates), len(removing)), last)

    def _check_churn(self, app: str, *, removed: int, added: int, remaining: int) -> None:
        now = self.clock()
        net = max(0, removed - added)
        counted, at = self.endpoint_total_cached(now)
        with self._window_lock:
            # the count is up to a few seconds old: removals made since are not in the pod
            total = counted - self._window.net_since(now, at) - net
            self._window.check_or_raise(now, {app: removed}, {app: remaining}, total, net=net)

    def _record_churn(self, app: str, removed: int, *, added: int) -> None:
        with self._window_lock:
            self._window.record(self.clock(), {app: removed}, net=max(0, removed - added))

    def endpoint_total_cached(self, now: float) -> tuple[int, float]:
        """All endpoints in the store and when they were counted, within the churn window
        (whose removals since then the callers subtract). A count older than 5 s (or half
        the window) is refreshed in the background, so no API write waits for a count over
        a million rows; only a count nearly as old as the window is redone inline."""
        max_age = min(5.0, self.guard.window / 2)
        total = self._total
        if total is None or now - total[0] > min(2 * max_age, 0.9 * self.guard.window):
            self._count_total()
        elif now - total[0] > max_age:
            with self._total_lock:
                start = not self._total_refreshing
                self._total_refreshing = True
            if start:
                threading.Thread(target=self._refresh_total, daemon=True).start()
        total = self._total
        assert total is not None
        return total[1], total[0]

    def _count_total(self) -> None:
        at = self.clock()  # when the count began: a removal during it is subtracted twice
        counted = self.endpoint_total()
        with self._total_lock:
            if self._total is None or self._total[0] < at:
                self._total = (at, counted)

    def _refresh_total(self) -> None:
        try:
            self._count_total()
        except Exception as e:  # the next write counts inline once the count is too old
            log.warning("counting the pod's endpoints failed: %s", e)
        finally:
            with self._total_lock:
                self._total_refreshing = False

    def _owners(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
        found: dict[tuple[str, int], str] = {}
        with self._connect() as conn:
            for i in range(0, len(keys), 400):
                chunk = keys[i : i + 400]
                q = sa.select(endpoints_t.c.address, endpoints_t.c.port, endpoints_t.c.app).where(
                    sa.tuple_(endpoints_t.c.address, endpoints_t.c.port).in_(chunk)
                )
                found.update({(r.address, r.port): r.app for r in conn.execute(q)})
        return found

    def _endpoint_row(self, e: EndpointSpec, n: int) -> dict[str, Any]:
        """The row of an endpoint, with the node whose /64 (in pod.lock) holds it."""
        _built(e, EndpointSpec)
        node = self.node_of(e.address) if self._lock is not None else e.node or ""
        if e.node is not None and e.node != node:
            raise InvalidInput(
                f"endpoints[{n}]: {addr.format_ip(e.address)} is inside node {node!r}'s /64, "
                f"not {e.node!r}'s"
            )
        return {
            "address": addr.format_ip(e.address),
            "port": e.port,
            "weight": e.weight,
            "state": e.state.value,
            "node": node,
        }

    # -- VIPs and nodes -----------------------------------------------------------------

    def list_vips(self) -> list[VipRecord]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(vips_t)).all()
        return sorted((_vip_record(r) for r in rows), key=lambda v: _ip_key(v.vip.address))

    def set_vip(self, spec: VipSpec, *, if_match: IfMatch = None) -> Written[VipRecord]:
        _built(spec, VipSpec)
        text, st, reason = addr.format_ip(spec.address), spec.state.value, spec.reason
        with self._write() as tx:
            row = tx.conn.execute(sa.select(vips_t).where(vips_t.c.address == text)).first()
            if row is None:
                raise NotFound(f"VIP {text} is not in the pod's VIP pool")
            _precondition(f"VIP {text}", row.revision, if_match)
            if (row.state, row.reason) == (st, reason):
                return Written(_vip_record(row), tx.base)
            rev = tx.emit(ops.vip(text, st, reason))
            tx.conn.execute(
                vips_t.update()
                .where(vips_t.c.address == text)
                .values(state=st, reason=reason, revision=rev)
            )
            last = tx.last
        return Written(VipRecord(Vip(spec.address, spec.state, reason), rev), last)

    def list_nodes(self) -> list[NodeRecord]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(nodes_t).order_by(nodes_t.c.name)).all()
        return [_node_record(r) for r in rows]

    def set_node(self, spec: NodeSpec) -> Written[NodeRecord]:
        _built(spec, NodeSpec)
        name, st, reason = spec.name, spec.state.value, spec.reason
        if self._lock is not None and name not in self._lock.nodes:
            raise NotFound(f"node {name!r} is not in pod.lock")
        with self._write() as tx:
            row = tx.conn.execute(sa.select(nodes_t).where(nodes_t.c.name == name)).first()
            if row is None:
                raise NotFound(f"node {name!r} is not in pod.lock")
            if (row.state, row.reason) == (st, reason):
                return Written(_node_record(row), tx.base)
            rev = tx.emit(ops.node(name, st, reason))
            tx.conn.execute(
                nodes_t.update()
                .where(nodes_t.c.name == name)
                .values(state=st, reason=reason, revision=rev)
            )
            last = tx.last
        return Written(NodeRecord(Node(name, spec.state, reason), rev), last)

    # -- the publisher's side -----------------------------------------------------------

    def outbox_after(self, revision: int, *, limit: int = 5000) -> list[OutboxRow]:
        """Outbox rows after ``revision``, in order, over a connection kept for the publisher.

        Called every few milliseconds by the publisher: the connection stays checked out and
        each read is its own short transaction, so it sees every commit before it.
        """
        with self._outbox_lock:
            try:
                if self._outbox_conn is None:
                    self._outbox_conn = self.engine.connect()
                conn = self._outbox_conn
                rows = conn.execute(_OUTBOX_AFTER, {"b_after": revision, "b_limit": limit}).all()
                conn.rollback()
            except sa.exc.DBAPIError as e:
                if self._outbox_conn is not None:
                    self._outbox_conn.invalidate()
                    self._outbox_conn.close()
                    self._outbox_conn = None
                raise Unavailable(f"database: {e.orig}") from None
        return [OutboxRow(r.revision, ops.loads(r.op), r.forced, r.committed_at) for r in rows]

    def outbox_row(self, revision: int) -> OutboxRow | None:
        with self._connect() as conn:
            r = conn.execute(sa.select(outbox_t).where(outbox_t.c.revision == revision)).first()
        return (
            None if r is None else OutboxRow(r.revision, ops.loads(r.op), r.forced, r.committed_at)
        )

    def oldest_outbox(self) -> int | None:
        with self._connect() as conn:
            v = conn.execute(sa.select(sa.func.min(outbox_t.c.revision))).scalar()
        return None if v is None else int(v)

    def prune_outbox(self, *, below: int, chunk: int = 10_000) -> int:
        """Delete outbox rows below ``below``, ``chunk`` rows per transaction."""
        deleted = 0
        while True:
            oldest = self.oldest_outbox()
            if oldest is None or oldest >= below:
                return deleted
            upto = min(below, oldest + chunk)
            with self._connect() as conn, conn.begin():
                deleted += conn.execute(
                    outbox_t.delete().where(outbox_t.c.revision < upto)
                ).rowcount

    def snapshot(self, *, chunk: int = 5000) -> Generator[int | list[ops.Op], None, None]:
        """The whole state as ops, read in one consistent transaction.

        Yields the revision the snapshot is at first, then lists of at most ``chunk`` ops.
        """
        with self._connect() as plain:
            conn = plain
            if not self.sqlite:
                conn = plain.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield int(conn.execute(sa.select(revision_t.c.value)).scalar_one())
                batch: list[ops.Op] = []
                makers: tuple[tuple[sa.Select[Any], Callable[[Any], ops.Op]], ...] = (
                    (
                        sa.select(apps_t),
                        lambda r: ops.app(r.name, r.owner, r.shard_seed, json.loads(r.settings)),
                    ),
                    (
                        sa.select(endpoints_t),
                        lambda r: ops.endpoint(
                            r.app, _endpoint_text(r.address, r.port), r.weight, r.state
                        ),
                    ),
                    (sa.select(domains_t), lambda r: ops.domain(r.name, r.app)),
                    (sa.select(vips_t), lambda r: ops.vip(r.address, r.state, r.reason)),
                    (sa.select(nodes_t), lambda r: ops.node(r.name, r.state, r.reason)),
                    (
                        sa.select(certs_t).where(certs_t.c.key.startswith(sealed.PREFIX)),
                        lambda r: _cert_op(r, r.key),
                    ),
                    (
                        sa.select(challenges_t),
                        lambda r: ops.challenge(r.token, r.key_authorization),
                    ),
                )
                for q, make in makers:
                    for r in conn.execution_options(yield_per=chunk).execute(q):
                        batch.append(make(r))
                        if len(batch) >= chunk:
                            yield batch
                            batch = []
                if batch:
                    yield batch

    def endpoint_total(self) -> int:
        with self._connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(endpoints_t)).scalar_one()
            )


CERT_SOURCES = ("upload", "acme")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _wildcard_over(domain: str) -> str:
    """The wildcard one label up that the edge would serve for ``domain`` ("" for none)."""
    parent = domain.partition(".")[2]
    return f"*.{parent}" if "." in parent and not domain.startswith("*.") else ""


def _facts(r: Any, uploaded_wildcards: dict[str, float]) -> issuance.Facts:
    """One domain's facts; an uploaded wildcard one label up counts as its upload (the
    edge serves it for the name when the name has no certificate of its own)."""
    source, not_after = r.source, r.cert_not_after
    covering = _wildcard_over(r.name)
    if source != "upload" and covering in uploaded_wildcards:
        source, not_after = "upload", uploaded_wildcards[covering]
    record = None
    if r.status is not None:
        record = issuance.Record(
            status=issuance.Status(r.status),
            error=r.error,
            failures=r.failures,
            next_attempt=r.next_attempt,
            not_after=r.not_after,
            last_success=r.last_success,
        )
    return issuance.Facts(r.name, source, not_after, record)


def _app_record(r: Any) -> AppRecord:
    settings = MappingProxyType(json.loads(r.settings))
    return AppRecord(App(r.name, r.owner, r.shard_seed, settings), r.revision)


def _domain_record(r: Any) -> DomainRecord:
    return DomainRecord(r.name, r.app, r.revision)


def _endpoint_record(r: Any) -> EndpointRecord:
    ip = IPv6Address(r.address)
    return EndpointRecord(
        r.app, Endpoint(ip, r.port, r.weight, EndpointState(r.state)), r.node, r.revision
    )


def _vip_record(r: Any) -> VipRecord:
    return VipRecord(Vip(addr.parse_ip(r.address), VipState(r.state), r.reason), r.revision)


def _node_record(r: Any) -> NodeRecord:
    return NodeRecord(Node(r.name, NodeState(r.state), r.reason), r.revision)


def _cert_info(r: Any) -> CertInfo:
    """The public facts of a stored certificate: its ``info`` column (JSON, as
    :meth:`sixpod.tenants.certs.Certificate.public` wrote it) and where it came from."""
    info = json.loads(r.info)
    return CertInfo(
        domain=info["domain"],
        names=tuple(info["names"]),
        not_before=dt.datetime.fromisoformat(info["not_before"]),
        not_after=dt.datetime.fromisoformat(info["not_after"]),
        issuer=info["issuer"],
        fingerprint=info["fingerprint"],
        key_type=info["key_type"],
        chain_length=info["chain_length"],
        source=r.source,
        stored_at=r.stored_at,
    )


def _cert_op(r: Any, sealed_key: str) -> ops.Op:
    fingerprint = json.loads(r.info)["fingerprint"]
    return ops.cert(r.domain, fingerprint, int(r.not_after), r.chain, sealed_key)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit: expected 1-{MAX_PAGE}, got {limit}")
    return limit


def _precondition(what: str, current: int, if_match: IfMatch) -> None:
    """``if_match``: the revision (or any of the revisions) the caller expects, or None."""
    if if_match is None:
        return
    accepted = {if_match} if isinstance(if_match, int) else set(if_match)
    if not accepted:
        raise PreconditionFailed(
            f"{what} is at revision {current}; If-Match names no revision (a weak or foreign "
            "entity tag never matches): re-read it and retry"
        )
    if current not in accepted:
        shown = " or ".join(str(r) for r in sorted(accepted))
        raise PreconditionFailed(
            f"{what} is at revision {current}, not {shown}: re-read it and retry"
        )


def _built(value: T, kind: type[T]) -> T:
    """``value``, if it is a ``kind`` (which checked itself when built); a caller that passes
    anything else (a dict, text) is refused before anything is read or written."""
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__} (sixpod.tenants.model), got {value!r:.80}")
    return value


def _known_app(name: str) -> None:
    """A name that cannot be an app's cannot name an existing one: 404 without a query."""
    if not names.is_app_name(name):  # not app_name: an app stored as xn--zz stays reachable
        raise NotFound(f"app {name!r} does not exist")


def _cursor(after: str | None) -> str | None:
    if after is not None:
        text_field(after, "after", limit=300)
    return after


def _ip_key(ip: IPv4Address | IPv6Address) -> tuple[int, int]:
    return (4 if isinstance(ip, IPv4Address) else 6, int(ip))
