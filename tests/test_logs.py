"""The one logging setup of sixpod's daemons: every line starts with a UTC timestamp."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sixpod import logs

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hook, thread_hook = sys.excepthook, threading.excepthook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook = hook
    threading.excepthook = thread_hook
    logging.captureWarnings(False)


def test_every_line_of_a_record_carries_the_timestamp_and_the_daemon() -> None:
    formatter = logs.Formatter("announcer edge1")
    record = logging.LogRecord("sixpod.x", logging.WARNING, __file__, 1, "one\ntwo", None, None)
    record.created, record.msecs = 0.25, 250.0
    assert formatter.format(record) == (
        "1970-01-01T00:00:00.250Z announcer edge1 WARNING sixpod.x: one\n"
        "1970-01-01T00:00:00.250Z announcer edge1 | two"
    )


def test_a_daemon_process_stamps_its_logs_warnings_and_uncaught_exceptions() -> None:
    program = (
        "import logging, warnings\n"
        "from sixpod import logs\n"
        "logs.setup('probe')\n"
        "logging.basicConfig(format='%(message)s')  # a daemon's own call changes nothing\n"
        "logging.getLogger('sixpod.probe').info('ready')\n"
        "logging.getLogger('httpx').info('quiet: below WARNING')\n"
        "warnings.warn('old')\n"
        "import threading\n"
        "t = threading.Thread(target=lambda: 1 / 0, name='worker'); t.start(); t.join()\n"
        "raise SystemError('boom')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src")},
        check=False,
        timeout=30,
    )
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines, r.stderr
    assert all(STAMP.match(line) for line in lines), r.stderr
    assert "probe INFO sixpod.probe: ready" in lines[0]
    assert "quiet" not in r.stderr
    assert any("UserWarning: old" in line for line in lines)
    assert any("SystemError: boom" in line for line in lines)
    assert any("uncaught exception in thread worker" in line for line in lines)
    assert any("ZeroDivisionError" in line for line in lines)


def test_setup_replaces_earlier_handlers(restored: None) -> None:
    logging.basicConfig(format="%(message)s")
    logs.setup("probe")
    assert len(logging.getLogger().handlers) == 1
    assert isinstance(logging.getLogger().handlers[0].formatter, logs.Formatter)
