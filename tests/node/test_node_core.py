"""The pure parts of node bootstrap: the network config's codec, the plan, the restart
policy, the services' effective configs."""

from __future__ import annotations

import contextlib
import json
from ipaddress import IPv4Network, IPv6Address, IPv6Interface, IPv6Network, ip_interface
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod import addr
from sixpod.node import netconfig, services
from sixpod.node.errors import BadInput
from sixpod.node.events import AddAddress, AddRoute, SetMtu, SetSysctl, SetUp
from sixpod.node.netconfig import Link, NetConfig, Route, RouteKind
from sixpod.node.plan import LinkState, NetState, plan, sysctl_paths
from sixpod.node.supervisor import Restarts

GW = IPv6Address("2001:db8:2ff::1")


def config() -> NetConfig:
    return NetConfig(
        node="edge1",
        links=(
            Link("eth0", 9000, (IPv6Interface("2001:db8:2ff::2/64"),), (("accept_dad", 0),)),
            Link("lo", None, (IPv6Interface("2001:db8:200:1::1/128"),)),
        ),
        routes=(
            Route(IPv6Network("::/0"), via=GW, dev="eth0"),
            Route(IPv4Network("0.0.0.0/0"), via=GW, dev="eth0"),
            Route(IPv6Network("2001:db8:200:1::/64"), RouteKind.UNREACHABLE),
        ),
        sysctls=(("net.ipv6.conf.all.keep_addr_on_down", 1),),
    )


def state_of(cfg: NetConfig) -> NetState:
    """The state a full bootstrap leaves."""
    return NetState(
        links={
            x.name: LinkState(x.name, True, x.mtu or 65536, frozenset(x.addresses))
            for x in cfg.links
        },
        routes={r.to: r for r in cfg.routes},
        sysctls=dict(sysctl_paths(cfg)),
    )


def fresh() -> NetState:
    return NetState(
        links={"eth0": LinkState("eth0", False, 1500), "lo": LinkState("lo", False, 65536)},
        sysctls={p: 1 - v for p, v in sysctl_paths(config()).items()},
    )


def test_text_round_trip() -> None:
    cfg = config()
    assert netconfig.parse(netconfig.to_text(cfg)) == cfg


def test_a_fresh_node_gets_everything_in_order() -> None:
    changes = plan(config(), fresh())
    assert [type(c) for c in changes] == [
        SetSysctl, SetSysctl, SetMtu, SetUp, SetUp, AddAddress, AddAddress,
        AddRoute, AddRoute, AddRoute,
    ]  # fmt: skip
    assert str(changes[-2]) == "route 0.0.0.0/0 via inet6 2001:db8:2ff::1 dev eth0"
    assert str(changes[-1]) == "route unreachable 2001:db8:200:1::/64"


def test_a_configured_node_plans_nothing() -> None:
    assert plan(config(), state_of(config())) == []


def test_other_addresses_and_routes_are_left_alone() -> None:
    have = state_of(config())
    extra = ip_interface("203.0.113.7/32")
    links = dict(have.links)
    links["lo"] = LinkState("lo", True, 65536, links["lo"].addresses | {extra})
    routes = dict(have.routes)
    routes[IPv6Network("2001:db8:200:1::10/128")] = Route(
        IPv6Network("2001:db8:200:1::10/128"), via=IPv6Address("fe80::1"), dev="veth1"
    )
    assert plan(config(), NetState(links, routes, have.sysctls)) == []


def test_a_route_elsewhere_is_replaced() -> None:
    have = state_of(config())
    other = Route(IPv6Network("::/0"), via=IPv6Address("2001:db8:2ff::99"), dev="eth0")
    routes = {**have.routes, other.to: other}
    [change] = plan(config(), NetState(have.links, routes, have.sysctls))
    assert change == AddRoute(config().routes[0], other)


def test_a_missing_interface_or_sysctl_is_refused_before_any_change() -> None:
    have = state_of(config())
    with pytest.raises(BadInput, match=r"no interface eth0 on this node \(it has: lo\)"):
        plan(config(), NetState({"lo": have.links["lo"]}, {}, have.sysctls))
    sysctls = {**have.sysctls, ("net", "ipv6", "conf", "eth0", "accept_dad"): None}
    with pytest.raises(BadInput, match="no such setting"):
        plan(config(), NetState(have.links, have.routes, sysctls))


