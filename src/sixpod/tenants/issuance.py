"""ACME issuance policy: which domains need a certificate, when one is renewed, how failures
back off. Pure: facts and ``now`` in, work and records out; :mod:`sixpod.tenants.issuer` is
the adapter that talks to the CA and the store.

Every attached domain is in one state. Three are the issuer's record (the ``acme`` table),
moved by the outcome of an order (RFC 8555 §7.1: an order ends ``valid`` or not)::

    pending ──issued──► valid ──issued (renewal)──► valid
       │                  │
       └──failed──► failed ◄──failed (renewal)──┘
                     ├──failed──► failed (failures + 1, a longer wait)
                     └──issued──► valid

The others are derived from the domain itself, never stored: ``uploaded`` (an uploaded
certificate always wins, ACME never replaces it), ``wildcard`` (HTTP-01 cannot validate a
wildcard name, RFC 8555 §8.3: upload one), ``renewing`` (a valid certificate inside its
renewal window, not yet renewed).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from typing import Any

DAY = 86400.0


class Status(enum.StrEnum):
    PENDING = "pending"
    """Needs a certificate; none obtained yet (or the last one was removed)."""
    VALID = "valid"
    """An ACME certificate is stored and not yet due for renewal."""
    RENEWING = "renewing"
    """An ACME certificate is stored and due: it is renewed at the next pass."""
    FAILED = "failed"
    """The last order failed: waiting for the next attempt (exponential backoff)."""
    UPLOADED = "uploaded"
    """An uploaded certificate covers the domain: ACME leaves it alone."""
    WILDCARD = "wildcard"
    """A wildcard name: HTTP-01 cannot validate it; an operator uploads its certificate."""


class Outcome(enum.Enum):
    ISSUED = "issued"
    FAILED = "failed"


RECORDED = (Status.PENDING, Status.VALID, Status.FAILED)
"""The states the issuer stores; the rest are derived from the domain and its certificate."""

TRANSITIONS: dict[tuple[Status, Outcome], Status] = {
    (Status.PENDING, Outcome.ISSUED): Status.VALID,
    (Status.PENDING, Outcome.FAILED): Status.FAILED,
    (Status.VALID, Outcome.ISSUED): Status.VALID,
    (Status.VALID, Outcome.FAILED): Status.FAILED,
    (Status.FAILED, Outcome.ISSUED): Status.VALID,
    (Status.FAILED, Outcome.FAILED): Status.FAILED,
}

WILDCARD_ERROR = (
    "a wildcard name cannot be validated over HTTP-01: upload its certificate (sixpod cert upload)"
)
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Policy:
    renew_before: float = 30 * DAY
    """Seconds before a certificate's notAfter its renewal starts."""
    backoff_min: float = 60.0
    """Seconds to wait after the first failure; doubled after each further one."""
    backoff_max: float = DAY
    """The longest wait between two attempts, in seconds."""
    jitter: float = 0.25
    """Each wait is spread by up to this share either way, so domains that failed
    together (the CA was down) do not retry together."""

    def __post_init__(self) -> None:
        if not 0 < self.backoff_min <= self.backoff_max:
            raise ValueError("backoff: expected 0 < backoff_min <= backoff_max")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter: expected a share from 0 to below 1")
        if self.renew_before < 0:
            raise ValueError("renew_before: expected seconds >= 0")


@dataclass(frozen=True, slots=True)
class Record:
    """The issuer's record of one domain."""

    status: Status
    error: str = ""
    failures: int = 0
    """Failed orders since the last success."""
    next_attempt: float = 0.0
    """Unix time before which a failed domain is not tried again."""
    not_after: float | None = None
    """The notAfter of the last certificate obtained, Unix time."""
    last_success: float | None = None

    def __post_init__(self) -> None:
        if self.status not in RECORDED:
            raise ValueError(f"record: {self.status} is derived, never stored")
        if self.failures < 0:
            raise ValueError("record: failures must be >= 0")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store knows of one attached domain."""

    domain: str
    cert_source: str | None = None
    """``upload``, ``acme``, or None when no certificate is stored."""
    cert_not_after: float | None = None
    record: Record | None = None

    @property
    def wildcard(self) -> bool:
        return self.domain.startswith("*.")


@dataclass(frozen=True, slots=True)
class Work:
    """One order to place: a first certificate, or the renewal of a stored one."""

    domain: str
    renewal: bool


def backoff(failures: int, rand: float, policy: Policy) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1, 2, ...): backoff_min
    doubled each time up to backoff_max, spread by ``rand`` (uniform in [0, 1))."""
    if failures < 1:
        raise ValueError("backoff: failures counts from 1")
    if not 0 <= rand < 1:
        raise ValueError("backoff: rand must be in [0, 1)")
    base = policy.backoff_min * 2.0 ** min(failures - 1, 60)
    base = min(base, policy.backoff_max)
    spread = 1 + policy.jitter * (2 * rand - 1)
    return min(base * spread, policy.backoff_max)


