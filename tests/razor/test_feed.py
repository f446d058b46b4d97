"""Config validation, the static feed (pod.lock, state file, reload) and the reader seam."""

from __future__ import annotations

import os
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from razorkit import POOL, config, state
from sixpod.inventory.load import load_model
from sixpod.razor.config import RazorConfig
from sixpod.razor.errors import ConfigError
from sixpod.razor.feed import (
    StaticFeed,
    follow_reader,
    format_state,
    load_pool,
    parse_state,
    snapshot,
    within_pool,
)
from sixpod.razor.state import RazorState
from sixpod.tenants.model import App, Changed, Vip, VipState

ROOT = Path(__file__).resolve().parents[2]


def test_config_example_loads() -> None:
    text = (Path(__file__).parent / "data" / "razor.yaml").read_text()
    cfg = load_model(text, "razor.yaml", RazorConfig)
    assert cfg.zone == "route.example.net"
    assert cfg.ttl == 30
    assert cfg.fallback == "pool"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"answers": 9}, "exceeds shard_size"),
        ({"permutations": 6}, "power of two"),
        ({"tcp_max_connections": 100, "tcp_max_per_client": 100}, "must be below"),
        ({"zone": "Bad_Name.net"}, "not a valid DNS name"),
        ({"customer_zones": [{"name": "x.route.example.net", "app": "a"}]}, "overlaps"),
        ({"customer_zones": [{"name": "a.example", "app": "A B"}]}, "not a DNS label"),
        ({"nameservers": [{"name": "ns.route.example.net"}]}, "needs addresses"),
        ({"pool": {"vips": ["192.0.2.1", "192.0.2.1"]}}, "twice"),
        ({"pool": {"lock": "x", "vips": ["192.0.2.1"]}}, "exactly one"),
        ({"pool": {"vips": ["192.0.2.300"]}}, "192.0.2.300"),
        ({"fallback": "random"}, "fallback"),
    ],
)
def test_config_errors(override: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**override)


def test_config_unknown_key_names_the_line() -> None:
    text = "zone: route.example.net\nnameservers: [{name: ns.example.org}]\npool: {vips: []}\n"
    with pytest.raises(ConfigError) as e:  # Razor's own, not an inventory error
        load_model(text + "ttl_seconds: 5\n", "r.yaml", RazorConfig)
    assert "r.yaml:4:1: unknown key 'ttl_seconds'" in str(e.value)


def test_pool_from_the_lock() -> None:
    cfg = config(pool={"lock": str(ROOT / "examples" / "pod.lock")})
    pool = load_pool(cfg)
    assert sum(1 for ip in pool if ip.version == 4) == 512
    assert sum(1 for ip in pool if ip.version == 6) == 512
    with pytest.raises(ConfigError, match="cannot read"):
        load_pool(config(pool={"lock": "/nonexistent/pod.lock"}))


def _doc(vips: str = "{}", apps: str = "{}", revision: int = 1) -> str:
    return f"revision: {revision}\nvips: {vips}\napps: {apps}\nend: true\n"


