"""The pod status page: one HTML document the controller serves at ``/status``.

No build step and no external assets: the page is written here, with its style inline (the
Content-Security-Policy forbids anything else, scripts included), and refreshes itself
every :data:`REFRESH` seconds with a ``<meta http-equiv="refresh">``. It is laid out for a
phone first: one column, tables that scroll sideways inside their own box.

Authentication is the API token: ``Authorization: Bearer TOKEN`` (scripts), or HTTP Basic
with any user name and the token as the password, which a browser asks for once and resends
on every refresh (RFC 7617). A request without either is a 401 that asks for Basic.

:func:`render` is pure (a :class:`Snapshot` and the time in, HTML out); :func:`snapshot`
reads the store and the publisher; :func:`mount` adds the route to the API's app.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from sixpod import addr
from sixpod.tenants import ops
from sixpod.tenants.model import NodeRecord, VipRecord
from sixpod.tenants.schema import apps_t, endpoints_t

if TYPE_CHECKING:
    from fastapi import FastAPI

    from sixpod.tenants.outbox import OutboxRow
    from sixpod.tenants.store import Store

__all__ = ["PATH", "REFRESH", "Snapshot", "authorized", "mount", "render", "snapshot"]

PATH = "/status"
REFRESH = 10
"""Seconds between two loads of the page by the browser."""
APPS_SHOWN = 50
CHANGES_SHOWN = 20
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the page shows, read at one moment."""

    head: int
    """The store's last revision."""
    publisher: Mapping[str, Any] | None
    """:meth:`sixpod.tenants.publisher.Publisher.status`; None when none runs here."""
    oldest_unpublished: float | None
    """Commit time (Unix) of the oldest change Redis does not have yet; None: none."""
    nodes: Sequence[NodeRecord]
    vips: Sequence[VipRecord]
    apps: Sequence[tuple[str, str, int]]
    """(name, owner, endpoints) of the first :data:`APPS_SHOWN` apps by name."""
    app_count: int
    endpoint_count: int
    changes: Sequence[OutboxRow] = field(default_factory=tuple)
    """The last changes, newest first."""
    pod: str = ""


# -- the page (pure) ---------------------------------------------------------------------

STYLE = """
:root{color-scheme:light dark;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--line:#8884}
*{box-sizing:border-box}
body{margin:0;padding:12px;font:15px/1.4 system-ui,sans-serif;max-width:960px;margin:auto}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.05em;margin:1.2em 0 .4em}
.sum{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px}
.card{border:1px solid var(--line);border-radius:8px;padding:8px}
.card b{display:block;font-size:1.4em}
.box{overflow-x:auto;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:.93em}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td.wrap{white-space:normal;word-break:break-word;min-width:10em}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
.mono{font-family:ui-monospace,monospace}small{opacity:.75}
"""

_STATE_CLASS = {
    "active": "ok",
    "up": "ok",
    "drained": "warn",
    "draining": "warn",
    "disabled": "bad",
    "blackholed": "bad",
    "down": "bad",
}


def _state(state: str) -> str:
    return f'<span class="{_STATE_CLASS.get(state, "")}">{escape(state)}</span>'


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return f"<p><small>{escape(empty)}</small></p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return (
        f'<div class="box"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def _td(text: object, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{escape(str(text))}</td>"


def _change(op: ops.Op) -> str:
    """One line for an outbox operation: its kind, then what it names."""
    parts = [op.KIND, *ops.identity(op)[1:]]
    state = getattr(op, "state", None)  # a VIP's or a node's new state
    if state is not None:
        parts.append(f"-> {state}")
    return " ".join(str(p) for p in parts)


