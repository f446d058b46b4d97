"""Is the BGP speaker alive? A sans-IO watch over ExaBGP's answers to the announcer's commands.

ExaBGP answers every API command (``done``/``error``) in order. A stopped or deadlocked ExaBGP
(SIGSTOP, a stuck reactor) keeps its TCP session until the ToR's hold timer (9 s) and the
node's bfdd keeps BFD up, so the ToR keeps sending it traffic. This watch notices the silence
instead: while nothing is outstanding it asks for a probe (a command that changes nothing)
every ``interval``; when something has been outstanding for ``timeout`` with no answer, the
speaker is HUNG; any answer makes it ALIVE again. The adapter then takes the BFD session down
(and up), so that a hung speaker leaves ECMP as fast as a dead one.

Time is an argument: the adapter calls :meth:`SpeakerWatch.sent` for every command written,
:meth:`SpeakerWatch.acked` for every answer, :meth:`SpeakerWatch.handle_timer` at
:meth:`SpeakerWatch.next_timer`, and drains :data:`~sixpod.routing.events.SpeakerEvent` values.
A timer that fires more than ``timeout`` late means the announcer itself stalled (the answers
may be unread in the pipe): the wait starts again rather than blaming the speaker.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from enum import Enum, StrEnum, auto
from typing import Final

from sixpod.routing.events import Probe, SpeakerAlive, SpeakerEvent, SpeakerHung

__all__ = ["SpeakerState", "SpeakerWatch"]


class SpeakerState(StrEnum):
    """What the announcer knows of ExaBGP; values are metric and status values."""

    UNKNOWN = "unknown"  # no answer yet since the announcer started
    ALIVE = "alive"
    HUNG = "hung"


class _Input(Enum):
    ANSWER = auto()
    SILENCE = auto()  # something outstanding, no answer for `timeout`


_S = SpeakerState
# state -> {input: next state}; entering HUNG emits SpeakerHung, entering ALIVE SpeakerAlive;
# unlisted pairs change nothing (answers while ALIVE, silence while HUNG).
_TRANSITIONS: Final[Mapping[SpeakerState, Mapping[_Input, SpeakerState]]] = {
    _S.UNKNOWN: {_Input.ANSWER: _S.ALIVE, _Input.SILENCE: _S.HUNG},
    _S.ALIVE: {_Input.SILENCE: _S.HUNG},
    _S.HUNG: {_Input.ANSWER: _S.ALIVE},
}


def _positive(value: float, field: str) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value <= 0:
        raise ValueError(f"{field} must be a finite number > 0, got {value!r}")
    return float(value)


class SpeakerWatch:
    """The liveness of the BGP speaker, from its answers. See the module docstring."""

    def __init__(self, *, interval: float, timeout: float, now: float) -> None:
        self._interval = _positive(interval, "interval")
        self._timeout = _positive(timeout, "timeout")
        self._state = SpeakerState.UNKNOWN
        self._in_flight = 0
        self._waiting_since = now  # last answer, or when something became outstanding
        self._last_answer = now - self._interval  # so that the first probe is due at once
        self._events: deque[SpeakerEvent] = deque()

    @property
    def state(self) -> SpeakerState:
        return self._state

    @property
    def in_flight(self) -> int:
        """Commands written and not answered yet."""
        return self._in_flight

    def next_event(self) -> SpeakerEvent | None:
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` must run: the next probe, or the answer's deadline."""
        if self._in_flight == 0:
            return self._last_answer + self._interval
        if self._state is SpeakerState.HUNG:
            return None  # only an answer changes anything now
        return self._waiting_since + self._timeout

    def sent(self, now: float) -> None:
        """A command (a route operation or a probe) was written to the speaker."""
        if self._in_flight == 0:
            self._waiting_since = now
        self._in_flight += 1

    def acked(self, now: float) -> None:
        """The speaker answered a command (``done`` or ``error``: either way, it lives)."""
        if self._in_flight == 0:
            return
        self._in_flight -= 1
        self._waiting_since = self._last_answer = now
        self._apply(_Input.ANSWER, now)

    def handle_timer(self, now: float) -> None:
        if self._in_flight == 0:
            if now >= self._last_answer + self._interval:
                self._events.append(Probe())
            return
        deadline = self._waiting_since + self._timeout
        if now < deadline or self._state is SpeakerState.HUNG:
            return
        if now - deadline > self._timeout:
            self._waiting_since = now  # we woke up far too late: our stall, not its silence
            return
        self._apply(_Input.SILENCE, now)

    def _apply(self, what: _Input, now: float) -> None:
        new = _TRANSITIONS[self._state].get(what)
        if new is None:
            return
        self._state = new
        if new is SpeakerState.HUNG:
            self._events.append(SpeakerHung(now - self._waiting_since))
        else:
            self._events.append(SpeakerAlive())