def test_the_uplink_can_be_renamed() -> None:
    cfg = config().with_uplink("eth0", "ens3")
    assert [x.name for x in cfg.links] == ["ens3", "lo"]
    assert {r.dev for r in cfg.routes} == {"ens3", None}
    assert ("net", "ipv6", "conf", "ens3", "accept_dad") in sysctl_paths(cfg)
    with pytest.raises(BadInput, match="no link 'wlan0'"):
        config().with_uplink("wlan0", "x")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            lambda c: NetConfig(c.node, (Link("eth0", 9000, (ip_interface("192.0.2.2/24"),)),), ()),
            "is not IPv6",
        ),
        (
            lambda c: NetConfig(c.node, c.links, (Route(IPv6Network("::/0"), dev="eth0"),)),
            "needs a gateway",
        ),
        (lambda c: NetConfig(c.node, (*c.links, c.links[0]), ()), "listed twice"),
        (lambda c: NetConfig(c.node, (Link("a/b", None, ()),), ()), "not an interface name"),
        (lambda c: NetConfig(c.node, (), (), (("kernel.panic", 1),)), "not a net.* sysctl"),
        (
            lambda c: NetConfig(c.node, (), (), (("net.ipv6.conf.all.x/../../y", 1),)),
            "not a net.* sysctl",
        ),
    ],
)
def test_a_bad_config_cannot_be_built(cfg: object, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        cfg(config())  # type: ignore[operator]


@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_garbage_in_only_our_error_out(text: str) -> None:
    with contextlib.suppress(BadInput):
        netconfig.parse(text, "x.json")  # nothing else may escape


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON)
def test_any_json_in_only_our_error_out(doc: object) -> None:
    full = netconfig.to_json(config())
    for candidate in (doc, {**full, "links": doc}, {**full, "routes": [doc]}):
        with contextlib.suppress(BadInput):
            netconfig.from_json(candidate)


def test_restarts_back_off_while_a_service_keeps_dying() -> None:
    r = Restarts(min_delay=0.5, max_delay=4, stable=30)
    r.handle_start("redis", 0.0)
    assert r.handle_exit("redis", 100.0) == 100.0  # ran long: at once
    r.handle_start("redis", 100.0)
    assert r.handle_exit("redis", 101.0) == 101.0  # first quick death: at once
    r.handle_start("redis", 101.0)
    delays = []
    t = 101.0
    for _ in range(5):
        t += 0.1
        due = r.handle_exit("redis", t)
        delays.append(due - t)
        assert r.next_timer() == due
        assert r.handle_timer(due - 0.01) == ([] if due > t else ["redis"])
        assert r.handle_timer(due) == ["redis"]
        r.handle_start("redis", due)
        t = due
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert r.count["redis"] == 7
    assert r.next_timer() is None


def runtime(tmp: Path) -> services.Runtime:
    return services.Runtime(
        run_dir=tmp / "run",
        state_dir=tmp / "state",
        log_dir=tmp / "logs",
        sixpod=Path("/opt/sixpod/bin/sixpod"),
        exabgp=Path("/opt/sixpod/bin/exabgp"),
        redis_password_file=tmp / "redis.pass",
        redis_primary=addr.parse_endpoint("[2001:db8:200::2]:6380"),
        edge_seal_key=tmp / "seal.key",
        nginx=tmp / "no-nginx",
    )


