"""``sixpod controller``: the API and the publisher in one process.

The API runs on uvicorn (one socket per configured address, IPv6 sockets v6-only); the
publisher runs in a thread of its own, woken by each local commit. Only the lease holder
publishes, so several controllers may share one PostgreSQL store. With ``acme.enabled``, the
ACME issuer runs in a thread too, and orders only while this controller holds the lease.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import redis
import uvicorn
from prometheus_client import CollectorRegistry

from sixpod import addr, redisclient
from sixpod.inventory.lock import parse_lock
from sixpod.tenants import layout, sealed
from sixpod.tenants.api import create_api
from sixpod.tenants.config import AcmeConfig, ControllerConfig
from sixpod.tenants.errors import Unavailable
from sixpod.tenants.issuer import Issuer, IssuerSettings
from sixpod.tenants.publisher import Publisher, PublisherSettings
from sixpod.tenants.store import Store

log = logging.getLogger(__name__)


def listen_socket(endpoint: addr.Endpoint) -> socket.socket:
    family = socket.AF_INET6 if endpoint.ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # inherited by every accepted connection: uvicorn writes a response's head and body
    # apart, and Nagle with delayed ACK holds the body ~40 ms on a keep-alive connection
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((addr.format_ip(endpoint.ip), endpoint.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def read_secret(path: str, what: str) -> str:
    text = Path(path).read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{path}: the {what} is empty")
    return text


def open_store(cfg: ControllerConfig) -> Store:
    lock_text = Path(cfg.lock).read_text(encoding="utf-8")
    lock, _ = parse_lock(lock_text, cfg.lock)
    seal_key = sealed.load_public(cfg.cert_seal_key) if cfg.cert_seal_key else None
    store = Store(cfg.database, lock=lock, guard=cfg.guard, seal_key=seal_key)
    store.migrate()
    store.sync_pool()
    return store


def run(cfg: ControllerConfig) -> int:
    token = read_secret(cfg.token_file, "API token")
    password = read_secret(cfg.redis.password_file, "Redis password")
    store = open_store(cfg)
    registry = CollectorRegistry()
    client = redisclient.RedisTarget(
        cfg.redis.address, password=password, timeout=5.0, connect_timeout=2.0
    ).client()
    publisher = Publisher(
        store,
        client,
        PublisherSettings(**cfg.publisher.model_dump(), prefix=cfg.redis.prefix, guard=cfg.guard),
        registry=registry,
    )
    store.on_commit = publisher.notify
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), name="publisher", daemon=True)
    threads = [thread]
    issuer = None
    if cfg.acme.enabled:
        issuer = make_issuer(
            store,
            cfg.acme,
            client,
            layout.Keys(cfg.redis.prefix),
            active=lambda: publisher.fence is not None,
            registry=registry,
        )
        threads.append(threading.Thread(target=issuer.run, args=(stop,), name="acme", daemon=True))

    def healthy() -> str | None:
        for t in threads:
            if not t.is_alive():
                return f"the {t.name} thread has stopped"
        return None

    app = create_api(
        store,
        token=token,
        registry=registry,
        status=publisher.status,
        healthy=healthy,
        max_body=cfg.max_body_bytes,
        acme_policy=cfg.acme.policy(),
    )
    sockets = [listen_socket(e) for e in cfg.listen]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="info",
            access_log=cfg.access_log,
            loop="uvloop",
            log_config=None,  # uvicorn's records go to the daemon's handler (sixpod.logs)
        )
    )
    for t in threads:
        t.start()
    log.info("controller: listening on %s", ", ".join(addr.format_endpoint(e) for e in cfg.listen))
    try:
        asyncio.run(server.serve(sockets=sockets))
    finally:
        stop.set()
        publisher.wake.set()
        if issuer is not None:
            issuer.wake.set()
        for t in threads:
            t.join(timeout=10)
        client.close()
        store.close()
    return 0


def make_issuer(
    store: Store,
    cfg: AcmeConfig,
    client: redis.Redis,
    keys: layout.Keys,
    *,
    active: Callable[[], bool],
    registry: CollectorRegistry,
) -> Issuer:
    """The ACME issuer of ``cfg``; it waits for challenges on the revision Redis holds."""

    def published() -> int:
        try:
            value = client.hget(keys.meta, "revision")
        except redis.RedisError as e:
            raise Unavailable(f"Redis: {e}") from None
        return int(value) if value is not None else 0

    settings = IssuerSettings(
        directory=cfg.directory,
        account_key=Path(cfg.account_key),
        contact=cfg.contact,
        ca_bundle=Path(cfg.ca_bundle) if cfg.ca_bundle else None,
        policy=cfg.policy(),
        check_interval=cfg.check_interval,
        propagation_delay=cfg.propagation_delay,
        order_timeout=cfg.order_timeout,
    )
    return Issuer(store, settings, published=published, active=active, registry=registry)
