"""The re-shard action against the controller API, through the one API client.

``PUT /v1/vips/{vip}`` with ``{"state": "blackholed", "reason": ...}`` for each attacked VIP
(pulled from answers at once), then ``PATCH /v1/apps/{app}`` with the new ``shard_seed``.
The client's :class:`~sixpod.tenants.client.ApiError` is translated here, once: the caller
sees only :class:`~sixpod.razor.errors.ControllerError` / :class:`ControllerUnreachable`.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from sixpod import addr
from sixpod.errors import map_exceptions
from sixpod.razor.attribution import ReshardPlan
from sixpod.razor.errors import ControllerError, ControllerUnreachable
from sixpod.tenants.client import ApiError, Client, seg


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
    why = reason or f"attack attributed to app {plan.app}"
    done: list[str] = []
    with Client(api_url, token, timeout=timeout, transport=transport) as client:
        for ip in plan.pull:
            text = addr.format_ip(ip)
            pull = {"state": "blackholed", "reason": why}
            _send(client, "PUT", f"/v1/vips/{seg(text)}", pull, f"blackhole VIP {text}", done)
            done.append(f"VIP {text}: blackholed")
        seed = {"shard_seed": plan.new_seed}
        _send(client, "PATCH", f"/v1/apps/{seg(plan.app)}", seed, f"re-shard app {plan.app}", done)
        done.append(f"app {plan.app}: shard_seed {plan.old_seed} -> {plan.new_seed}")
    return done


def _send(
    client: Client, method: str, path: str, body: Mapping[str, object], what: str, done: list[str]
) -> None:
    def failed(e: ApiError) -> ControllerError:
        if e.status == 0:
            return ControllerUnreachable(
                f"cannot reach the controller at {client.url}: {e.reason}"
                + (f" (already done: {'; '.join(done)})" if done else "")
            )
        detail = e.reason.strip().replace("\n", " ")[:200]
        return ControllerError(f"{what}: controller answered {e.status}: {detail}")

    with map_exceptions({ApiError: failed}):
        client.request(method, path, json=dict(body))
