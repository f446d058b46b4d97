"""Pure core of the edge agent: tenant state and changes to admin batches for nginx.

An app's entry is its routable endpoints as text, one per line, ``[v6] port weight``
(brackets and port already normalised, so the Lua hot path does no string work), after
optional settings lines: ``=body BYTES`` (the app's ``max_body_bytes`` setting),
``=redirect`` (``https_redirect``: plain HTTP gets a 308 to HTTPS) and ``=hsts SECONDS``
(``hsts_max_age``);
``draining`` and ``down`` endpoints and zero weights are left out. An app with no routable
endpoint keeps an entry with no endpoint (nginx answers 503); an app that is gone is
``None`` (404).

A full push is a ``begin`` batch, batches of ``chunk`` apps, and a ``commit``: nginx fills
its inactive slot and switches to it only at the commit, so requests never see a half-loaded
state. A delta goes to the active slot, split in the same chunks; only its last batch moves
the revision.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sixpod import addr
from sixpod.tenants.model import (
    BODY_LIMIT_SETTING,
    HSTS_SETTING,
    HTTPS_REDIRECT_SETTING,
    Changed,
    EndpointState,
)
from sixpod.tenants.reader import TenantState

Batch = dict[str, Any]


def _positive(settings: Mapping[str, Any], name: str) -> int | None:
    value = settings.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def app_entry(state: TenantState, app: str) -> str | None:
    record = state.apps.get(app)
    if record is None:
        return None
    lines = []
    limit = _positive(record.settings, BODY_LIMIT_SETTING)
    if limit is not None:
        lines.append(f"=body {limit}\n")
    if record.settings.get(HTTPS_REDIRECT_SETTING) is True:
        lines.append("=redirect\n")
    hsts = record.settings.get(HSTS_SETTING)
    if isinstance(hsts, int) and not isinstance(hsts, bool) and hsts >= 0:
        lines.append(f"=hsts {hsts}\n")  # 0 too: how a site withdraws HSTS (RFC 6797)
    for e in sorted(state.upstreams(app), key=lambda e: (e.address, e.port)):
        if e.state is EndpointState.UP and e.weight > 0:
            lines.append(f"[{addr.format_ip(e.address)}] {e.port} {e.weight}\n")
    return "".join(lines)


def delta(state: TenantState, changed: Changed, generation: str, chunk: int) -> Iterator[Batch]:
    """The batches that bring nginx from the previous revision to ``changed.revision``: apps
    added or changed first, then hosts, then apps removed, so that even across batches no
    host names an app nginx does not have yet."""
    entries = {a: app_entry(state, a) for a in sorted(changed.apps)}
    steps: list[tuple[str, str, str | None]] = [
        ("apps", a, e) for a, e in entries.items() if e is not None
    ]
    steps += [("hosts", h, state.domains.get(h)) for h in sorted(changed.domains)]
    steps += [("apps", a, None) for a, e in entries.items() if e is None]
    for i in range(0, max(len(steps), 1), chunk):
        batch: Batch = {"generation": generation, "apps": {}, "hosts": {}}
        for kind, key, value in steps[i : i + chunk]:
            batch[kind][key] = value
        if i + chunk >= len(steps):
            batch["revision"] = changed.revision
        yield batch


def full(state: TenantState, generation: str, chunk: int) -> Iterator[Batch]:
    """The whole state in batches of ``chunk`` apps (with their hosts): the first begins a
    new generation in nginx's inactive slot, the last commits it at ``state.revision``."""
    revision = state.revision
    by_app: dict[str, list[str]] = {}
    for host, app in state.domains.items():
        by_app.setdefault(app, []).append(host)
    names = sorted(state.apps)
    yield {"generation": generation, "begin": True}
    for i in range(0, len(names), chunk):
        part = names[i : i + chunk]
        yield {
            "generation": generation,
            "apps": {a: app_entry(state, a) for a in part},
            "hosts": {h: a for a in part for h in by_app.get(a, [])},
        }
    yield {"generation": generation, "commit": True, "revision": revision}
