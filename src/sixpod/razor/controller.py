"""The re-shard action against the controller API: one small function over httpx.

``PUT /v1/vips/{vip}`` with ``{"state": "blackholed", "reason": ...}`` for each attacked VIP
(pulled from answers at once), then ``PATCH /v1/apps/{app}`` with the new ``shard_seed``.
httpx errors are translated here, once: the caller sees only
:class:`~sixpod.razor.errors.ControllerError` / :class:`ControllerUnreachable`.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from sixpod import addr
from sixpod.razor.attribution import ReshardPlan
from sixpod.razor.errors import ControllerError, ControllerUnreachable


def apply_plan(
    plan: ReshardPlan,
    api_url: str,
    token: str,
    *,
    timeout: float = 5.0,
    reason: str = "",
    transport: httpx.BaseTransport | None = None,
) -> list[str]:
    """Carry out ``plan``; returns one line per change made. (``transport``: for tests.)"""
    base = api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    why = reason or f"attack attributed to app {plan.app}"
    done: list[str] = []
    try:
        with httpx.Client(
            base_url=base, headers=headers, timeout=timeout, transport=transport
        ) as client:
            for ip in plan.pull:
                text = addr.format_ip(ip)
                r = client.put(
                    f"/v1/vips/{quote(text, safe='')}", json={"state": "blackholed", "reason": why}
                )
                _check(r, f"blackhole VIP {text}")
                done.append(f"VIP {text}: blackholed")
            r = client.patch(
                f"/v1/apps/{quote(plan.app, safe='')}", json={"shard_seed": plan.new_seed}
            )
            _check(r, f"re-shard app {plan.app}")
            done.append(f"app {plan.app}: shard_seed {plan.old_seed} -> {plan.new_seed}")
    except httpx.TransportError as e:
        raise ControllerUnreachable(
            f"cannot reach the controller at {base}: {e}"
            + (f" (already done: {'; '.join(done)})" if done else "")
        ) from None
    return done


def _check(r: httpx.Response, what: str) -> None:
    if r.status_code >= 400:
        detail = r.text.strip().replace("\n", " ")[:200]
        raise ControllerError(f"{what}: controller answered {r.status_code}: {detail}")
