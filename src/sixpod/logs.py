"""The one logging setup of sixpod's daemons (announcer, edge agent, Razor, controller,
tor-resilient, the lab's helpers): every line on stderr starts with an RFC 3339 UTC timestamp
to the millisecond and the daemon's name, so interleaved logs (the lab's, a journal without
its own stamps) sort and compare across processes.

``2026-12-04T01:55:28.123Z announcer edge1 WARNING sixpod.announcer: BGP session down``

A record of several lines (a traceback) stamps every line, the later ones marked ``|``.
Python warnings and uncaught exceptions go through the same handler, so nothing a daemon
writes to stderr by itself is left without a stamp.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType

__all__ = ["Formatter", "setup"]

QUIET = ("httpx", "httpcore")  # their INFO lines are one per request


class Formatter(logging.Formatter):
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def converter(self, secs: float | None) -> time.struct_time:
        return time.gmtime(secs)  # UTC: lines from every machine and namespace compare

    def __init__(self, daemon: str) -> None:
        super().__init__(f"%(asctime)s {daemon} %(levelname)s %(name)s: %(message)s")
        self.daemon = daemon

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if "\n" not in text:
            return text
        first, *rest = text.split("\n")
        prefix = f"{self.formatTime(record)} {self.daemon} | "
        return "\n".join([first, *(prefix + line for line in rest)])


def setup(daemon: str, *, level: int = logging.INFO) -> None:
    """Send every log record of this process to stderr, stamped; replaces earlier handlers
    (a later ``logging.basicConfig`` is then a no-op)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter(daemon))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    log = logging.getLogger(f"sixpod.{daemon.split(maxsplit=1)[0]}")

    def uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.critical("uncaught exception, exiting", exc_info=(kind, exc, tb))

    sys.excepthook = uncaught

    def uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        exc = (args.exc_type, args.exc_value, args.exc_traceback)
        log.critical("uncaught exception in thread %s", name, exc_info=exc)  # type: ignore[arg-type]

    threading.excepthook = uncaught_in_thread
