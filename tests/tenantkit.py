"""Helpers for the tenants tests: a migrated store, a publisher running in a thread."""

from __future__ import annotations

import threading

import pki
from sixpod.inventory.lock import Lock
from sixpod.lab.redisproc import RedisServer
from sixpod.tenants.publisher import Publisher, PublisherSettings
from sixpod.tenants.store import Store


def open_store(url: str, lock: Lock, **kwargs: object) -> Store:
    kwargs.setdefault("seal_key", pki.SEAL_PUBLIC)
    store = Store(url, lock=lock, **kwargs)  # type: ignore[arg-type]
    store.migrate()
    store.sync_pool()
    return store


class RunningPublisher:
    def __init__(self, store: Store, server: RedisServer, **settings: object) -> None:
        self.client = server.client()
        self.publisher = Publisher(store, self.client, PublisherSettings(**settings))  # type: ignore[arg-type]
        store.on_commit = self.publisher.notify
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.publisher.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self.publisher

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.publisher.wake.set()
        self.thread.join(timeout=10)
        self.client.close()
