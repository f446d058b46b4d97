"""The pod-wide safety floor, coordinated through the pod's Redis (the adapter of ``AskFloor``,
``JoinFloor`` and ``LeaveFloor``).

The edge nodes that are healthy and announcing the VIPs are the members of one sorted set,
``<floor.key>:<pod>``: member = node name, score = the member's expiry as a Unix time in
seconds on the **Redis server's clock**. A node may withdraw the VIPs for a *degraded*
reason only if at least ``floor.min_nodes`` unexpired members remain once it has left.

Every decision is a Lua script run by the server, so it is atomic and uses one clock:

- *join* / *heartbeat*: purge expired members, ``ZADD`` the node with expiry
  ``TIME + ttl``, and push the key's own expiry past its latest member (an abandoned pod key
  disappears by itself);
- *ask to leave*: purge, count the unexpired members other than the caller, and remove the
  caller only if that count is ``>= min_nodes``; returns granted/denied and the count (a
  caller that is not a member, never joined or expired, is simply not counted);
- *count*: the members whose expiry is after the server's ``TIME``;
- *leave* is a plain ``ZREM`` (idempotent).

All nodes must talk to the same writable Redis (the pod's primary, not their local replica,
which refuses writes). The caller heartbeats while it announces, well within ``ttl`` (a
third of it, say).

Failure modes of this design, and what happens:

- **Redis down, unreachable, wrong password or slow** (each call is bounded by a timeout):
  :meth:`FloorClient.ask_to_leave` answers *denied* with reason ``"redis unavailable: ..."``,
  so no node withdraws the VIPs for a degraded check and the floor holds (fail-safe: keep
  announcing). Broken checks, drains and disables do not ask the floor and still withdraw.
  ``join``/``heartbeat``/``leave`` raise :class:`FloorUnavailable` for the caller to log and
  retry; members then expire after ``ttl``, so once Redis is back the set is rebuilt by the
  next heartbeats, and until then the count is low and asks are denied (safe side).
- **A partitioned node** (it cannot reach Redis, but Redis still lists it): its membership
  counts for up to ``ttl`` after its last heartbeat, so for that long the others may believe
  one more node is announcing than really is. Keep ``ttl`` short (seconds).
- **Two nodes racing** to leave: the server runs scripts one at a time, so the asks are
  serialized and at most ``members - min_nodes`` are granted, however many ask at once.
- **A node that dies without leaving** expires after ``ttl``; the next script purges it.
- **Clock skew**: none of the nodes' clocks is used; expiry is computed and compared with the
  Redis server's ``TIME`` only.
- **A lost reply**: if the grant was applied but its reply timed out, the node is out of the
  set yet keeps announcing (it saw a denial) until its next heartbeat puts it back; if a
  ``leave`` is lost, the stale membership expires after ``ttl``.
- **A Redis failover** (asynchronous replication) may lose the latest joins and leaves; the
  set converges within one heartbeat interval and ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider

from sixpod import addr
from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.routing.checks import describe_redis_error
from sixpod.routing.config import FloorConfig
from sixpod.routing.errors import Unavailable

__all__ = ["FloorAnswer", "FloorClient", "FloorUnavailable"]

_T = TypeVar("_T")

# Server time as seconds (a Lua number: a double, microsecond resolution at today's epoch).
# Scores go to Redis as '%.6f' text so nothing depends on Lua's number-to-string conversion.
_NOW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_JOIN: Final = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))
redis.call('ZADD', KEYS[1], string.format('%.6f', now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.ceil(tonumber(last[2]) * 1000) + 1000))
return redis.call('ZCARD', KEYS[1])
"""
)

_ASK_TO_LEAVE: Final = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))
local others = redis.call('ZCARD', KEYS[1])
local member = redis.call('ZSCORE', KEYS[1], ARGV[1])
if member then
  others = others - 1
end
if others >= tonumber(ARGV[2]) then
  if member then
    redis.call('ZREM', KEYS[1], ARGV[1])
  end
  return {1, others}
end
return {0, others}
"""
)

_COUNT: Final = (
    _NOW
    + """
return redis.call('ZCOUNT', KEYS[1], string.format('(%.6f', now), '+inf')
"""
)


class FloorUnavailable(Unavailable):
    """The floor's Redis could not be used (down, unreachable, refused the password, too slow).

    Whose fault: the environment's. Consequence: the caller logs it and carries on; the
    membership it could not write expires or is rewritten by the next heartbeat, and
    :meth:`FloorClient.ask_to_leave` never raises it (it answers *denied* instead).
    """


@dataclass(frozen=True, slots=True)
class FloorAnswer:
    """The floor's answer to "may this node withdraw its VIPs?".

    ``granted`` means the node has already been removed from the pod's set. ``remaining`` is
    the number of unexpired members other than the caller that the server counted (None when
    Redis could not be asked); ``reason`` is for humans.
    """

    granted: bool
    remaining: int | None
    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.granted, bool):
            raise ValueError(f"granted must be a bool, got {self.granted!r}")
        if self.remaining is not None and (
            isinstance(self.remaining, bool)
            or not isinstance(self.remaining, int)
            or self.remaining < 0
        ):
            raise ValueError(
                f"remaining must be a non-negative int or None, got {self.remaining!r}"
            )
        if self.granted and self.remaining is None:
            raise ValueError("a grant always knows how many nodes remain")


class _PasswordFile(CredentialProvider):
    """Reads the password file on every new connection, so a rotated password is picked up.

    A missing or unreadable file is an :class:`~redis.exceptions.AuthenticationError`, so
    redis-py drops the half-open connection; :class:`FloorClient` then translates it.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def get_credentials(self) -> tuple[str]:
        try:
            with open(self._path, encoding="utf-8") as f:
                return (f.read().strip(),)
        except OSError as e:
            message = f"password file {self._path}: {e.strerror or e}"
        except UnicodeError:
            message = f"password file {self._path}: not UTF-8"
        raise redis.exceptions.AuthenticationError(message)

    async def get_credentials_async(self) -> tuple[str]:
        return self.get_credentials()  # a small local file: read it, no thread


class FloorClient:
    """One node's handle on the pod-wide floor. Construct once; :meth:`close` at the end.

    Every method is bounded by ``timeout`` (default ``config.retry``); a connection is kept
    in redis-py's pool and re-made after errors, so use one client from one event loop. Not
    for a config whose ``redis`` is None (a floor of 0 needs no coordination): that raises
    ValueError.
    """

    def __init__(
        self, *, config: FloorConfig, pod: str, node: str, timeout: float | None = None
    ) -> None:
        if config.redis is None:
            raise ValueError("floor.redis is not set: there is no Redis to coordinate through")
        if not pod or not node:
            raise ValueError(f"pod and node must be non-empty, got {pod!r}, {node!r}")
        self._config = config
        self._node = node
        self._key = f"{config.key}:{pod}"
        self._timeout = timeout if timeout is not None else config.retry
        if not self._timeout > 0:
            raise ValueError(f"timeout must be positive, got {self._timeout!r}")
        endpoint = config.redis
        self._where = addr.for_redis(addr.Endpoint(endpoint.ip, endpoint.port))
        host = addr.format_ip(endpoint.ip)
        self._redis = redis.asyncio.Redis(
            host=f"{host}%{endpoint.zone}" if endpoint.zone is not None else host,
            port=endpoint.port,
            credential_provider=_PasswordFile(config.password_file)
            if config.password_file
            else None,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),  # every call is bounded; a failure is an answer
        )
        self._join = self._redis.register_script(_JOIN)
        self._ask = self._redis.register_script(_ASK_TO_LEAVE)
        self._count = self._redis.register_script(_COUNT)

    @property
    def key(self) -> str:
        """The pod's sorted set: ``<floor.key>:<pod>``."""
        return self._key

    @property
    def node(self) -> str:
        return self._node

    async def _call(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run one Redis call under the timeout; translate every failure to FloorUnavailable."""

        def unavailable(detail: str) -> FloorUnavailable:
            return FloorUnavailable(f"redis unavailable: {what} at {self._where}: {detail}")

        failed: ExceptionMap = {
            TimeoutError: lambda e: unavailable(f"timeout after {self._timeout:g} s"),
            (redis.exceptions.RedisError, OSError): lambda e: unavailable(describe_redis_error(e)),
        }
        with map_exceptions(failed):
            async with asyncio.timeout(self._timeout):
                return await call()

    async def join(self) -> None:
        """Add (or refresh) this node in the pod's set, expiring ``ttl`` from the server's now."""

        async def call() -> Any:
            return await self._join(keys=[self._key], args=[self._node, repr(self._config.ttl)])

        await self._call("join", call)

    async def heartbeat(self) -> None:
        """The same as :meth:`join`: refresh this node's expiry while it announces."""
        await self.join()

    async def leave(self) -> None:
        """Remove this node from the set, unconditionally (idempotent)."""

        async def call() -> Any:
            return await self._redis.zrem(self._key, self._node)

        await self._call("leave", call)

    async def ask_to_leave(self) -> FloorAnswer:
        """Leave the set if at least ``min_nodes`` others remain; never raises.

        Atomic across nodes. If Redis cannot be asked, the answer is *denied* with reason
        ``"redis unavailable: ..."``: the node keeps announcing (fail-safe).
        """
        minimum = self._config.min_nodes

        async def call() -> Any:
            return await self._ask(keys=[self._key], args=[self._node, minimum])

        try:
            reply = await self._call("ask to leave", call)
        except FloorUnavailable as e:
            return FloorAnswer(False, None, str(e))
        try:
            granted, others = (int(x) for x in reply)
        except (TypeError, ValueError):
            return FloorAnswer(False, None, f"redis unavailable: unexpected reply {reply!r}")
        if granted:
            return FloorAnswer(
                True, others, f"granted: {others} other nodes remain (min {minimum})"
            )
        return FloorAnswer(
            False, others, f"denied: only {others} other nodes remain (min {minimum})"
        )

    async def healthy_count(self) -> int:
        """The number of unexpired members (this node included, if it is one)."""

        async def call() -> Any:
            return await self._count(keys=[self._key])

        return int(await self._call("count", call))

    async def close(self) -> None:
        """Close the connections. Never raises."""
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self._redis.aclose()

    async def __aenter__(self) -> FloorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