def status(f: Facts, now: float, policy: Policy) -> Status:
    if f.cert_source == "upload":
        return Status.UPLOADED
    if f.wildcard:
        return Status.WILDCARD
    r = f.record
    if r is not None and r.status is Status.FAILED:
        return Status.FAILED
    if f.cert_not_after is None:
        return Status.PENDING
    if f.cert_not_after - now <= policy.renew_before:
        return Status.RENEWING
    return Status.VALID


def next_attempt(f: Facts, now: float, policy: Policy) -> float | None:
    """When the domain is next ordered: ``now`` when due, None when ACME never orders it."""
    st = status(f, now, policy)
    if st in (Status.UPLOADED, Status.WILDCARD):
        return None
    if st is Status.FAILED:
        assert f.record is not None
        return max(f.record.next_attempt, now)
    if st is Status.VALID:
        assert f.cert_not_after is not None
        return f.cert_not_after - policy.renew_before
    return now


def due(f: Facts, now: float, policy: Policy) -> Work | None:
    at = next_attempt(f, now, policy)
    if at is None or at > now:
        return None
    return Work(f.domain, renewal=f.cert_not_after is not None)


def plan(facts: list[Facts], now: float, policy: Policy) -> list[Work]:
    """The orders due at ``now``, those waiting longest first (first certificates before
    renewals at the same time: a site without one is not served over HTTPS at all)."""
    work = []
    for f in facts:
        w = due(f, now, policy)
        if w is not None:
            waited = now - (f.record.next_attempt if f.record else 0.0)
            work.append((w.renewal, -waited, w.domain, w))
    return [w for *_, w in sorted(work, key=lambda t: t[:3])]


def next_timer(facts: list[Facts], now: float, policy: Policy) -> float | None:
    """The earliest time after ``now`` something becomes due, or None."""
    times = [t for f in facts if (t := next_attempt(f, now, policy)) is not None and t > now]
    return min(times, default=None)


def issued(record: Record | None, now: float, not_after: float) -> Record:
    before = record.status if record else Status.PENDING
    return Record(
        status=TRANSITIONS[(before, Outcome.ISSUED)],
        not_after=not_after,
        last_success=now,
    )


def failed(record: Record | None, now: float, error: str, rand: float, policy: Policy) -> Record:
    record = record or Record(Status.PENDING)
    failures = record.failures + 1
    return replace(
        record,
        status=TRANSITIONS[(record.status, Outcome.FAILED)],
        error=one_line(error),
        failures=failures,
        next_attempt=now + backoff(failures, rand, policy),
    )


def one_line(text: str) -> str:
    """An error as one printable line of at most MAX_ERROR characters."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= MAX_ERROR else flat[: MAX_ERROR - 1] + "…"


def view(f: Facts, now: float, policy: Policy) -> dict[str, Any]:
    """One domain as the API shows it (times as ISO 8601 UTC, like the certificates')."""
    st = status(f, now, policy)
    r = f.record
    error = r.error if r is not None and st is Status.FAILED else ""
    if st is Status.WILDCARD:
        error = WILDCARD_ERROR
    at = next_attempt(f, now, policy)
    return {
        "domain": f.domain,
        "status": st.value,
        "error": error,
        "failures": r.failures if r is not None else 0,
        "next_attempt": iso(at),
        "not_after": iso(f.cert_not_after),
        "source": f.cert_source,
        "last_success": iso(r.last_success if r is not None else None),
    }


def iso(t: float | None) -> str | None:
    """Unix time as ISO 8601 UTC text, to the second; None stays None."""
    if t is None:
        return None
    return dt.datetime.fromtimestamp(int(t), dt.UTC).isoformat()
