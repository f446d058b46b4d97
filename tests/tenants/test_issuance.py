"""The ACME policy core: who needs a certificate, the renewal window, backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.tenants import issuance
from sixpod.tenants.issuance import DAY, Facts, Policy, Record, Status, Work

NOW = 1_800_000_000.0
P = Policy()


def test_a_new_domain_is_ordered_at_once() -> None:
    f = Facts("shop.example")
    assert issuance.status(f, NOW, P) is Status.PENDING
    assert issuance.plan([f], NOW, P) == [Work("shop.example", renewal=False)]
    assert issuance.view(f, NOW, P)["next_attempt"] == "2027-01-15T08:00:00+00:00"


def test_an_upload_always_wins() -> None:
    for record in (None, Record(Status.FAILED, "x", 3, NOW + 60), Record(Status.VALID)):
        f = Facts("shop.example", "upload", NOW + 1 * DAY, record)
        assert issuance.status(f, NOW, P) is Status.UPLOADED
        assert issuance.plan([f], NOW, P) == []
        assert issuance.view(f, NOW, P)["next_attempt"] is None


def test_a_wildcard_is_skipped_with_a_reason() -> None:
    f = Facts("*.shop.example")
    assert issuance.plan([f], NOW, P) == []
    v = issuance.view(f, NOW, P)
    assert v["status"] == "wildcard"
    assert "upload" in v["error"]
    # with an uploaded certificate it is simply uploaded
    assert issuance.status(Facts("*.shop.example", "upload", NOW + DAY), NOW, P) is Status.UPLOADED


def test_renewal_starts_30_days_before_expiry() -> None:
    f = Facts("shop.example", "acme", NOW + 30 * DAY + 1, Record(Status.VALID))
    assert issuance.status(f, NOW, P) is Status.VALID
    assert issuance.plan([f], NOW, P) == []
    assert issuance.next_timer([f], NOW, P) == NOW + 1
    assert issuance.plan([f], NOW + 1, P) == [Work("shop.example", renewal=True)]
    assert issuance.status(f, NOW + 1, P) is Status.RENEWING
    short = Policy(renew_before=5 * DAY)
    assert issuance.plan([f], NOW + 1, short) == []


def test_an_expired_acme_certificate_is_renewed() -> None:
    f = Facts("shop.example", "acme", NOW - DAY)
    assert issuance.plan([f], NOW, P) == [Work("shop.example", renewal=True)]


def test_a_failure_backs_off_and_is_retried_when_due() -> None:
    r = issuance.failed(None, NOW, "CA unreachable\nconnection refused", 0.5, P)
    assert r.status is Status.FAILED
    assert r.failures == 1
    assert r.error == "CA unreachable connection refused"
    assert r.next_attempt == NOW + 60
    f = Facts("shop.example", record=r)
    assert issuance.plan([f], NOW + 59, P) == []
    assert issuance.next_timer([f], NOW, P) == NOW + 60
    assert issuance.plan([f], NOW + 60, P) == [Work("shop.example", renewal=False)]
    r2 = issuance.failed(r, NOW + 60, "again", 0.5, P)
    assert (r2.failures, r2.next_attempt) == (2, NOW + 60 + 120)
    ok = issuance.issued(r2, NOW + 200, NOW + 90 * DAY)
    assert ok == Record(Status.VALID, not_after=NOW + 90 * DAY, last_success=NOW + 200)


def test_a_failed_renewal_keeps_the_old_certificate_in_view() -> None:
    valid = issuance.issued(None, NOW, NOW + 20 * DAY)
    r = issuance.failed(valid, NOW, "timeout", 0.0, P)
    f = Facts("shop.example", "acme", NOW + 20 * DAY, r)
    v = issuance.view(f, NOW, P)
    assert v["status"] == "failed"
    assert v["not_after"] == issuance.iso(NOW + 20 * DAY)
    assert v["error"] == "timeout"
    assert v["last_success"] == issuance.iso(NOW)


def test_backoff_doubles_from_a_minute_to_a_day() -> None:
    exact = Policy(jitter=0.0)
    waits = [issuance.backoff(n, 0.3, exact) for n in range(1, 14)]
    assert waits[:4] == [60, 120, 240, 480]
    assert waits[-1] == DAY
    assert issuance.backoff(10_000, 0.9, P) == DAY
    with pytest.raises(ValueError, match="failures"):
        issuance.backoff(0, 0.5, P)


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_backoff_jitter_stays_in_bounds(failures: int, rand: float) -> None:
    base = min(60 * 2.0 ** min(failures - 1, 60), DAY)
    wait = issuance.backoff(failures, rand, P)
    assert 0.75 * base <= wait <= min(1.25 * base, DAY)


def test_one_failing_domain_does_not_hold_the_others_back() -> None:
    failing = Facts("a.example", record=issuance.failed(None, NOW, "x", 0.5, P))
    new = Facts("b.example")
    renew = Facts("c.example", "acme", NOW + DAY)
    fine = Facts("d.example", "acme", NOW + 80 * DAY)
    assert issuance.plan([failing, new, renew, fine], NOW, P) == [
        Work("b.example", renewal=False),
        Work("c.example", renewal=True),
    ]


def test_the_longest_waiting_is_ordered_first() -> None:
    older = Facts("z.example", record=Record(Status.FAILED, "x", 1, NOW - 500))
    newer = Facts("a.example", record=Record(Status.FAILED, "x", 1, NOW - 5))
    assert [w.domain for w in issuance.plan([newer, older], NOW, P)] == ["z.example", "a.example"]


def test_derived_states_are_never_recorded() -> None:
    with pytest.raises(ValueError, match="derived"):
        Record(Status.UPLOADED)
    with pytest.raises(ValueError, match="backoff"):
        Policy(backoff_min=10, backoff_max=5)


def test_every_recorded_state_has_both_outcomes() -> None:
    for s in issuance.RECORDED:
        for o in issuance.Outcome:
            assert issuance.TRANSITIONS[(s, o)] in issuance.RECORDED


def test_long_errors_are_cut() -> None:
    r = issuance.failed(None, NOW, "e" * 2000, 0.1, P)
    assert len(r.error) == issuance.MAX_ERROR
