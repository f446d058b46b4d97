"""The ACME adapter: obtains and renews certificates with HTTP-01, through the store.

The policy (who needs a certificate, when, how failures back off) is
:mod:`sixpod.tenants.issuance`; this module places the orders with the ``acme`` library
(certbot's), one domain at a time in a thread of the controller. A challenge reaches every
edge as published state: the issuer stores it, waits until Redis holds that revision (and a
short propagation delay for the replicas), and only then tells the CA to validate. Every
foreign error (the CA's, the network's, the store's) ends that domain's order only: it is
recorded with a backoff and the next domain is ordered.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import josepy
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC
from prometheus_client import CollectorRegistry, Counter, Gauge

from sixpod import __version__
from sixpod.errors import map_exceptions
from sixpod.tenants import issuance
from sixpod.tenants.errors import NotFound, TenantError
from sixpod.tenants.store import Store

log = logging.getLogger(__name__)


class IssueError(TenantError):
    """One order failed: the CA refused, the challenge was invalid, a step timed out, or
    the CA or the store could not be reached. Recorded for the domain, never raised out of
    the loop."""

    status = 502
    kind = "acme"

    def __init__(self, detail: str, *, unreachable: bool = False) -> None:
        super().__init__(detail)
        self.unreachable = unreachable
        """The CA could not be reached at all: every other order would fail the same way."""


@dataclass(frozen=True, slots=True)
class IssuerSettings:
    directory: str
    """The CA's ACME directory URL (RFC 8555 §7.1.1)."""
    account_key: Path
    """PEM file of the account's EC P-256 key; created (0600) when missing."""
    contact: str | None = None
    """An e-mail address the CA may write to about the account."""
    ca_bundle: Path | None = None
    """PEM file of the CAs to trust for the directory's HTTPS (a test CA); None: the system's."""
    policy: issuance.Policy = field(default_factory=issuance.Policy)
    check_interval: float = 60.0
    """Seconds between two passes over the domains when nothing is due sooner."""
    propagation_delay: float = 2.0
    """Seconds to wait, once Redis holds a challenge, for the replicas on every edge."""
    publish_timeout: float = 30.0
    """Seconds a challenge may take to reach Redis before the order is abandoned."""
    order_timeout: float = 90.0
    """Seconds the CA may take to validate and issue."""
    network_timeout: float = 30.0
    """Seconds for one HTTP request to the CA."""


class IssuerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.issued = Counter(
            "sixpod_acme_issued", "First certificates obtained from the CA", registry=registry
        )
        self.renewed = Counter(
            "sixpod_acme_renewed", "Certificates renewed from the CA", registry=registry
        )
        self.failures = Counter(
            "sixpod_acme_failures", "Orders that failed (each is backed off)", registry=registry
        )
        self.backoff = Gauge(
            "sixpod_acme_domains_in_backoff",
            "Domains whose last order failed, waiting for the next attempt",
            registry=registry,
        )
        self.soonest = Gauge(
            "sixpod_acme_soonest_expiry_timestamp_seconds",
            "The earliest notAfter of the certificates of attached domains (Unix time; 0: none)",
            registry=registry,
        )
        self.last_pass = Gauge(
            "sixpod_acme_last_pass_timestamp_seconds",
            "When the issuer last went over every domain (Unix time)",
            registry=registry,
        )


