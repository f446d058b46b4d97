"""Redis clients, built in one place: the controller's publisher, the tenant reader (and so
Razor and the edge agent), the lab. A :class:`RedisTarget` says where and how; its
:meth:`~RedisTarget.client` and :meth:`~RedisTarget.async_client` build the clients.

The address is an :class:`sixpod.addr.Endpoint` (a link-local one keeps its zone for
``getaddrinfo``); the password is given, or read once from a file (surrounding whitespace
stripped, an ``OSError`` if it cannot be read); the timeouts are explicit, in seconds.
``retry=False`` makes every call a single attempt (for callers whose own loop or deadline is
the retry policy); otherwise redis-py's default policy applies. Nothing connects until the
first command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from sixpod import addr

__all__ = ["RedisTarget", "read_password"]


def read_password(path: str) -> str:
    """The password in ``path``, whitespace stripped; ``OSError`` if it cannot be read."""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """One Redis and how to talk to it; :meth:`client` / :meth:`async_client` build clients."""

    address: addr.Endpoint
    password: str | None = None
    password_file: str | None = None
    """Read when a client is built (``password`` or this, not both)."""
    timeout: float = 5.0
    """Seconds a command may take."""
    connect_timeout: float | None = None
    """Seconds to connect; ``timeout`` when None."""
    retry: bool = True
    """False: every call is a single attempt; True: redis-py's default policy."""
    decode: bool = False
    """Replies as ``str`` rather than ``bytes``."""

    def __post_init__(self) -> None:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give a password or a password file, not both")

    def _options(self) -> dict[str, Any]:
        host = addr.format_ip(self.address.ip)
        password = self.password
        if self.password_file is not None:
            password = read_password(self.password_file)
        timeout = self.timeout
        return {
            "host": host if self.address.zone is None else f"{host}%{self.address.zone}",
            "port": self.address.port,
            "password": password,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout
            if self.connect_timeout is None
            else self.connect_timeout,
            "decode_responses": self.decode,
        }

    def client(self, **options: Any) -> redis.Redis:
        """A synchronous client; ``options`` go to :class:`redis.Redis` as they are."""
        kwargs = self._options()
        if not self.retry:
            kwargs["retry"] = Retry(NoBackoff(), 0)
        return redis.Redis(**kwargs, **options)

    def async_client(self, **options: Any) -> redis.asyncio.Redis:
        """An asyncio client; ``options`` go to :class:`redis.asyncio.Redis` as they are."""
        kwargs = self._options()
        if not self.retry:
            kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
        return redis.asyncio.Redis(**kwargs, **options)
