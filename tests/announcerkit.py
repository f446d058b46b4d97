"""The announcer's adapter against a scripted ExaBGP: its session events and its acks."""

from __future__ import annotations

import asyncio

UP = (
    '{"exabgp": "5.0.0", "type": "state", "neighbor": {"address": {"local": "2001:db8:2ff::2",'
    ' "peer": "2001:db8:2ff::1"}, "state": "up"}}\n'
)


class FakeExaBGP:
    """Records commands; acknowledges each with ``done`` like ExaBGP 5."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()
        self.commands: list[str] = []

    def write(self, data: bytes) -> None:
        if self.reader.at_eof() or self.reader._eof:
            raise BrokenPipeError("ExaBGP is gone")
        for line in data.decode().splitlines():
            self.commands.append(line)
            self.reader.feed_data(b"done\n")


async def settle(predicate: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