def test_effective_configs_put_the_run_time_paths_in(rendered: Path, tmp_path: Path) -> None:
    from sixpod import devices

    d = rendered / "nodes" / "edge1"
    doc = devices.load((d / "device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    rt = runtime(tmp_path)
    built = services.build(doc, d, rt)
    assert [s.name for s in built.services] == [
        "zebra", "bfdd", "exabgp", "redis", "edge", "razor"
    ]  # fmt: skip
    run = tmp_path / "run"
    ann = json.loads(built.files[run / "announcer.yaml"])
    assert ann["state_dir"] == str(tmp_path / "state" / "announcer")
    assert ann["bfd"]["vty_socket"] == str(run / "frr")
    assert [c["password_file"] for c in ann["checks"] if c["kind"] == "redis"] == [
        str(tmp_path / "redis.pass")
    ]
    assert ann["vip_states"]["password_file"] == str(tmp_path / "redis.pass")
    rendered_ann = json.loads("\n".join(
        x for x in (d / "announcer.yaml").read_text().splitlines() if not x.startswith("#")
    ))  # fmt: skip
    for key in ("vips", "next_hop", "node_prefix", "metrics"):
        assert ann[key] == rendered_ann[key]
    exa = built.files[run / "exabgp.conf"]
    assert f"    run /opt/sixpod/bin/sixpod announcer --config {run}/announcer.yaml;\n" in exa
    same = services.RUN_LINE.sub("run;", exa)
    assert same == services.RUN_LINE.sub("run;", (d / "exabgp.conf").read_text())
    redis = built.files[run / "redis.conf"]
    assert redis.endswith(
        f'dir {tmp_path}/state/redis\nlogfile ""\nreplicaof 2001:db8:200::2 6380\n'
        f"include {run}/redis/auth.conf\n"
    )
    assert "requirepass" not in redis
    assert built.password_file == tmp_path / "redis.pass"
    edge = json.loads(built.files[run / "edge.yaml"])
    assert edge["run_dir"] == str(run / "edge")
    assert edge["redis"]["password_file"] == str(tmp_path / "redis.pass")
    assert edge["tls"]["seal_key"] == str(tmp_path / "seal.key")
    assert edge["nginx"] == [str(tmp_path / "no-nginx")]
    assert f"{run}/edge" in built.files[run / "edge-nginx.conf"]
    exabgp = built.services[2]
    assert dict(exabgp.env)["EXABGP_ROOT"] == str(run / "exabgp")
    razor = json.loads(built.files[run / "razor.yaml"])
    assert razor["tenants"]["password_file"] == str(tmp_path / "redis.pass")
    assert (
        razor["listen"]
        == json.loads(
            "\n".join(x for x in (d / "razor.yaml").read_text().splitlines() if x[:1] != "#")
        )["listen"]
    )
    assert built.services[5].argv[1:] == ("razor", "--config", str(run / "razor.yaml"))


def test_an_internal_node_runs_no_redis_and_no_edge(rendered: Path, tmp_path: Path) -> None:
    from sixpod import devices

    d = rendered / "nodes" / "app1"
    doc = devices.load((d / "device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    built = services.build(doc, d, runtime(tmp_path))
    assert [s.name for s in built.services] == ["zebra", "bfdd", "exabgp"]
    assert built.password_file == tmp_path / "redis.pass"


def test_a_rendered_file_that_is_not_what_render_writes_is_refused(
    rendered: Path, tmp_path: Path
) -> None:
    import shutil

    from sixpod import devices

    d = tmp_path / "edge1"
    shutil.copytree(rendered / "nodes" / "edge1", d)
    doc = devices.load((d / "device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    (d / "exabgp.conf").write_text("neighbor x {}\n")
    with pytest.raises(BadInput, match=r"exabgp.conf: expected one `run \.\.\.;` line"):
        services.build(doc, d, runtime(tmp_path))
    shutil.copy(rendered / "nodes" / "edge1" / "exabgp.conf", d)
    (d / "announcer.yaml").write_text("# x\n[1, 2")
    with pytest.raises(BadInput, match=r"announcer\.yaml: not the JSON"):
        services.build(doc, d, runtime(tmp_path))


def test_missing_programs_are_named_with_what_installs_them(rendered: Path, tmp_path: Path) -> None:
    from sixpod import devices

    d = rendered / "nodes" / "edge1"
    doc = devices.load((d / "device.json").read_text())
    assert isinstance(doc, devices.NodeDevice)
    rt = runtime(tmp_path)
    missing = services.missing_programs(services.build(doc, d, rt), rt)
    assert (
        "exabgp: /opt/sixpod/bin/exabgp is not installed (PyPI exabgp, in sixpod's virtual "
        "environment)" in missing
    )
    assert (
        f"nginx: {tmp_path}/no-nginx is not installed (Debian packages nginx and "
        "libnginx-mod-http-lua)" in missing
    )


def _simulate(state: NetState, changes: list[object]) -> NetState:
    """What the kernel holds after the changes (the adapter's effect, in memory)."""
    links = dict(state.links)
    routes = dict(state.routes)
    sysctls = dict(state.sysctls)
    for c in changes:
        if isinstance(c, SetSysctl):
            sysctls[c.path] = c.value
        elif isinstance(c, SetMtu):
            x = links[c.link]
            links[c.link] = LinkState(x.name, x.up, c.mtu, x.addresses)
        elif isinstance(c, SetUp):
            x = links[c.link]
            links[c.link] = LinkState(x.name, True, x.mtu, x.addresses)
        elif isinstance(c, AddAddress):
            x = links[c.link]
            links[c.link] = LinkState(x.name, x.up, x.mtu, x.addresses | {c.address})
        elif isinstance(c, AddRoute):
            routes[c.route.to] = c.route
    return NetState(links, routes, sysctls)


GATEWAYS = st.sampled_from([GW, IPv6Address("2001:db8:2ff::99"), None])


@given(
    up=st.booleans(),
    mtu=st.sampled_from([1500, 9000]),
    have_addr=st.booleans(),
    default_via=GATEWAYS,
    v4_via=GATEWAYS,
    unreachable=st.booleans(),
    sysctl=st.sampled_from([0, 1]),
)
def test_one_plan_reaches_the_config_and_a_second_plans_nothing(
    up: bool,
    mtu: int,
    have_addr: bool,
    default_via: IPv6Address | None,
    v4_via: IPv6Address | None,
    unreachable: bool,
    sysctl: int,
) -> None:
    want = config()
    addrs = frozenset(want.links[0].addresses) if have_addr else frozenset()
    routes: dict[object, Route] = {}
    if default_via is not None:
        routes[IPv6Network("::/0")] = Route(IPv6Network("::/0"), via=default_via, dev="eth0")
    if v4_via is not None:
        routes[IPv4Network("0.0.0.0/0")] = Route(IPv4Network("0.0.0.0/0"), via=v4_via, dev="eth0")
    if unreachable:
        r = want.routes[2]
        routes[r.to] = r
    have = NetState(
        links={"eth0": LinkState("eth0", up, mtu, addrs), "lo": LinkState("lo", True, 65536)},
        routes=routes,  # type: ignore[arg-type]
        sysctls=dict.fromkeys(sysctl_paths(want), sysctl),
    )
    after = _simulate(have, plan(want, have))  # type: ignore[arg-type]
    assert plan(want, after) == []
    assert after.links["eth0"].mtu == 9000
    assert set(want.links[0].addresses) <= after.links["eth0"].addresses
