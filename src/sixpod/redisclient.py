"""Redis clients, built in one place: the controller's publisher, the tenant reader, Razor, the lab.

The address is an :class:`sixpod.addr.Endpoint` (a link-local one keeps its zone for
``getaddrinfo``); the password is given, or read once from a file (surrounding whitespace
stripped, an ``OSError`` if it cannot be read); the timeouts are explicit, in seconds.
``retry=False`` makes every call a single attempt (for callers whose own loop or deadline is
the retry policy); otherwise redis-py's default policy applies. Nothing connects until the
first command.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from sixpod import addr

__all__ = ["async_client", "client", "read_password"]


def read_password(path: str) -> str:
    """The password in ``path``, whitespace stripped; ``OSError`` if it cannot be read."""
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def _options(
    address: addr.Endpoint,
    password: str | None,
    password_file: str | None,
    timeout: float,
    connect_timeout: float | None,
    decode: bool,
) -> dict[str, Any]:
    if password is not None and password_file is not None:
        raise ValueError("give a password or a password file, not both")
    host = addr.format_ip(address.ip)
    return {
        "host": host if address.zone is None else f"{host}%{address.zone}",
        "port": address.port,
        "password": read_password(password_file) if password_file is not None else password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout if connect_timeout is None else connect_timeout,
        "decode_responses": decode,
    }


def client(
    address: addr.Endpoint,
    *,
    password: str | None = None,
    password_file: str | None = None,
    timeout: float = 5.0,
    connect_timeout: float | None = None,
    retry: bool = True,
    decode: bool = False,
    **options: Any,
) -> redis.Redis:
    """A synchronous client of the Redis at ``address``.

    ``timeout``: seconds a command may take; ``connect_timeout``: seconds to connect
    (``timeout`` when None); ``decode``: replies as ``str`` rather than ``bytes``.
    ``options`` go to :class:`redis.Redis` as they are.
    """
    kwargs = _options(address, password, password_file, timeout, connect_timeout, decode)
    if not retry:
        kwargs["retry"] = Retry(NoBackoff(), 0)
    return redis.Redis(**kwargs, **options)


def async_client(
    address: addr.Endpoint,
    *,
    password: str | None = None,
    password_file: str | None = None,
    timeout: float = 5.0,
    connect_timeout: float | None = None,
    retry: bool = True,
    decode: bool = False,
    **options: Any,
) -> redis.asyncio.Redis:
    """The asyncio variant of :func:`client`, with the same arguments."""
    kwargs = _options(address, password, password_file, timeout, connect_timeout, decode)
    if not retry:
        kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
    return redis.asyncio.Redis(**kwargs, **options)
