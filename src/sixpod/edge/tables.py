"""Pure core of the edge agent: tenant state and changes to admin batches for nginx.

An app's entry is its routable endpoints as text, one per line, ``[v6] port weight``
(brackets and port already normalised, so the Lua hot path does no string work);
``draining`` and ``down`` endpoints and zero weights are left out. An app with no routable
endpoint keeps an empty entry (nginx answers 503); an app that is gone is ``None`` (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sixpod import addr
from sixpod.tenants.model import Changed, EndpointState
from sixpod.tenants.reader import TenantState

Batch = dict[str, Any]


def app_entry(state: TenantState, app: str) -> str | None:
    if app not in state.apps:
        return None
    lines = []
    for e in sorted(state.upstreams(app), key=lambda e: (e.address, e.port)):
        if e.state is EndpointState.UP and e.weight > 0:
            lines.append(f"[{addr.format_ip(e.address)}] {e.port} {e.weight}\n")
    return "".join(lines)


def delta(state: TenantState, changed: Changed, generation: str) -> Batch:
    """The batch that brings nginx from the previous revision to ``changed.revision``."""
    return {
        "generation": generation,
        "revision": changed.revision,
        "apps": {a: app_entry(state, a) for a in changed.apps},
        "hosts": {h: state.domains.get(h) for h in changed.domains},
    }


def full(state: TenantState, generation: str, chunk: int) -> Iterator[Batch]:
    """The whole state in batches of ``chunk`` apps (with their hosts); the first empties
    nginx's tables and the last marks it ready."""
    by_app: dict[str, list[str]] = {}
    for host, app in state.domains.items():
        by_app.setdefault(app, []).append(host)
    names = sorted(state.apps)
    first = True
    for i in range(0, max(len(names), 1), chunk):
        part = names[i : i + chunk]
        batch: Batch = {
            "generation": generation,
            "apps": {a: app_entry(state, a) for a in part},
            "hosts": {h: a for a in part for h in by_app.get(a, [])},
        }
        if first:
            batch["full_start"] = True
            first = False
        yield batch
    yield {"generation": generation, "revision": state.revision, "ready": True}
