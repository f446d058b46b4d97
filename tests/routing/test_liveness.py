"""The BGP speaker's liveness: a silent ExaBGP is noticed from unanswered commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.routing.events import Probe, SpeakerAlive, SpeakerHung
from sixpod.routing.liveness import SpeakerState, SpeakerWatch


def drain(w: SpeakerWatch) -> list[object]:
    out = []
    while (event := w.next_event()) is not None:
        out.append(event)
    return out


def test_probes_when_idle_and_the_first_answer_means_alive() -> None:
    w = SpeakerWatch(interval=0.1, timeout=0.25, now=0.0)
    assert w.state is SpeakerState.UNKNOWN
    assert w.next_timer() == 0.0
    w.handle_timer(0.0)
    assert drain(w) == [Probe()]
    w.sent(0.0)
    assert w.next_timer() == pytest.approx(0.25)
    w.acked(0.01)
    assert drain(w) == [SpeakerAlive()]
    assert w.state is SpeakerState.ALIVE
    assert w.next_timer() == pytest.approx(0.11)  # idle: the next probe
    w.handle_timer(0.05)
    assert drain(w) == []
    w.handle_timer(0.11)
    assert drain(w) == [Probe()]


def test_no_answer_within_the_timeout_is_hung_and_an_answer_revives() -> None:
    w = SpeakerWatch(interval=0.1, timeout=0.25, now=0.0)
    w.sent(0.0)
    w.acked(0.0)
    drain(w)
    w.sent(1.0)  # a route operation: nothing more is probed while it is outstanding
    w.handle_timer(1.2)
    assert drain(w) == []
    w.handle_timer(1.25)
    assert drain(w) == [SpeakerHung(0.25)]
    assert w.state is SpeakerState.HUNG
    w.handle_timer(5.0)
    assert drain(w) == []  # said once; nothing else to do but wait for an answer
    assert w.next_timer() is None
    w.acked(9.0)
    assert drain(w) == [SpeakerAlive()]
    assert w.state is SpeakerState.ALIVE


def test_a_steady_stream_of_answers_is_alive_however_long_the_queue() -> None:
    w = SpeakerWatch(interval=0.1, timeout=0.25, now=0.0)
    for _ in range(1000):
        w.sent(0.0)
    t = 0.0
    for _ in range(1000):
        t += 0.01  # one ack every 10 ms: 10 s for the burst, never 0.25 s of silence
        w.handle_timer(t)
        w.acked(t)
    assert [e for e in drain(w) if isinstance(e, SpeakerHung)] == []
    assert w.in_flight == 0


def test_waking_up_late_is_our_stall_not_the_speakers() -> None:
    """The announcer's own loop stalled (the answers may be waiting in the pipe): the wait
    starts again instead of calling the speaker hung at once."""
    w = SpeakerWatch(interval=0.1, timeout=0.25, now=0.0)
    w.sent(0.0)
    w.handle_timer(3.0)
    assert drain(w) == []
    assert w.next_timer() == pytest.approx(3.25)
    w.handle_timer(3.25)
    assert drain(w) == [SpeakerHung(0.25)]


def test_unanswerable_acks_and_bad_settings() -> None:
    w = SpeakerWatch(interval=0.1, timeout=0.25, now=0.0)
    w.acked(0.0)  # more answers than commands (a bug elsewhere): ignored, not negative
    assert w.in_flight == 0
    with pytest.raises(ValueError, match="interval"):
        SpeakerWatch(interval=0, timeout=0.25, now=0.0)
    with pytest.raises(ValueError, match="timeout"):
        SpeakerWatch(interval=0.1, timeout=float("nan"), now=0.0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["sent", "acked", "timer"]), st.floats(0, 0.5)),
        max_size=60,
    )
)
def test_hung_only_after_timeout_of_silence_with_something_outstanding(
    steps: list[tuple[str, float]],
) -> None:
    w = SpeakerWatch(interval=0.1, timeout=0.25, now=0.0)
    now, last_answer_or_start = 0.0, 0.0
    outstanding = 0
    for verb, dt in steps:
        now += dt
        if verb == "sent":
            if outstanding == 0:
                last_answer_or_start = now
            outstanding += 1
            w.sent(now)
        elif verb == "acked" and outstanding:
            outstanding -= 1
            last_answer_or_start = now
            w.acked(now)
        else:
            w.handle_timer(now)
        for event in drain(w):
            if isinstance(event, SpeakerHung):
                assert outstanding > 0
                assert now - last_answer_or_start >= 0.25
            if isinstance(event, Probe):
                assert outstanding == 0
        assert (w.state is SpeakerState.HUNG) <= (outstanding > 0)
