"""The pure core: tenant state and changes to admin batches."""

from __future__ import annotations

from sixpod.edge import tables
from sixpod.tenants.model import Changed
from sixpod.tenants.reader import TenantState


def _state() -> TenantState:
    s = TenantState(epoch="e", revision=7)
    s.load_app("shop", {})
    s.load_app("blog", {})
    s.load_upstreams(
        "shop",
        {
            "[2001:db8:100:1::b]:8080": "100 up",
            "[2001:db8:100:1::a]:8080": "50 up",
            "[2001:db8:100:1::c]:8080": "100 draining",
            "[2001:db8:100:1::d]:8080": "100 down",
            "[2001:db8:100:1::e]:8080": "0 up",
        },
    )
    s.domains.update({"shop.example.com": "shop", "*.blog.example.org": "blog"})
    return s


def test_app_entry_keeps_only_routable_endpoints_in_a_stable_order() -> None:
    assert tables.app_entry(_state(), "shop") == (
        "[2001:db8:100:1::a] 8080 50\n[2001:db8:100:1::b] 8080 100\n"
    )
    assert tables.app_entry(_state(), "blog") == ""  # known app, nothing routable: 503
    assert tables.app_entry(_state(), "gone") is None  # unknown: removed from nginx


def test_delta_names_only_what_changed() -> None:
    s = _state()
    s.domains.pop("shop.example.com")
    batch = tables.delta(s, Changed(8, frozenset({"blog"}), frozenset({"shop.example.com"})), "g")
    assert batch == {
        "generation": "g",
        "revision": 8,
        "apps": {"blog": ""},
        "hosts": {"shop.example.com": None},
    }


def test_full_push_in_chunks_starts_empty_and_ends_ready() -> None:
    s = _state()
    for i in range(5):
        s.load_app(f"a{i}", {})
    batches = list(tables.full(s, "g", chunk=3))
    assert batches[0]["full_start"] is True
    assert all("full_start" not in b for b in batches[1:])
    assert batches[-1] == {"generation": "g", "revision": 7, "ready": True}
    apps = [a for b in batches[:-1] for a in b["apps"]]
    assert sorted(apps) == sorted(s.apps)
    assert all(len(b["apps"]) <= 3 for b in batches[:-1])
    hosts = {h: a for b in batches[:-1] for h, a in b["hosts"].items()}
    assert hosts == s.domains


def test_full_push_of_an_empty_state_still_marks_ready() -> None:
    batches = list(tables.full(TenantState(epoch="e", revision=1), "g", chunk=200))
    assert batches[0]["full_start"] is True
    assert batches[-1]["ready"] is True
