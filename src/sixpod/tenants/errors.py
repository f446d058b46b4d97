"""The tenants package's one root exception, split by whose fault it is.

Each error carries its consequence on the wire: the HTTP status of the RFC 9457 problem
the controller answers with, and a short problem type.
"""

from __future__ import annotations

from sixpod.errors import SixpodError


class TenantError(SixpodError):
    """Root of every error the tenants package raises on purpose (exit code 1)."""

    status = 500
    kind = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(TenantError):
    """The operator's fault: ``controller.yaml`` cannot be used (never on the wire)."""

    kind = "config"


class InvalidInput(TenantError):
    """The request names something malformed (a hostname, an address, a weight)."""

    status = 422
    kind = "invalid"


class NotFound(TenantError):
    status = 404
    kind = "not-found"


class Conflict(TenantError):
    """The request contradicts the current state (a domain owned by another app, ...)."""

    status = 409
    kind = "conflict"


class PreconditionFailed(TenantError):
    """``If-Match`` named a revision that is no longer current."""

    status = 412
    kind = "precondition-failed"


class ChurnGuardTripped(TenantError):
    """The change would remove too many endpoints at once; retry with ``force``."""

    status = 409
    kind = "churn-guard"


class Unavailable(TenantError):
    """A dependency (the database, Redis) cannot be reached; nothing was changed."""

    status = 503
    kind = "unavailable"


class Fenced(TenantError):
    """Another publisher holds a newer fencing token: this one must stop publishing."""

    status = 503
    kind = "fenced"
