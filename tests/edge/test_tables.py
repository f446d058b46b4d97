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


def test_app_entry_carries_the_apps_own_body_limit() -> None:
    s = _state()
    s.load_app("shop", {"settings": '{"max_body_bytes": 1024}'})
    assert tables.app_entry(s, "shop").startswith("=body 1024\n[2001:db8:100:1::a] 8080 50\n")
    for bad in ('{"max_body_bytes": "1m"}', '{"max_body_bytes": 0}', '{"max_body_bytes": true}'):
        s.load_app("shop", {"settings": bad})
        assert not tables.app_entry(s, "shop").startswith("=")


def test_app_entry_carries_redirect_and_hsts_only_when_set_properly() -> None:
    s = _state()
    s.load_app("shop", {"settings": '{"https_redirect": true, "hsts_max_age": 600}'})
    assert tables.app_entry(s, "shop").startswith("=redirect\n=hsts 600\n[2001:db8:100:1::a]")
    s.load_app("shop", {"settings": '{"hsts_max_age": 0}'})
    assert tables.app_entry(s, "shop").startswith("=hsts 0\n[")  # withdraws a policy
    for off in ('{"https_redirect": false}', '{"https_redirect": 1, "hsts_max_age": -1}'):
        s.load_app("shop", {"settings": off})
        assert not tables.app_entry(s, "shop").startswith("=")


def test_delta_names_only_what_changed() -> None:
    s = _state()
    s.domains.pop("shop.example.com")
    changed = Changed(8, frozenset({"blog"}), frozenset({"shop.example.com"}))
    assert list(tables.delta(s, changed, "g", chunk=200)) == [
        {
            "generation": "g",
            "revision": 8,
            "apps": {"blog": ""},
            "hosts": {"shop.example.com": None},
        }
    ]


def test_a_large_delta_is_chunked_in_safe_order_and_only_its_last_batch_moves_the_revision() -> (
    None
):
    s = _state()
    for i in range(4):
        s.load_app(f"new{i}", {})
        s.domains[f"h{i}.example.com"] = f"new{i}"
    gone = {f"old{i}" for i in range(3)}  # not in the state: removed
    changed = Changed(9, frozenset({f"new{i}" for i in range(4)} | gone),
                      frozenset({f"h{i}.example.com" for i in range(4)}))  # fmt: skip
    batches = list(tables.delta(s, changed, "g", chunk=3))
    assert len(batches) == 4  # 11 steps
    assert [b.get("revision") for b in batches] == [None, None, None, 9]
    order = []
    for b in batches:  # nginx applies a batch as: app additions, hosts, app removals
        order += [("apps", False) for v in b["apps"].values() if v is not None]
        order += [("hosts", False) for _ in b["hosts"]]
        order += [("apps", True) for v in b["apps"].values() if v is None]
    # additions, then hosts, then removals: no batch boundary shows a host without its app
    assert order == [("apps", False)] * 4 + [("hosts", False)] * 4 + [("apps", True)] * 3
    assert all(len(b["apps"]) + len(b["hosts"]) <= 3 for b in batches)


def test_full_push_begins_a_generation_fills_it_in_chunks_and_commits() -> None:
    s = _state()
    for i in range(5):
        s.load_app(f"a{i}", {})
    batches = list(tables.full(s, "g", chunk=3))
    assert batches[0] == {"generation": "g", "begin": True}
    assert batches[-1] == {"generation": "g", "commit": True, "revision": 7}
    middle = batches[1:-1]
    assert all("begin" not in b and "commit" not in b for b in middle)
    apps = [a for b in middle for a in b["apps"]]
    assert sorted(apps) == sorted(s.apps)
    assert all(len(b["apps"]) <= 3 for b in middle)
    hosts = {h: a for b in middle for h, a in b["hosts"].items()}
    assert hosts == s.domains


def test_full_push_of_an_empty_state_still_commits() -> None:
    batches = list(tables.full(TenantState(epoch="e", revision=1), "g", chunk=200))
    assert batches == [
        {"generation": "g", "begin": True},
        {"generation": "g", "commit": True, "revision": 1},
    ]
