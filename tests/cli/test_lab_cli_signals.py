"""`sixpod lab up` turns SIGTERM and SIGHUP into its cleanup, in its own process only: a
helper forked from it (pyroute2 opens a socket inside a namespace from one, and stops it with
SIGTERM) exits at once and never removes the pod the parent is building."""

from __future__ import annotations

import os
import signal

import pytest

from sixpod.cli.lab import interrupt_handler


def test_the_signal_ends_the_command_through_its_cleanup() -> None:
    handler = interrupt_handler()
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        handler(signal.SIGTERM, None)


def test_a_forked_helper_exits_without_running_the_cleanup() -> None:
    handler = interrupt_handler()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            handler(signal.SIGTERM, None)
        except BaseException:
            os._exit(1)  # it would have unwound into the parent's cleanup
        os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM
