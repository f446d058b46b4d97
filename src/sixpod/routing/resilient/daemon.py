"""The helper's loop: read FRR and the kernel, plan, apply; again on route events or interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sixpod.routing.resilient.config import TorResilientConfig
from sixpod.routing.resilient.errors import ResilientError
from sixpod.routing.resilient.frr import decode_frr_routes
from sixpod.routing.resilient.model import FrrView, KernelState, Op, Plan, Settings
from sixpod.routing.resilient.plan import plan

__all__ = [
    "FrrReader",
    "KernelPort",
    "SyncResult",
    "run",
    "sync",
]


class FrrReader(Protocol):
    def read(self) -> tuple[object, object]:
        """Decoded ``show ip route json`` and ``show ipv6 route json``."""
        ...


class KernelPort(Protocol):
    def read(self, settings: Settings) -> KernelState: ...

    def apply(self, ops: Sequence[Op]) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One sync: FRR's view, the plan, and whether its operations were applied."""

    view: FrrView
    plan: Plan
    applied: bool

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.plan.ops

    @property
    def changed(self) -> bool:
        return self.applied and bool(self.plan.ops)


def sync(
    settings: Settings, *, frr: FrrReader, kernel: KernelPort, dry_run: bool = False
) -> SyncResult:
    """Read FRR, read the kernel, plan, apply. Nothing is applied if a read fails."""
    doc4, doc6 = frr.read()
    view = decode_frr_routes(doc4, doc6, settings.vips)
    state = kernel.read(settings)
    result = plan(view.paths, state, settings)
    if result.ops and not dry_run:
        kernel.apply(result.ops)
    return SyncResult(view=view, plan=result, applied=bool(result.ops) and not dry_run)


class _Waiter(Protocol):
    def wait(self, timeout: float) -> bool: ...


def run(
    config: TorResilientConfig,
    *,
    frr: FrrReader,
    kernel: KernelPort,
    stop: threading.Event,
    events: _Waiter | None = None,
    on_result: Callable[[SyncResult | ResilientError], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Sync until ``stop`` is set; return the number of syncs.

    A full sync runs every ``config.interval`` s, and at once (after ``config.settle`` s to
    gather the burst) when ``events`` reports a route change. Errors of this package are
    passed to ``on_result`` and retried at the next sync; the kernel keeps its last state.
    """
    settings = config.settings()
    count = 0
    while not stop.is_set():
        try:
            result: SyncResult | ResilientError = sync(settings, frr=frr, kernel=kernel)
        except ResilientError as e:
            result = e
        count += 1
        if on_result is not None:
            on_result(result)
        deadline = clock() + config.interval
        while not stop.is_set():
            left = deadline - clock()
            if left <= 0:
                break
            if events is None:
                stop.wait(left)
                continue
            try:
                if events.wait(min(left, 0.5)):
                    if config.settle:
                        events.wait(config.settle)
                    break
            except ResilientError as e:
                if on_result is not None:
                    on_result(e)
                stop.wait(left)
                break
    return count
