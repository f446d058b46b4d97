"""The TCP adapter with a fake transport: backpressure and the idle timer (RFC 7766)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import dns.message

from razorkit import config, state
from sixpod.razor.engine import Engine
from sixpod.razor.rrl import Limit
from sixpod.razor.server import _Tcp, tcp_table


class FakeTransport:
    """Calls the protocol's pause_writing once ``high`` bytes are buffered, as asyncio does."""

    def __init__(self, high: int, host: str = "192.0.2.1") -> None:
        self.high = high
        self.host = host
        self.buffered = 0
        self.written: list[bytes] = []
        self.reading = True
        self.closed = False
        self.protocol: Any = None

    def get_extra_info(self, _name: str) -> tuple[str, int]:
        return (self.host, 5353)

    def write(self, data: bytes) -> None:
        self.written.append(data)
        before = self.buffered
        self.buffered += len(data)
        if before <= self.high < self.buffered:
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.buffered = 0
        self.protocol.resume_writing()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


class FakeLoop:
    def __init__(self) -> None:
        self.timers: list[Any] = []

    def call_later(self, delay: float, callback: Any) -> Any:
        handle = SimpleNamespace(delay=delay, callback=callback, cancelled=False)
        handle.cancel = lambda: setattr(handle, "cancelled", True)
        self.timers.append(handle)
        return handle


def fake_worker(**cfg: Any) -> Any:
    settings = config(**cfg)
    return SimpleNamespace(
        engine=Engine(settings, state()),
        cfg=settings,
        loop=FakeLoop(),
        tcp_queries=0,
        tcp=tcp_table(settings),
        internal_error=lambda: None,
    )


def connect(
    high: int, worker: Any = None, host: str = "192.0.2.1"
) -> tuple[_Tcp, FakeTransport, FakeLoop]:
    worker = worker or fake_worker()
    proto = _Tcp(worker)
    transport = FakeTransport(high, host)
    transport.protocol = proto
    proto.connection_made(transport)
    return proto, transport, worker.loop


def frame(name: str) -> bytes:
    q = dns.message.make_query(name, "A").to_wire()
    return len(q).to_bytes(2, "big") + q


def test_a_client_that_does_not_read_is_not_read_from() -> None:
    proto, transport, _ = connect(high=2000)
    proto.data_received(frame("shop.route.example.net") * 500)
    answered = len(transport.written)
    assert 0 < answered < 500  # stopped at the high-water mark
    assert not transport.reading
    transport.drain()  # the client read its answers: the rest is answered
    while not transport.reading or len(transport.written) < 500:
        before = len(transport.written)
        transport.drain()
        assert len(transport.written) > before
    assert len(transport.written) == 500


def test_the_idle_timer_restarts_on_whole_messages_only() -> None:
    worker = fake_worker()
    proto, transport, _ = connect(high=10**9, worker=worker)
    opened = worker.tcp.last(proto)
    message = frame("shop.route.example.net")
    for i in range(len(message) - 1):  # a slow client: one byte at a time
        proto.data_received(message[i : i + 1])
    assert worker.tcp.last(proto) == opened  # bytes are not messages
    proto.data_received(message[-1:])
    assert len(transport.written) == 1
    assert worker.tcp.last(proto) > opened  # a whole message restarts it


def test_one_client_prefix_cannot_take_every_tcp_slot() -> None:
    """Issue 15 item 10: one client prefix holds at most tcp_max_per_client connections (a
    newcomer from it closes its idlest); another client still gets TCP."""
    worker = fake_worker(tcp_max_connections=10, tcp_max_per_client=3)
    held = [connect(10**9, worker, host=f"192.0.2.{i}") for i in range(1, 11)]
    assert [t.closed for _, t, _ in held] == [True] * 7 + [False] * 3  # the newest stay
    assert len(worker.tcp) == 3
    assert worker.tcp.evicted[Limit.CLIENT] == 7
    proto, transport, _ = connect(10**9, worker, host="2001:db8:77::1")
    assert not transport.closed
    proto.data_received(frame("shop.route.example.net"))
    assert len(transport.written) == 1
    for p, _, _ in held:
        p.connection_lost(None)  # the evicted ones too: their loss is not counted twice
    assert len(worker.tcp) == 1


def test_a_full_worker_admits_a_newcomer() -> None:
    """Review of issue 15 item 10: ten /56s of one /48 at tcp_max_per_client each fill a
    worker; an innocent newcomer is still served, and an attacker connection goes."""
    worker = fake_worker(tcp_max_connections=1000, tcp_max_per_client=100)
    held = [
        connect(10**9, worker, host=f"2001:db8:66:{i:02x}{j:02x}::1")
        for i in range(10)
        for j in range(100)
    ]
    assert len(worker.tcp) == 1000
    proto, transport, _ = connect(10**9, worker, host="2001:db8:77::1")
    assert not transport.closed
    proto.data_received(frame("shop.route.example.net"))
    assert len(transport.written) == 1
    assert sum(t.closed for _, t, _ in held) == 1
    assert held[0][1].closed  # the idlest of the biggest prefix
    assert worker.tcp.evicted[Limit.WORKER] == 1