def load_account_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The ACME account key at ``path``, made (EC P-256, mode 0600) when the file is missing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path}: the ACME account key must be an EC P-256 key") from None
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    with os.fdopen(fd, "wb") as f:
        f.write(_pem(key))
    log.info("acme: made a new account key in %s", path)
    return key


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Issuer:
    """Orders certificates for the store's domains. :meth:`tick` is one pass; :meth:`run`
    repeats it in a thread until stopped."""

    def __init__(
        self,
        store: Store,
        settings: IssuerSettings,
        *,
        published: Callable[[], int],
        active: Callable[[], bool] = lambda: True,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.published = published
        """The last revision Redis holds (what the edges' replicas follow)."""
        self.active = active
        """Whether this controller orders (the publisher lease holder does: one per pod)."""
        self.clock = clock
        self.rand = rand
        self.sleep = sleep
        self.metrics = IssuerMetrics(registry or CollectorRegistry())
        self.wake = threading.Event()
        self.last_error: str | None = None
        self._key = load_account_key(settings.account_key)
        self._client: client.ClientV2 | None = None

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Pass over the domains until ``stop`` is set; no error ends the loop."""
        while not stop.is_set():
            wait = self.settings.check_interval
            try:
                if self.active():
                    at = self.tick(stop)
                    if at is not None:
                        wait = min(wait, max(at - self.clock(), 1.0))
                self.last_error = None
            except TenantError as e:  # the store is unreachable: retried at the next pass
                self.last_error = e.detail
                log.warning("acme: %s", e.detail)
            except Exception:
                self.last_error = "unexpected error (logged)"
                log.exception("acme: unexpected error; retrying")
            self.wake.wait(wait)
            self.wake.clear()

    def tick(self, stop: threading.Event | None = None) -> float | None:
        """One pass: order every domain that is due, each on its own, until ``stop`` is set
        or this controller stops being the one that orders. When the next one is due (Unix
        time), or None."""
        s = self.settings
        now = self.clock()
        self.store.prune_acme(
            challenges_before=now - 2 * (s.order_timeout + s.publish_timeout + 60)
        )
        down: IssueError | None = None
        skipped = 0
        for work in issuance.plan(self.store.acme_facts(), now, s.policy):
            if (stop is not None and stop.is_set()) or not self.active():
                break
            if down is not None:
                skipped += 1
            down = self.order(work, down)
        if skipped:
            log.warning("acme: the CA is unreachable: %d more orders backed off", skipped)
        facts = self.store.acme_facts()
        now = self.clock()
        self._measure(facts, now)
        return issuance.next_timer(facts, now, s.policy)

    def _measure(self, facts: list[issuance.Facts], now: float) -> None:
        m = self.metrics
        m.backoff.set(
            sum(
                1
                for f in facts
                if issuance.status(f, now, self.settings.policy) is issuance.Status.FAILED
            )
        )
        expiries = [f.cert_not_after for f in facts if f.cert_not_after is not None]
        m.soonest.set(min(expiries, default=0.0))
        m.last_pass.set(now)

    # -- one order ------------------------------------------------------------------------

    def order(self, work: issuance.Work, down: IssueError | None = None) -> IssueError | None:
        """Order ``work.domain``'s certificate and record the outcome. ``down``: the CA was
        found unreachable earlier in this pass, so the domain fails the same way without
        waiting for its own timeouts. The error when the CA is unreachable, else None."""
        try:
            facts = self.store.acme_domain(work.domain)
        except NotFound:  # detached since the pass began
            return down
        if issuance.due(facts, self.clock(), self.settings.policy) is None:
            return down
        try:
            if down is not None:
                raise down
            try:
                not_after = self._obtain(work.domain)
            except (IssueError, TenantError):
                raise
            except Exception as e:  # one domain's surprise never ends the pass for the rest
                log.exception("acme: %s: unexpected error in the order", work.domain)
                raise IssueError(f"unexpected error (logged): {type(e).__name__}: {e}") from None
        except IssueError as e:
            record = issuance.failed(
                facts.record, self.clock(), e.detail, self.rand(), self.settings.policy
            )
            self.store.record_acme(work.domain, record)
            self.metrics.failures.inc()
            if down is None:  # the domains failed by the same outage are counted, not logged
                log.warning(
                    "acme: %s: %s (failure %d; next attempt in %.0f s)",
                    work.domain,
                    record.error,
                    record.failures,
                    record.next_attempt - self.clock(),
                )
            return e if e.unreachable else None
        record = issuance.issued(facts.record, self.clock(), not_after)
        self.store.record_acme(work.domain, record)
        (self.metrics.renewed if work.renewal else self.metrics.issued).inc()
        log.info(
            "acme: %s: %s a certificate valid until %s",
            work.domain,
            "renewed" if work.renewal else "obtained",
            dt.datetime.fromtimestamp(not_after, dt.UTC).isoformat(),
        )
        return None

    def _obtain(self, domain: str) -> float:
        """Run one order for ``domain`` and store its certificate; its notAfter."""
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = _pem(key)
        tokens: list[str] = []
        try:
            with _translated("the CA"), self._account_checked():
                acme = self._acme()
                orderr = acme.new_order(crypto_util.make_csr(key_pem, [domain]))
                answers = []
                for authzr in orderr.authorizations:
                    if authzr.body.status == messages.STATUS_VALID:
                        continue  # the CA reuses a recent validation
                    challb = _http01(authzr)
                    response, validation = challb.response_and_validation(acme.net.key)
                    token = challb.chall.encode("token")
                    tokens.append(token)
                    revision = self.store.put_challenge(token, validation, domain=domain)
                    answers.append((challb, response, revision))
                if answers:
                    self._wait_published(max(r for *_, r in answers))
                for challb, response, _ in answers:
                    acme.answer_challenge(challb, response)
                deadline = dt.datetime.now() + dt.timedelta(seconds=self.settings.order_timeout)
                orderr = acme.poll_and_finalize(orderr, deadline)
            try:
                stored = self.store.put_cert(
                    domain, orderr.fullchain_pem, key_pem.decode(), source="acme"
                )
            except TenantError as e:
                raise IssueError(f"storing the certificate: {e.detail}") from None
        finally:
            for token in tokens:
                try:
                    self.store.delete_challenge(token)
                except TenantError as e:  # pruned at a later pass
                    log.warning("acme: %s: withdrawing a challenge: %s", domain, e.detail)
        return stored.not_after.timestamp()

    @contextmanager
    def _account_checked(self) -> Iterator[None]:
        """A CA that no longer knows the account (or could not be reached): register again
        at the next order."""
        try:
            yield
        except messages.Error as e:
            if e.code == "accountDoesNotExist":
                self._client = None
            raise
        except requests.RequestException:
            self._client = None
            raise

    def _wait_published(self, revision: int) -> None:
        s = self.settings
        deadline = time.monotonic() + s.publish_timeout
        while True:
            try:
                at = self.published()
            except TenantError as e:
                raise IssueError(f"publishing the challenge: {e.detail}") from None
            if at >= revision:
                break
            if time.monotonic() > deadline:
                raise IssueError(
                    f"the challenge was not published within {s.publish_timeout:g} s "
                    f"(Redis is at revision {at}, the challenge at {revision}): is the "
                    "publisher running?"
                )
            self.sleep(0.05)
        self.sleep(s.propagation_delay)

    def _acme(self) -> client.ClientV2:
        """The CA's client, its account registered (or found again) on first use."""
        if self._client is not None:
            return self._client
        s = self.settings
        jwk = JWKEC(key=self._key)
        net = client.ClientNetwork(
            jwk,
            alg=ES256,
            user_agent=f"sixpod/{__version__}",
            timeout=int(s.network_timeout),
        )
        if s.ca_bundle is not None:
            net.verify_ssl = str(s.ca_bundle)  # type: ignore[assignment]  # requests' verify
        directory = client.ClientV2.get_directory(s.directory, net)
        acme = client.ClientV2(directory, net)
        contact = (f"mailto:{s.contact}",) if s.contact else ()
        registration = messages.NewRegistration(contact=contact, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as e:  # this key's account exists: use it
            net.account = messages.RegistrationResource(
                uri=e.location, body=messages.Registration()
            )
        self._client = acme
        return acme


def _http01(authzr: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challb in authzr.body.challenges:
        if isinstance(challb.chall, challenges.HTTP01):
            return challb
    name = authzr.body.identifier.value
    raise IssueError(f"the CA offers no HTTP-01 challenge for {name}")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Foreign errors of one order, as :class:`IssueError` (translated once, here)."""
    with map_exceptions(
        {
            IssueError: None,
            TenantError: lambda e: IssueError(e.detail),
            errors.ValidationError: lambda e: IssueError(f"the challenge failed: {_validation(e)}"),
            errors.TimeoutError: lambda e: IssueError(f"{what} did not validate and issue in time"),
            messages.Error: lambda e: IssueError(f"{what} refused: {e}"),
            (requests.ConnectionError, requests.Timeout): lambda e: IssueError(
                f"{what} unreachable: {_reason(e)}", unreachable=True
            ),
            requests.RequestException: lambda e: IssueError(f"{what}: {_reason(e)}"),
            (errors.Error, josepy.errors.Error, ValueError, OSError): lambda e: IssueError(
                f"{what}: {type(e).__name__}: {e}"
            ),
        }
    ):
        yield


def _validation(exc: errors.ValidationError) -> str:
    problems = []
    for authzr in exc.failed_authzrs:
        for challb in authzr.body.challenges:
            if challb.error is not None:
                problems.append(f"{authzr.body.identifier.value}: {challb.error}")
    return "; ".join(problems) or "no detail from the CA"


def _reason(exc: requests.RequestException) -> str:
    """The innermost reason of a requests error, without urllib3's object reprs."""
    inner: BaseException = exc
    while inner.__context__ is not None and not isinstance(inner, OSError | ValueError):
        inner = inner.__context__
    text = str(inner)
    if "Failed to establish a new connection" in text or isinstance(exc, requests.ConnectionError):
        url = str(exc.request.url or "") if exc.request is not None else ""
        kind = "connection refused" if "refused" in str(exc).lower() else "connection failed"
        return f"{kind} ({url})" if url else kind
    return text
