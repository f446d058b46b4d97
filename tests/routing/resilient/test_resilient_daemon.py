"""``sync`` and the daemon loop, with a fake FRR and the fake kernel."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import pytest

from resilientkit import (
    PROTO,
    SETTINGS,
    V4,
    V6,
    FakeKernel,
    N,
    converge,
    nodes,
)
from sixpod.routing.resilient.config import TorResilientConfig
from sixpod.routing.resilient.daemon import SyncResult, run, sync
from sixpod.routing.resilient.errors import ParseError, ResilientError
from sixpod.routing.resilient.frr import format_frr_routes
from sixpod.routing.resilient.model import (
    GROUP_BASE,
    DelNexthop,
    ReplaceGroup,
)
from sixpod.routing.resilient.plan import member_hint


@dataclass
class FakeFrr:
    docs: list[tuple[str, str]]
    reads: int = 0

    def read(self) -> tuple[object, object]:
        text4, text6 = self.docs[min(self.reads, len(self.docs) - 1)]
        self.reads += 1
        return json.loads(text4), json.loads(text6)


def test_sync_applies_then_has_nothing_to_do() -> None:
    kernel = FakeKernel()
    frr = FakeFrr([format_frr_routes({V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)})])
    first = sync(SETTINGS, frr=frr, kernel=kernel)
    assert first.changed
    assert first.applied
    assert first.view.paths[V4] == nodes(1, 2, 3)
    second = sync(SETTINGS, frr=frr, kernel=kernel)
    assert not second.changed
    assert second.ops == ()
    dry = sync(SETTINGS, frr=FakeFrr([format_frr_routes({})]), kernel=kernel, dry_run=True)
    assert dry.ops
    assert not dry.applied
    assert not dry.changed
    assert kernel.route_group(V4) == GROUP_BASE


def test_sync_changes_nothing_when_frr_output_is_bad() -> None:
    kernel = FakeKernel()
    converge(kernel, {V4: nodes(1)})
    before = kernel.show()

    class Broken:
        def read(self) -> tuple[object, object]:
            return {"203.0.113.10/32": "garbage"}, {}

    with pytest.raises(ParseError):
        sync(SETTINGS, frr=Broken(), kernel=kernel)
    assert kernel.show() == before


class FakeEvents:
    """Reports a route change on every other wait."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        return self.waits % 2 == 1


def test_run_loop_syncs_reports_errors_and_stops() -> None:
    cfg = TorResilientConfig(vips=(V4, V6), interval=5.0)
    frr = FakeFrr(
        [
            format_frr_routes({V4: nodes(1, 2, 3), V6: nodes(1, 2, 3)}),
            ("not json", "{}"),
            format_frr_routes({V4: nodes(1, 2), V6: nodes(1, 2)}),
        ]
    )

    class JsonFrr(FakeFrr):
        def read(self) -> tuple[object, object]:
            text4, text6 = self.docs[min(self.reads, len(self.docs) - 1)]
            self.reads += 1
            try:
                return json.loads(text4), json.loads(text6)
            except ValueError:
                raise ParseError("not JSON") from None

    frr = JsonFrr(frr.docs)
    kernel = FakeKernel()
    stop = threading.Event()
    results: list[SyncResult | ResilientError] = []

    def on_result(r: SyncResult | ResilientError) -> None:
        results.append(r)
        if len(results) == 4:
            stop.set()

    count = run(cfg, frr=frr, kernel=kernel, stop=stop, events=FakeEvents(), on_result=on_result)
    assert count == 4
    assert isinstance(results[0], SyncResult)
    assert results[0].changed
    assert isinstance(results[1], ParseError)
    assert isinstance(results[2], SyncResult)
    assert results[2].ops == (
        ReplaceGroup(
            GROUP_BASE,
            tuple(sorted(member_hint(N[i]) for i in (1, 2))),
            cfg.settings().group,
            PROTO,
        ),
        DelNexthop(member_hint(N[3])),
    )
    assert isinstance(results[3], SyncResult)
    assert not results[3].changed


def test_run_loop_without_events_waits_on_the_stop_event() -> None:
    cfg = TorResilientConfig(vips=(V4,), interval=0.05)
    stop = threading.Event()
    results: list[SyncResult | ResilientError] = []

    def on_result(r: SyncResult | ResilientError) -> None:
        results.append(r)
        if len(results) == 3:
            stop.set()

    frr = FakeFrr([format_frr_routes({V4: nodes(1)})])
    assert run(cfg, frr=frr, kernel=FakeKernel(), stop=stop, on_result=on_result) == 3
