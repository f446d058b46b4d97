"""The one root exception of Razor, split by whose fault it is, carrying its DNS rcode."""

from __future__ import annotations

from sixpod.errors import SixpodError

# Response codes (RFC 1035 4.1.1, RFC 6891 9 for the extended ones).
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16


class RazorError(SixpodError):
    """Root of every error Razor raises; ``rcode`` is what the wire says about it."""

    rcode: int = SERVFAIL
    exit_code: int = 1

    def __init__(self, message: str, rcode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if rcode is not None:
            self.rcode = rcode


class QueryError(RazorError):
    """The client's fault: a query Razor answers with an error rcode (FORMERR, NOTIMP...).
    ``edns``: the query's OPT record was found and framed right (the fault is inside it, or
    its version), so the reply carries Razor's OPT record (RFC 6891 6.1.1)."""

    rcode = FORMERR

    def __init__(self, message: str, rcode: int | None = None, *, edns: bool = False) -> None:
        super().__init__(message, rcode)
        self.edns = edns


class Unanswerable(RazorError):
    """The client's fault, and no answer at all is right: a response, or too short for an id."""


class ConfigError(RazorError):
    """The operator's fault: a config, lock or state file that cannot be used. Exit 1.
    A bad ``razor.yaml`` names each problem's ``FILE:LINE:COL`` in ``diagnostics``."""


class ControllerError(RazorError):
    """The controller refused or failed a change (its HTTP status in the message). Exit 1."""


class ControllerUnreachable(ControllerError):
    """The controller could not be reached at all. Exit 1."""
