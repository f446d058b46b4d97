"""Attribution ranks the app whose shard holds the attacked VIPs; the re-shard plan moves it
off them; the controller call is made through httpx and its failures are ours."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from razorkit import V4, V6, state
from sixpod.razor.attribution import apps_holding, plan_reshard, rank_apps
from sixpod.razor.errors import ControllerError, ControllerUnreachable
from sixpod.razor.reshard import apply_plan
from sixpod.razor.shard import Shards, shard

APPS = {f"app{i}": 0 for i in range(60)}


def test_the_attacked_app_ranks_first() -> None:
    st = state(apps=APPS)
    rng = random.Random(7)
    for victim in rng.sample(sorted(APPS), 10):
        shards = shard(victim, 0, V4, 8) + shard(victim, 0, V6, 8)
        attacked = rng.sample(shards, 5)  # the attacker saw 5 of the victim's VIPs
        ranked = rank_apps(attacked, st, Shards(8))
        assert ranked[0].app == victim
        assert ranked[0].hits == 5
        assert ranked[0].coverage == 1.0
        assert ranked[0].chance < 0.01
        assert all(s.hits <= 5 for s in ranked)
        assert ranked[0].to_json()["coverage"] == 1.0


def test_unrelated_vips_rank_nobody_highly() -> None:
    st = state(apps={"a": 0})
    outside = [ip for ip in V4 if ip not in shard("a", 0, V4, 8)][:3]
    assert rank_apps(outside, st, Shards(8)) == []


def test_reshard_plan_avoids_attacked_vips() -> None:
    st = state(apps={"shop": 3, "blog": 0})
    old = shard("shop", 3, V4, 8) + shard("shop", 3, V6, 8)
    attacked = [old[0], old[9], V4[-1]]
    plan = plan_reshard("shop", attacked, st, Shards(8))
    assert plan.old_seed == 3
    assert plan.new_seed > 3
    assert plan.old_shard == old
    assert not set(plan.new_shard) & set(attacked)
    assert set(plan.pull) == {old[0], old[9]} | ({V4[-1]} & set(old))
    assert plan.new_shard == shard("shop", plan.new_seed, V4, 8) + shard(
        "shop", plan.new_seed, V6, 8
    )
    doc = plan.to_json()
    assert doc["kept"] == len(set(plan.old_shard) & set(plan.new_shard))
    with pytest.raises(KeyError):
        plan_reshard("nobody", attacked, st, Shards(8))
    holders = apps_holding([old[0]], {"shop": (shard("shop", 3, V4, 8), ())})
    assert holders[old[0]] == ["shop"]


def test_apply_plan_calls_the_controller() -> None:
    st = state(apps={"shop": 0})
    old = shard("shop", 0, V6, 8)
    plan = plan_reshard("shop", [old[0]], st, Shards(8))
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, json.loads(request.content)))
        assert request.headers["authorization"] == "Bearer t0k"
        return httpx.Response(200, json={})

    done = apply_plan(plan, "http://[::1]:8080/", "t0k", transport=httpx.MockTransport(handler))
    assert calls[0][0] == "PUT"
    assert calls[0][1] == f"/v1/vips/{old[0]}"
    assert calls[0][2]["state"] == "blackholed"
    assert calls[1] == ("PATCH", "/v1/apps/shop", {"shard_seed": plan.new_seed})
    assert len(done) == 2

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text="bad token")

    with pytest.raises(ControllerError, match="403: bad token"):
        apply_plan(plan, "http://[::1]:8080", "x", transport=httpx.MockTransport(refuse))

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ControllerUnreachable, match="cannot reach the controller"):
        apply_plan(plan, "http://[::1]:8080", "x", transport=httpx.MockTransport(down))


def test_apply_plan_names_the_controllers_problem_detail() -> None:
    st = state(apps={"shop": 0})
    plan = plan_reshard("shop", [shard("shop", 0, V6, 8)[0]], st, Shards(8))

    def guard(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(200, json={})
        return httpx.Response(409, json={"status": 409, "detail": "churn guard\ntripped"})

    with pytest.raises(ControllerError) as e:
        apply_plan(plan, "http://[::1]:8080", "x", transport=httpx.MockTransport(guard))
    assert e.value.message == "re-shard app shop: controller answered 409: churn guard tripped"


def test_reshard_plan_follows_max_overlap() -> None:
    """Issue 15 item 12: with max_overlap the shards are placed under the cap, and the plan
    says the shard the app will really get (old and new), not its uncapped top ranks."""
    apps = {f"app{i}": 0 for i in range(30)}
    st = state(apps=apps)
    served = Shards(8, max_overlap=2)
    served.set_pool(st.vips)
    current = served.shards(apps)
    victim = next(
        a for a in sorted(apps, reverse=True) if current[a][0] != shard(a, 0, V4, 8)
    )  # an app the cap moved
    old = (*current[victim][0], *current[victim][1])
    attacked = [old[0], old[8]]
    plan = plan_reshard(victim, attacked, st, Shards(8, max_overlap=2))
    assert plan.old_shard == old
    after = served.shards({**apps, victim: plan.new_seed})[victim]
    assert plan.new_shard == (*after[0], *after[1])
    assert not set(plan.new_shard) & set(attacked)
    assert set(plan.pull) == set(attacked)