def _card(label: str, value: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f'<div class="card"><small>{escape(label)}</small><b{attr}>{value}</b></div>'


def render(snap: Snapshot, now: float) -> str:
    """The whole page for ``snap`` at Unix time ``now``."""
    pub = snap.publisher
    published = int(pub.get("published") or 0) if pub else None
    behind = snap.head - published if published is not None else None
    lag = now - snap.oldest_unpublished if snap.oldest_unpublished is not None else 0.0
    if pub is None:
        pub_text, pub_cls = "not here", "warn"
    elif pub.get("guard"):
        pub_text, pub_cls = "guard holding", "bad"
    elif pub.get("active"):
        pub_text, pub_cls = "active", "ok"
    else:
        pub_text, pub_cls = "standby", "warn"
    vip_states: dict[str, int] = {}
    for v in snap.vips:
        vip_states[v.vip.state.value] = vip_states.get(v.vip.state.value, 0) + 1
    vip_summary = ", ".join(f"{n} {s}" for s, n in sorted(vip_states.items())) or "none"
    cards = "".join(
        (
            _card("publisher", escape(pub_text), pub_cls),
            _card("revision", f"{snap.head}"),
            _card(
                "publisher lag",
                escape(f"{behind} rev, {_ago(lag)}" if behind is not None else "-"),
                "ok" if not behind else ("bad" if lag > 5 else "warn"),
            ),
            _card("apps", f"{snap.app_count}"),
            _card("endpoints", f"{snap.endpoint_count}"),
            _card("VIPs", escape(vip_summary)),
        )
    )
    guard = pub.get("guard") if pub else None
    notes = ""
    if guard:
        notes += f'<p class="bad">churn guard: {escape(str(guard.get("reason", "")))}</p>'
    if pub and pub.get("error"):
        notes += f'<p class="bad">publisher: {escape(str(pub["error"]))}</p>'
    nodes = _table(
        ("node", "state", "reason"),
        [
            (
                _td(n.node.name),
                f"<td>{_state(n.node.state.value)}</td>",
                _td(n.node.reason, "wrap"),
            )
            for n in snap.nodes
        ],
        "no nodes in pod.lock",
    )
    vips = _table(
        ("VIP", "state", "reason"),
        [
            (
                _td(addr.format_ip(v.vip.address), "mono"),
                f"<td>{_state(v.vip.state.value)}</td>",
                _td(v.vip.reason, "wrap"),
            )
            for v in snap.vips
        ],
        "no VIPs",
    )
    more = snap.app_count - len(snap.apps)
    apps = _table(
        ("app", "owner", "endpoints"),
        [(_td(name), _td(owner), _td(count)) for name, owner, count in snap.apps],
        "no apps yet",
    )
    if more > 0:
        apps += f"<p><small>and {more} more (sixpod app list)</small></p>"
    changes = _table(
        ("rev", "when (UTC)", "change"),
        [
            (_td(c.revision), _td(_utc(c.committed_at)), _td(_change(c.op), "wrap mono"))
            for c in snap.changes
        ],
        "no changes yet",
    )
    title = f"sixpod {snap.pod}".strip() if snap.pod else "sixpod pod"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH}">
<title>{escape(title)} status</title>
<style>{STYLE}</style></head>
<body>
<h1>{escape(title)} status</h1>
<p><small>as of {_utc(now)} UTC; refreshes every {REFRESH} s. Node BGP state, fan-out
and replica lag: Prometheus (sixpod render writes its config).</small></p>
<div class="sum">{cards}</div>
{notes}
<h2>Nodes</h2>
{nodes}
<h2>VIPs</h2>
{vips}
<h2>Apps</h2>
{apps}
<h2>Recent changes</h2>
{changes}
</body></html>
"""


# -- reading (the adapter's side) --------------------------------------------------------


def snapshot(
    store: Store, status: Callable[[], dict[str, Any]] | None, *, pod: str = ""
) -> Snapshot:
    head = store.head()
    pub = status() if status is not None else None
    published = int(pub.get("published") or 0) if pub else head
    oldest = None
    if published < head:
        row = store.outbox_row(published + 1)
        oldest = row.committed_at if row is not None else None
    start = max(0, head - CHANGES_SHOWN)
    changes = [r for r in (store.outbox_row(rev) for rev in range(head, start, -1)) if r]
    with store.engine.connect() as conn:
        app_count = int(conn.execute(sa.select(sa.func.count()).select_from(apps_t)).scalar() or 0)
        endpoint_count = int(
            conn.execute(sa.select(sa.func.count()).select_from(endpoints_t)).scalar() or 0
        )
        counts = (
            sa.select(endpoints_t.c.app, sa.func.count().label("n"))
            .group_by(endpoints_t.c.app)
            .subquery()
        )
        rows = conn.execute(
            sa.select(apps_t.c.name, apps_t.c.owner, sa.func.coalesce(counts.c.n, 0))
            .select_from(apps_t.outerjoin(counts, counts.c.app == apps_t.c.name))
            .order_by(apps_t.c.name)
            .limit(APPS_SHOWN)
        ).all()
    return Snapshot(
        head=head,
        publisher=pub,
        oldest_unpublished=oldest,
        nodes=store.list_nodes(),
        vips=store.list_vips(),
        apps=[(str(r[0]), str(r[1]), int(r[2])) for r in rows],
        app_count=app_count,
        endpoint_count=endpoint_count,
        changes=changes,
        pod=pod,
    )


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` value carries ``token``: Bearer, or Basic with the token
    as the password (any user name). Compared in constant time."""
    if not header:
        return False
    scheme, _, rest = header.partition(" ")
    given = rest.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(given, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        given = decoded.partition(":")[2]
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def mount(
    app: FastAPI,
    store: Store,
    *,
    token: str,
    status: Callable[[], dict[str, Any]] | None = None,
    pod: str = "",
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve the page at :data:`PATH` of ``app``, behind ``token``."""
    headers = {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    @app.get(PATH, include_in_schema=False, response_model=None)
    def status_page(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), token):
            return PlainTextResponse(
                "the API token is needed (as the password, any user name)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="sixpod", charset="UTF-8"'},
            )
        page = render(snapshot(store, status, pod=pod), clock())
        return HTMLResponse(page, headers=headers)
