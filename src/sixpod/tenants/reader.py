"""The reader library: tenant state from a local Redis replica, kept current by revision.

:class:`TenantState` is the pure core: it loads keys and applies stream entries and says what
changed. :class:`TenantReader` is the asyncio adapter: it bootstraps from the replica once
the snapshot marker says ``ready``, follows ``P:log``, resynchronises on a gap or a new
epoch (building the new state aside and swapping it in, so consumers never see it half
built or empty), and keeps serving the last good state while Redis is unreachable.

Memory: an upstream list is a dict of ``"[address]:port"`` to an interned ``"weight state"``
text; about 130 bytes per endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from types import MappingProxyType
from typing import Any

from redis.exceptions import RedisError

from sixpod import addr, redisclient
from sixpod.tenants import layout, ops
from sixpod.tenants.model import (
    App,
    Cert,
    Changed,
    Endpoint,
    EndpointState,
    IPAddress,
    Node,
    NodeState,
    Vip,
    VipState,
)

log = logging.getLogger(__name__)


class Gap(Exception):
    """The stream does not continue where this state stands: resynchronise."""


def _split(value: str) -> tuple[str, str]:
    state, _, reason = value.partition(" ")
    return state, reason


@dataclass(slots=True)
class TenantState:
    """Tenant state at one revision of one epoch. Mutated only by its own methods."""

    epoch: str = ""
    revision: int = 0
    with_upstreams: bool = True
    """False for consumers that need no upstream lists (Razor): they are neither loaded nor
    kept, which saves most of the memory."""
    with_certs: bool = False
    """True for the edge agent only: certificates (their keys sealed) and ACME challenges
    are loaded and kept."""
    with_apps: bool = True
    """False for consumers of VIP and node states only (the announcer): apps and domains
    are neither loaded nor kept."""
    apps: dict[str, App] = field(default_factory=dict)
    upstreams_raw: dict[str, dict[str, str]] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    vips: dict[IPAddress, Vip] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    certs: dict[str, Cert] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)
    """ACME HTTP-01 token -> key authorization."""

    # -- reading ------------------------------------------------------------------------

    def upstreams(self, app: str) -> list[Endpoint]:
        out = []
        for text, value in self.upstreams_raw.get(app, {}).items():
            e = addr.parse_endpoint(text)
            weight, state = value.split(" ", 1)
            assert isinstance(e.ip, IPv6Address)
            out.append(Endpoint(e.ip, e.port, int(weight), EndpointState(state)))
        return out

    def endpoint_count(self) -> int:
        return sum(len(u) for u in self.upstreams_raw.values())

    def app_for_host(self, host: str) -> str | None:
        """The app serving ``host`` (lower-case A-labels): exact name first, then wildcards."""
        app = self.domains.get(host)
        if app is not None:
            return app
        labels = host.split(".")
        for i in range(1, len(labels) - 1):
            app = self.domains.get("*." + ".".join(labels[i:]))
            if app is not None:
                return app
        return None

    # -- loading (bootstrap) ------------------------------------------------------------

    def load_app(self, name: str, fields: Mapping[str, str]) -> None:
        self.apps[name] = App(
            name=name,
            owner=fields.get("owner", ""),
            shard_seed=int(fields.get("shard_seed", 0)),
            settings=MappingProxyType(json.loads(fields.get("settings", "{}"))),
        )

    def load_upstreams(self, app: str, fields: Mapping[str, str]) -> None:
        if fields and self.with_upstreams:
            self.upstreams_raw[app] = {k: sys.intern(v) for k, v in fields.items()}

    def load_vips(self, fields: Mapping[str, str]) -> None:
        for k, v in fields.items():
            state, reason = _split(v)
            ip = addr.parse_ip(k)
            self.vips[ip] = Vip(ip, VipState(state), reason)

    def load_nodes(self, fields: Mapping[str, str]) -> None:
        for k, v in fields.items():
            state, reason = _split(v)
            self.nodes[k] = Node(k, NodeState(state), reason)

    def load_cert(self, domain: str, fields: Mapping[str, str]) -> None:
        if self.with_certs:
            self.certs[domain] = Cert(
                domain, fields["fp"], int(fields["not_after"]), fields["chain"], fields["key"]
            )

    # -- following ----------------------------------------------------------------------

    def apply_entry(self, fields: Mapping[str, str]) -> Changed | None:
        """Apply one ``P:log`` entry; None if already applied. Raises :class:`Gap`."""
        if fields.get("epoch") != self.epoch:
            raise Gap(f"entry of epoch {fields.get('epoch')!r}, state of {self.epoch!r}")
        rev = int(fields["rev"])
        prev = int(fields["prev"])
        if rev <= self.revision:
            return None
        if prev != self.revision:
            raise Gap(f"entry continues revision {prev}, state is at {self.revision}")
        changed = self.apply_ops(ops.decode(fields["ops"]), rev)
        self.revision = rev
        return changed

    def apply_ops(self, op_list: list[ops.Op], revision: int) -> Changed:
        apps: set[str] = set()
        domains: set[str] = set()
        certs: set[str] = set()
        tokens: set[str] = set()
        vips = nodes = False
        for op in op_list:
            match op:
                case ops.EndpointSet() | ops.EndpointDeleted() if not self.with_upstreams:
                    pass
                case ops.AppSet() | ops.AppDeleted() | ops.DomainSet() | ops.DomainDeleted() if (
                    not self.with_apps
                ):
                    pass
                case ops.EndpointSet(app, endpoint, weight, state):
                    ups = self.upstreams_raw.setdefault(app, {})
                    ups[endpoint] = sys.intern(f"{weight} {state}")
                    apps.add(app)
                case ops.EndpointDeleted(app, endpoint):
                    ups = self.upstreams_raw.get(app, {})
                    ups.pop(endpoint, None)
                    if not ups:
                        self.upstreams_raw.pop(app, None)
                    apps.add(app)
                case ops.AppSet(name, owner, seed, settings):
                    self.load_app(
                        name, {"owner": owner, "shard_seed": str(seed), "settings": settings}
                    )
                    apps.add(name)
                case ops.AppDeleted(name):
                    self.apps.pop(name, None)
                    self.upstreams_raw.pop(name, None)
                    apps.add(name)
                case ops.DomainSet(host, app):
                    self.domains[host] = app
                    domains.add(host)
                case ops.DomainDeleted(host):
                    self.domains.pop(host, None)
                    domains.add(host)
                case ops.VipSet(address, state, reason):
                    self.load_vips({address: f"{state} {reason}"})
                    vips = True
                case ops.VipDeleted(address):
                    self.vips.pop(addr.parse_ip(address), None)
                    vips = True
                case ops.NodeSet(name, state, reason):
                    self.nodes[name] = Node(name, NodeState(state), reason)
                    nodes = True
                case ops.NodeDeleted(name):
                    self.nodes.pop(name, None)
                    nodes = True
                case (
                    ops.CertSet() | ops.CertDeleted() | ops.ChallengeSet() | ops.ChallengeDeleted()
                ) if not self.with_certs:
                    pass
                case ops.CertSet(domain, fp, not_after, chain, sealed_key):
                    self.certs[domain] = Cert(domain, fp, not_after, chain, sealed_key)
                    certs.add(domain)
                case ops.CertDeleted(domain):
                    self.certs.pop(domain, None)
                    certs.add(domain)
                case ops.ChallengeSet(token, key_authorization):
                    self.challenges[token] = key_authorization
                    tokens.add(token)
                case ops.ChallengeDeleted(token):
                    self.challenges.pop(token, None)
                    tokens.add(token)
        return Changed(
            revision,
            frozenset(apps),
            frozenset(domains),
            vips,
            nodes,
            certs=frozenset(certs),
            challenges=frozenset(tokens),
        )


def _text(mapping: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in mapping.items()}


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    address: addr.Endpoint
    password_file: str | None = None
    prefix: str = "sixpod"
    block: float = 0.5
    """Seconds one stream read waits before the reader checks the snapshot marker."""
    retry: float = 0.5
    """Seconds between attempts while Redis is unreachable."""
    upstreams: bool = True
    """Load and follow upstream lists (the edge agent); False for Razor."""
    certs: bool = False
    """Load and follow certificates (the edge agent only)."""
    apps: bool = True
    """Load and follow apps and domains; False for the announcer (VIP states only). Without
    apps, upstream lists are not loaded either."""


Listener = Callable[[TenantState, Changed], None]


class TenantReader:
    """Follows the local Redis replica; ``state`` is always a complete, consistent state."""

    def __init__(self, settings: ReaderSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.keys = layout.Keys(settings.prefix)
        self.clock = clock
        self.state = TenantState()
        self.ready = asyncio.Event()
        self.connected = False
        self.last_lag: float | None = None
        """Seconds from commit in the store to applied here, for the last entry applied."""
        self.last_applied = 0.0
        self.confirmed = 0.0
        """When Redis last showed this state current (ready, same epoch, same revision)."""
        self.resyncs = 0
        self.malformed = 0
        """Keys or stream entries that could not be read (each one a resynchronisation)."""
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._client: Any = redisclient.RedisTarget(
            settings.address,
            password_file=settings.password_file or None,
            timeout=settings.block + 5.0,
            connect_timeout=2.0,
        ).async_client()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tenant-reader")

    async def load(self) -> TenantState | None:
        """One complete state read now, without following (one-shot consumers: Razor's
        attribution); None while Redis holds no ready snapshot. Raises :class:`Gap` when a
        rebuild or a trim ran meanwhile, ``RedisError`` / ``OSError`` when Redis is down."""
        return await self._bootstrap()

    async def stop(self) -> None:
        """Stop following; bounded (5 s each for the task and the client), so a Redis call
        that swallows its cancellation cannot hang the caller's shutdown."""
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5.0)
            if not done:
                log.warning("tenant reader: the follow task did not stop within 5 s")
            elif not self._task.cancelled():
                with contextlib.suppress(Exception):
                    self._task.result()
        with contextlib.suppress(TimeoutError, RedisError, OSError):
            await asyncio.wait_for(self._client.aclose(), 5.0)

    def _notify(self, changed: Changed) -> None:
        for listener in self._listeners:
            try:
                listener(self.state, changed)
            except Exception:
                log.exception("tenant reader: a listener failed")

    async def _run(self) -> None:
        need_bootstrap = True
        while True:
            try:
                if need_bootstrap:
                    fresh = await self._bootstrap()
                    if fresh is None:
                        await asyncio.sleep(self.settings.retry)
                        continue
                    self.state = fresh
                    self.confirmed = self.clock()
                    self.resyncs += 1
                    need_bootstrap = False
                    self.ready.set()
                    self._notify(Changed(fresh.revision, resync=True))
                await self._follow()
            except Gap as e:
                log.info("tenant reader: %s; resynchronising", e)
                need_bootstrap = True
            except (ValueError, KeyError, TypeError) as e:
                # a malformed key or stream entry: never applied, never fatal; the last good
                # state keeps serving and the reader starts over from the replica
                log.error(
                    "tenant reader: unreadable tenant state in Redis (%s); serving revision "
                    "%d, resynchronising",
                    e,
                    self.state.revision,
                )
                self.malformed += 1
                need_bootstrap = True
                await asyncio.sleep(self.settings.retry)
            except (RedisError, OSError) as e:
                if self.connected:
                    log.warning(
                        "tenant reader: Redis unavailable (%s); serving revision %d",
                        e,
                        self.state.revision,
                    )
                self.connected = False
                await asyncio.sleep(self.settings.retry)

    async def _meta(self) -> dict[str, str]:
        return _text(await self._client.hgetall(self.keys.meta))

    async def _bootstrap(self) -> TenantState | None:
        """A complete state from Redis, or None while there is no ready snapshot."""
        meta = await self._meta()
        self.connected = True
        if meta.get("state") != "ready":
            return None
        new = TenantState(
            epoch=meta["epoch"],
            revision=int(meta["revision"]),
            with_upstreams=self.settings.upstreams and self.settings.apps,
            with_certs=self.settings.certs,
            with_apps=self.settings.apps,
        )
        prefix = self.settings.prefix
        async for names in self._scan(f"{prefix}:app:*", len(prefix) + 5, new.with_apps):
            async with self._client.pipeline(transaction=False) as pipe:
                for n in names:
                    pipe.hgetall(self.keys.app(n))
                for n, fields in zip(names, await pipe.execute(), strict=True):
                    if fields:
                        self._load(f"app {n!r}", new.load_app, n, _text(fields))
        async for names in self._scan(f"{prefix}:up:*", len(prefix) + 4, new.with_upstreams):
            async with self._client.pipeline(transaction=False) as pipe:
                for n in names:
                    pipe.hgetall(self.keys.up(n))
                for n, fields in zip(names, await pipe.execute(), strict=True):
                    self._load(f"upstreams of {n!r}", new.load_upstreams, n, _text(fields))
        async for hosts in self._scan(f"{prefix}:dom:*", len(prefix) + 5, new.with_apps):
            values = await self._client.mget([self.keys.dom(h) for h in hosts])
            new.domains.update({h: v.decode() for h, v in zip(hosts, values, strict=True) if v})
        async for domains in self._scan(f"{prefix}:cert:*", len(prefix) + 6, new.with_certs):
            async with self._client.pipeline(transaction=False) as pipe:
                for d in domains:
                    pipe.hgetall(self.keys.cert(d))
                for d, fields in zip(domains, await pipe.execute(), strict=True):
                    if fields:
                        self._load(f"certificate of {d!r}", new.load_cert, d, _text(fields))
        async for tokens in self._scan(f"{prefix}:acme:*", len(prefix) + 6, new.with_certs):
            values = await self._client.mget([self.keys.challenge(t) for t in tokens])
            new.challenges.update({t: v.decode() for t, v in zip(tokens, values, strict=True) if v})
        for k, v in _text(await self._client.hgetall(self.keys.vip)).items():
            self._load(f"VIP {k!r}", new.load_vips, {k: v})
        for k, v in _text(await self._client.hgetall(self.keys.node)).items():
            self._load(f"node {k!r}", new.load_nodes, {k: v})
        start = new.revision
        await self._catch_up(new, first=True)
        meta = await self._meta()
        if meta.get("epoch") != new.epoch or meta.get("state") != "ready":
            return None
        log.info(
            "tenant reader: bootstrapped at revision %d (from %d), epoch %s",
            new.revision,
            start,
            new.epoch,
        )
        return new

    def _load(self, what: str, load: Callable[..., None], *args: Any) -> None:
        """One key into the state being built; a malformed one (not what the publisher
        writes) is left out and counted, never a reason to stop following."""
        try:
            load(*args)
        except (ValueError, KeyError, TypeError) as e:
            self.malformed += 1
            log.error("tenant reader: %s in Redis is malformed (%s); left out", what, e)

    async def _scan(self, match: str, strip: int, wanted: bool = True) -> Any:
        cursor = 0
        while wanted:
            cursor, keys = await self._client.scan(cursor, match=match, count=1000)
            if keys:
                yield [k.decode()[strip:] for k in keys]
            if cursor == 0:
                return

    async def _catch_up(self, state: TenantState, *, first: bool = False) -> None:
        """Apply every stream entry after the state's revision (a fuzzy load converges)."""
        start = f"{state.revision + 1}-0"
        while True:
            entries = await self._client.xrange(self.keys.log, min=start, count=1000)
            if not entries:
                return
            for entry_id, raw in entries:
                fields = _text(raw)
                if fields.get("snapshot") == "1":
                    raise Gap("a rebuild finished")
                if first:
                    first = False
                    if int(fields["prev"]) != state.revision:
                        raise Gap("the stream was trimmed past the snapshot")
                state.apply_entry(fields)
                start = "(" + entry_id.decode()

    async def _follow(self) -> None:
        state = self.state
        last_id = f"{state.revision}-1"
        block_ms = int(self.settings.block * 1000)
        while True:
            reply = await self._client.xread({self.keys.log: last_id}, count=1000, block=block_ms)
            self.connected = True
            if not reply:
                await self._check_marker()
                continue
            for entry_id, raw in reply[0][1]:
                last_id = entry_id.decode()
                fields = _text(raw)
                if fields.get("snapshot") == "1" and fields.get("epoch") != state.epoch:
                    raise Gap(f"a rebuild finished (epoch {fields.get('epoch')})")
                changed = state.apply_entry(fields)
                if changed is None:
                    continue
                now = self.clock()
                self.last_lag = max(0.0, now - float(fields["ts"]))
                self.last_applied = self.confirmed = now
                self._notify(changed)

    async def _check_marker(self) -> None:
        meta = await self._meta()
        if meta.get("state") != "ready":
            return  # empty or rebuilding: keep serving what we have
        if meta.get("epoch") != self.state.epoch:
            raise Gap(f"Redis now holds epoch {meta.get('epoch')}")
        if int(meta.get("revision", 0)) == self.state.revision:
            self.confirmed = self.clock()
        if int(meta.get("revision", 0)) > self.state.revision:
            # entries exist past us but the read returned none: they were trimmed away
            first = await self._client.xrange(self.keys.log, count=1)
            if not first or int(_text(first[0][1])["prev"]) > self.state.revision:
                raise Gap("the stream was trimmed past our revision")

    def metrics(self) -> dict[str, float]:
        return {
            "revision": self.state.revision,
            "connected": 1.0 if self.connected else 0.0,
            "lag_seconds": self.last_lag or 0.0,
            "stale_seconds": max(0.0, self.clock() - self.confirmed) if self.confirmed else 0.0,
            "resyncs": self.resyncs,
            "malformed": self.malformed,
            "endpoints": self.state.endpoint_count(),
        }
