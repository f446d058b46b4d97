"""Where Razor's live input comes from: the one seam between Razor and the tenants data.

:class:`~sixpod.razor.state.RazorState` is all Razor needs besides its config: the pool's VIPs
with their states and the apps with their shard seeds. Razor reads the tenants Redis only
through the reader library (:mod:`sixpod.tenants.reader`, upstream lists left out, see
:func:`reader_settings`): a worker follows it, :func:`follow_reader` applying the current
state and then every change that matters, in ``Worker``::

    reader = TenantReader(reader_settings(cfg.tenants)); await reader.start()
    follow_reader(reader, self.apply, pool)      # the current state, then every change

and attribution loads it once (:func:`load_tenants`). :func:`snapshot` turns the reader's
values into a ``RazorState``.

Without tenants, :class:`StaticFeed` serves the pool from the config (``pool.lock`` or
``pool.vips``) and a JSON/YAML state file, re-read when it changes.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import yaml
from redis.exceptions import RedisError

from sixpod import addr
from sixpod.inventory.errors import InventoryError
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.source import check_limits
from sixpod.razor.config import RazorConfig
from sixpod.razor.errors import ConfigError
from sixpod.razor.state import IPAddress, RazorState
from sixpod.tenants.config import RedisConfig
from sixpod.tenants.model import App, Changed, Vip, VipState
from sixpod.tenants.reader import Gap, ReaderSettings, TenantReader, TenantState


def snapshot(
    vips: Mapping[IPAddress, Vip], apps: Mapping[str, App], revision: int = 0
) -> RazorState:
    """The seam: tenant values (as ``TenantReader.state`` holds them) → Razor's input."""
    return RazorState(
        vips=MappingProxyType({ip: v.state for ip, v in vips.items()}),
        apps=MappingProxyType({name: a.shard_seed for name, a in apps.items()}),
        revision=revision,
    )


class TenantView(Protocol):
    """What Razor reads of a tenant state (``TenantReader.state``)."""

    @property
    def vips(self) -> Mapping[IPAddress, Vip]: ...
    @property
    def apps(self) -> Mapping[str, App]: ...


class Reader(Protocol):
    """What Razor uses of ``sixpod.tenants.reader.TenantReader``."""

    @property
    def state(self) -> TenantView: ...
    def add_listener(self, callback: Callable[[Any, Any], None]) -> None: ...


def within_pool(state: RazorState, pool: tuple[IPAddress, ...]) -> RazorState:
    """Razor hands out only its configured pool: VIPs the tenants state does not know are
    active, VIPs outside the pool are ignored."""
    vips = dict.fromkeys(pool, VipState.ACTIVE)
    vips.update((ip, s) for ip, s in state.vips.items() if ip in vips)
    return RazorState(MappingProxyType(vips), state.apps, state.revision)


def follow_reader(
    reader: Reader,
    apply: Callable[[RazorState], None],
    pool: tuple[IPAddress, ...] | None = None,
) -> None:
    """Apply the reader's current state now and again after each change that matters to
    Razor (VIP states, apps and their seeds, a resync); upstream-only changes are skipped.
    With ``pool``, states are kept to it (:func:`within_pool`)."""

    def view(vips: Mapping[IPAddress, Vip], apps: Mapping[str, App], rev: int) -> RazorState:
        state = snapshot(vips, apps, rev)
        return state if pool is None else within_pool(state, pool)

    last = view(reader.state.vips, reader.state.apps, 0)
    apply(last)

    def changed(state: TenantView, change: Changed) -> None:
        nonlocal last
        if not (change.vips or change.resync or change.apps):
            return
        new = view(state.vips, state.apps, change.revision)
        if new.vips == last.vips and new.apps == last.apps:
            return  # an app's upstreams changed, not its seed: nothing to rebuild
        apply(new)  # if it raises, ``last`` stays: the next change retries this one
        last = new

    reader.add_listener(changed)


def load_pool(cfg: RazorConfig) -> tuple[IPAddress, ...]:
    """The configured pool: ``pool.vips`` or every VIP of ``pool.lock``."""
    if cfg.pool.lock is None:
        return cfg.pool.vips
    try:
        with open(cfg.pool.lock, encoding="utf-8") as f:
            lock, _ = parse_lock(f.read(), cfg.pool.lock)
    except OSError as e:
        raise ConfigError(f"{cfg.pool.lock}: cannot read: {e.strerror}") from None
    except InventoryError as e:
        raise ConfigError(str(e)) from None
    return (*lock.vips4, *lock.vips6)


STATE_KEYS = ("revision", "vips", "apps", "end")