def test_state_file_round_trip_and_errors() -> None:
    st = state(apps={"shop": 3}, pulled={POOL[0]: VipState.DRAINED})
    text = format_state(st)
    again = parse_state(text, "s.json", tuple(POOL))
    assert again == st
    assert parse_state(_doc(), "s.yaml", tuple(POOL)).apps == {}
    with pytest.raises(ConfigError, match="not in the pool"):
        parse_state(_doc(vips="{192.0.2.99: drained}"), "s.yaml", tuple(POOL))
    with pytest.raises(ConfigError, match="not valid"):
        parse_state("{", "s.json", tuple(POOL))
    with pytest.raises(ConfigError, match="'melted'"):
        parse_state(_doc(vips="{198.51.100.1: melted}"), "s.yaml", tuple(POOL))
    with pytest.raises(ConfigError, match="SEED"):
        parse_state(_doc(apps="{shop: x}"), "s.yaml", tuple(POOL))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "expected a mapping"),
        ("revision: 99\n", "incomplete (no vips, apps, end)"),
        ("revision: 9\nvips: {198.51.100.1: blackholed}\napps: {shop: 1, bl", "not valid"),
        ("revision: 9\nvips: {}\napps: {shop: 1}\n", "incomplete (no end)"),
        ("revision: 9\nend: true\nvips: {}\napps: {shop: 1}\n", "must be the last key"),
        ("revision: 9\nvips: {}\napps: {shop: 1}\nend: false\n", "must be the last key"),
        ("revision: -1\nvips: {}\napps: {}\nend: true\n", "integer >= 0"),
    ],
)
def test_a_state_file_cut_short_is_refused(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_state(text, "s.yaml", tuple(POOL))
    assert words in str(e.value)


def test_static_source_polls_the_file(tmp_path: Path) -> None:
    f = tmp_path / "state.yaml"
    f.write_text(_doc(apps="{shop: 1}"))
    src = StaticFeed(config(state_file=str(f)))
    first = src.load()
    assert first.apps == {"shop": 1}
    assert src.poll() is None
    f.write_text(_doc(apps="{shop: 2}", vips="{198.51.100.1: blackholed}", revision=2))
    os.utime(f, ns=(1, 1))  # a different mtime even on coarse clocks
    changed = src.poll()
    assert changed is not None
    assert changed.apps == {"shop": 2}
    assert changed.vips[ip_address("198.51.100.1")] is VipState.BLACKHOLED
    assert src.poll(force=True) is not None
    f.write_text("apps: [")
    with pytest.raises(ConfigError):
        src.poll(force=True)
    assert src.poll() is None  # a refused file is reported once, not on every poll
    f.write_text(_doc(apps="{shop: 3}", revision=1))  # an old copy: refused
    with pytest.raises(ConfigError, match="goes back from 2"):
        src.poll()
    f.write_text(_doc(apps="{shop: 3}", revision=3))
    os.utime(f, ns=(2, 2))
    again = src.poll()
    assert again is not None
    assert again.apps == {"shop": 3}
    no_file = StaticFeed(config())
    assert no_file.poll() is None
    assert len(no_file.load().vips) == len(POOL)


def test_snapshot_is_the_reader_seam() -> None:
    ip = ip_address("198.51.100.1")
    got = snapshot(
        MappingProxyType({ip: Vip(ip, VipState.DRAINED)}),
        MappingProxyType({"shop": App("shop", shard_seed=4)}),
        revision=9,
    )
    assert got.vips == {ip: VipState.DRAINED}
    assert got.apps == {"shop": 4}
    assert got.revision == 9
    assert got.active() == frozenset()


class _FakeReader:
    """Shaped like TenantReader: ``state.vips``, ``state.apps``, ``add_listener``."""

    def __init__(self) -> None:
        ip = ip_address("198.51.100.1")
        self.state = SimpleNamespace(vips={ip: Vip(ip)}, apps={"shop": App("shop")})
        self.listeners: list[Callable[[Any, Changed], None]] = []

    def add_listener(self, callback: Callable[[Any, Changed], None]) -> None:
        self.listeners.append(callback)

    def change(self, changed: Changed) -> None:
        for cb in self.listeners:
            cb(self.state, changed)


def test_follow_reader_applies_changes_that_matter() -> None:
    reader = _FakeReader()
    applied: list[Any] = []
    follow_reader(reader, applied.append)
    assert len(applied) == 1
    assert applied[0].apps == {"shop": 0}
    reader.change(Changed(revision=2, apps=frozenset({"shop"})))  # upstreams only
    assert len(applied) == 1
    ip = ip_address("198.51.100.1")
    reader.state.vips = {ip: Vip(ip, VipState.BLACKHOLED)}
    reader.change(Changed(revision=3, vips=True))
    assert applied[-1].vips[ip] is VipState.BLACKHOLED
    assert applied[-1].revision == 3
    reader.state.apps = {"shop": App("shop", shard_seed=1)}
    reader.change(Changed(revision=4, apps=frozenset({"shop"})))
    assert applied[-1].apps == {"shop": 1}
    reader.change(Changed(revision=5, nodes=True))
    assert len(applied) == 3


def test_readme_examples_load() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Razor") : text.index("## Addresses")]
    cfg_text = section[section.index("# razor.yaml") :]
    cfg_text = cfg_text[: cfg_text.index("```")].replace(
        "/etc/sixpod/pod.lock", str(ROOT / "examples" / "pod.lock")
    )
    cfg = load_model(cfg_text, "README.md", RazorConfig)
    state_text = section[section.index("# state file") :]
    state_text = state_text[: state_text.index("```")]
    got = parse_state(state_text, "state.yaml", load_pool(cfg))
    assert got.apps == {"shop": 0, "blog": 3}
    assert got.vips[ip_address("198.51.100.7")] is VipState.BLACKHOLED


def test_a_failed_rebuild_is_retried_on_the_next_change() -> None:
    reader = _FakeReader()
    applied: list[Any] = []
    fail = [True]

    def apply(state: Any) -> None:
        if fail[0] and len(applied) == 1:
            fail[0] = False
            raise RuntimeError("rebuild failed")
        applied.append(state)

    follow_reader(reader, apply)
    ip = ip_address("198.51.100.1")
    reader.state.vips = {ip: Vip(ip, VipState.BLACKHOLED)}
    with pytest.raises(RuntimeError):
        reader.change(Changed(revision=2, vips=True))
    reader.change(Changed(revision=3, nodes=True, vips=True))  # same VIPs: not skipped now
    assert applied[-1].vips[ip] is VipState.BLACKHOLED


def test_within_pool_keeps_to_razors_pool() -> None:
    inside, outside = ip_address("198.51.100.1"), ip_address("198.51.100.200")
    state = RazorState(
        MappingProxyType({inside: VipState.DRAINED, outside: VipState.ACTIVE}),
        MappingProxyType({}),
    )
    other = ip_address("198.51.100.2")
    got = within_pool(state, (inside, other))
    assert dict(got.vips) == {inside: VipState.DRAINED, other: VipState.ACTIVE}


def test_rate_limiting_is_on_unless_turned_off() -> None:
    base = {
        "zone": "route.example.net",
        "nameservers": [{"name": "ns1.route.example.net", "addresses": ["2001:db8:53::1"]}],
        "pool": {"vips": ["198.51.100.1"]},
        "answers": 1,
        "shard_size": 1,
    }
    assert RazorConfig.model_validate(base).rrl is not None
    assert RazorConfig.model_validate({**base, "rrl": None}).rrl is None


def test_a_yaml_state_file_cannot_be_a_bomb() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    with pytest.raises(ConfigError, match="anchors and aliases expand to more than"):
        parse_state("\n".join(lines) + "\n", "s.yaml", tuple(POOL))
    with pytest.raises(ConfigError, match="nested more than"):
        parse_state("revision: " + "[" * 500 + "]" * 500 + "\n", "s.yaml", tuple(POOL))