def parse_state(text: str, filename: str, pool: tuple[IPAddress, ...]) -> RazorState:
    """A state file: ``{"revision": N, "vips": {ADDR: STATE}, "apps": {NAME: SEED},
    "end": true}``, every key required and ``end`` last, so a file cut short (an empty one,
    one read mid-write) is refused rather than served as a pod with no apps.

    VIPs not named are active; a VIP outside the pool is an error.
    """
    try:
        if not filename.endswith(".json"):
            check_limits(text, filename)  # no alias bomb, no deep nesting
        data = json.loads(text) if filename.endswith(".json") else yaml.safe_load(text)
    except InventoryError as e:
        raise ConfigError(str(e)) from None
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{filename}: not valid JSON/YAML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{filename}: nested too deeply") from None
    if not isinstance(data, dict) or set(data) - set(STATE_KEYS):
        raise ConfigError(f"{filename}: expected a mapping of {', '.join(STATE_KEYS)}")
    missing = [k for k in STATE_KEYS if k not in data]
    if missing:
        raise ConfigError(
            f"{filename}: incomplete (no {', '.join(missing)}): a state file needs every one "
            f"of {', '.join(STATE_KEYS)}, 'end: true' last; write it whole, then rename it"
        )
    if data["end"] is not True or list(data)[-1] != "end":
        raise ConfigError(f"{filename}: 'end: true' must be the last key (the file is cut short?)")
    states = dict.fromkeys(pool, VipState.ACTIVE)
    raw_vips = data.get("vips") or {}
    raw_apps = data.get("apps") or {}
    if not isinstance(raw_vips, dict) or not isinstance(raw_apps, dict):
        raise ConfigError(f"{filename}: vips and apps must be mappings")
    for text_ip, state in raw_vips.items():
        try:
            ip = addr.parse_ip(str(text_ip))
            states_value = VipState(state)
        except (addr.AddressError, ValueError) as e:
            raise ConfigError(f"{filename}: vips: {text_ip!r}: {e}") from None
        if ip not in states:
            raise ConfigError(f"{filename}: VIP {addr.format_ip(ip)} is not in the pool")
        states[ip] = states_value
    apps: dict[str, int] = {}
    for name, seed in raw_apps.items():
        if not isinstance(name, str) or not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"{filename}: apps: {name!r}: expected NAME: SEED (an integer)")
        apps[name] = seed
    revision = data["revision"]
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        raise ConfigError(f"{filename}: revision must be an integer >= 0")
    return RazorState(MappingProxyType(states), MappingProxyType(apps), revision)


def format_state(state: RazorState) -> str:
    """The mirror of :func:`parse_state` (JSON; only VIPs that are not active are listed)."""
    return (
        json.dumps(
            {
                "revision": state.revision,
                "vips": {
                    addr.format_ip(ip): s.value
                    for ip, s in sorted(state.vips.items(), key=lambda i: (i[0].version, i[0]))
                    if s is not VipState.ACTIVE
                },
                "apps": dict(sorted(state.apps.items())),
                "end": True,
            },
            indent=2,
        )
        + "\n"
    )


def load_tenants(cfg: RazorConfig, pool: tuple[IPAddress, ...]) -> RazorState:
    """VIP states and app seeds read once from Redis (attribution, the CLI), through the
    reader library (:meth:`sixpod.tenants.reader.TenantReader.load`, upstream lists left out)."""
    t = cfg.tenants
    assert t is not None
    where = f"Redis at {addr.format_endpoint(t.address)}"
    try:
        reader = TenantReader(reader_settings(t))
    except OSError as e:
        raise ConfigError(f"{t.password_file}: cannot read: {e.strerror}") from None
    try:
        tenants = asyncio.run(_load_once(reader))
    except (RedisError, OSError) as e:
        raise ConfigError(f"{where}: {e}") from None
    except (Gap, ValueError, KeyError, TypeError) as e:  # a rebuild meanwhile; malformed keys
        raise ConfigError(f"{where}: tenant state not readable now: {e}") from None
    if tenants is None:
        raise ConfigError(f"{where} has no tenant state")
    return within_pool(snapshot(tenants.vips, tenants.apps, tenants.revision), pool)


def reader_settings(t: RedisConfig) -> ReaderSettings:
    """How Razor follows the tenants: VIP states and apps, no upstream lists."""
    return ReaderSettings(
        address=t.address, password_file=t.password_file, prefix=t.prefix, upstreams=False
    )


async def _load_once(reader: TenantReader) -> TenantState | None:
    try:
        for _ in range(3):  # a rebuild finishing during the read: read the new state
            try:
                return await reader.load()
            except Gap:
                continue
        return await reader.load()
    finally:
        await reader.stop()


class StaticFeed:
    """Pool from the config, states and apps from ``state_file``; :meth:`poll` re-reads the
    file when its mtime, size or inode changed (or when forced, on SIGHUP)."""

    def __init__(self, cfg: RazorConfig) -> None:
        self.cfg = cfg
        self.pool = load_pool(cfg)
        self._stamp: tuple[int, int, int] | None = None
        self._revision: int | None = None

    def load(self) -> RazorState:
        if self.cfg.tenants is not None:
            return load_tenants(self.cfg, self.pool)
        path = self.cfg.state_file
        if path is None:
            return RazorState(MappingProxyType(dict.fromkeys(self.pool, VipState.ACTIVE)))
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text: {e.reason}") from None
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)  # a refused file: said once
        state = parse_state(text, path, self.pool)
        if self._revision is not None and state.revision < self._revision:
            raise ConfigError(
                f"{path}: revision {state.revision} goes back from {self._revision}; refused "
                "(an old copy?). Raise the revision to apply it"
            )
        self._revision = state.revision
        return state

    def poll(self, *, force: bool = False) -> RazorState | None:
        """A new state if the file changed since the last load, else None.

        A file that cannot be read or parsed raises :class:`ConfigError`; the caller keeps
        serving the last good state.
        """
        path = self.cfg.state_file
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        if not force and (st.st_mtime_ns, st.st_size, st.st_ino) == self._stamp:
            return None
        return self.load()
