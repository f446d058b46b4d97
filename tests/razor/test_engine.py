"""The query → response core against dnspython as the independent decoder."""

from __future__ import annotations

import random
from collections import Counter
from ipaddress import ip_address

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from razorkit import POOL, V4, V6, ask, config, state
from sixpod.razor import engine as E
from sixpod.razor.engine import Engine
from sixpod.razor.shard import ranking, shard
from sixpod.tenants.model import VipState


def _ips(r: dns.message.Message) -> list[str]:
    return [rd.address for rrset in r.answer for rd in rrset if rrset.rdtype in (1, 28)]


def test_apex_soa_ns_and_glue(engine: Engine) -> None:
    r = ask(engine, "route.example.net", "SOA")
    assert r.flags & dns.flags.AA
    assert r.rcode() == dns.rcode.NOERROR
    soa = r.answer[0][0]
    assert str(soa.mname) == "ns1.dns.route.example.net."
    assert str(soa.rname) == "hostmaster.route.example.net."
    r = ask(engine, "route.example.net", "NS")
    assert sorted(str(rd.target) for rd in r.answer[0]) == [
        "ns1.dns.route.example.net.",
        "ns2.example.org.",
    ]
    glue = sorted(rd.address for rrset in r.additional for rd in rrset)
    assert glue == ["192.0.2.53", "2001:db8:53::1"]
    assert _ips(ask(engine, "ns1.dns.route.example.net", "AAAA")) == ["2001:db8:53::1"]


def test_question_case_echoed(engine: Engine) -> None:
    r = ask(engine, "RoUtE.ExAmPlE.nEt", "A")
    assert r.question[0].name.to_text() == "RoUtE.ExAmPlE.nEt."
    assert r.answer[0].name.to_text() == "RoUtE.ExAmPlE.nEt."
    assert len(_ips(r)) == 4


def test_nxdomain_nodata_and_empty_non_terminal(engine: Engine) -> None:
    r = ask(engine, "nothing.route.example.net", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert r.authority[0].name.to_text() == "route.example.net."
    assert r.authority[0].ttl == 30  # min(SOA ttl, minimum), RFC 2308
    r = ask(engine, "shop.route.example.net", "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    r = ask(engine, "dns.route.example.net", "A")  # above ns1.dns...: exists, empty
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer
    r = ask(engine, "a.shop.route.example.net", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


def test_refused_outside_and_for_other_classes(engine: Engine) -> None:
    r = ask(engine, "example.com", "A")
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.AA
    assert ask(engine, "route.example.net", "A", rdclass="CH").rcode() == dns.rcode.REFUSED
    assert ask(engine, "route.example.net", "AXFR").rcode() == dns.rcode.REFUSED
    assert ask(engine, "net", "SOA").rcode() == dns.rcode.REFUSED


def test_formerr_notimp_and_silence(engine: Engine) -> None:
    q = dns.message.make_query("route.example.net", "A").to_wire()
    out = engine.respond(q + b"junk", "192.0.2.1", 0.0)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.rcode() == dns.rcode.FORMERR
    assert out[:2] == q[:2]
    notify = q[:2] + bytes([q[2] | 0x20]) + q[3:]  # opcode NOTIFY
    out = engine.respond(notify, "192.0.2.1", 0.0)
    assert out is not None
    assert out[3] & 0x0F == dns.rcode.NOTIMP
    assert engine.respond(b"\x01\x02", "192.0.2.1", 0.0) is None
    assert engine.respond(q[:2] + bytes([q[2] | 0x80]) + q[3:], "192.0.2.1", 0.0) is None
    assert engine.counts[E.UNANSWERED] == 2
    meta = dns.message.make_query("route.example.net", "OPT").to_wire()
    assert dns.message.from_wire(engine.respond(meta, "h", 0.0) or b"").rcode() == 1


def test_notimp_to_an_edns_query_carries_opt(engine: Engine) -> None:
    """Review of issue 15: every response to an EDNS query carries an OPT record (RFC 6891
    7), NOTIMP for another opcode too; without EDNS, or past other records, none."""
    for opcode in (1, 2, 4, 5, 15):  # IQUERY, STATUS, NOTIFY, UPDATE, unassigned
        q = dns.message.make_query("route.example.net", "SOA", use_edns=0).to_wire()
        odd = q[:2] + bytes([q[2] | opcode << 3]) + q[3:]
        r = dns.message.from_wire(engine.respond(odd, "192.0.2.1", 0.0) or b"")
        assert r.rcode() == dns.rcode.NOTIMP
        assert r.opcode() == opcode
        assert r.edns == 0
        assert r.payload == 1232
        assert r.question[0].name.to_text() == "route.example.net."
    question_less = engine.respond(_cookie_request(opcode=4), "192.0.2.1", 0.0)
    assert question_less is not None
    r = dns.message.from_wire(question_less)
    assert r.rcode() == dns.rcode.NOTIMP
    assert r.edns == 0
    assert not r.question
    plain = dns.message.make_query("route.example.net", "SOA").to_wire()
    out = engine.respond(plain[:2] + bytes([plain[2] | 0x20]) + plain[3:], "h", 0.0)
    assert out is not None
    assert out[3] & 0x0F == dns.rcode.NOTIMP
    assert out[4:12] == b"\x00" * 8  # no EDNS asked: header only


def test_edns_advertises_1232_and_badvers(engine: Engine) -> None:
    r = ask(engine, "route.example.net", "A", use_edns=0, payload=4096)
    assert r.edns == 0
    assert r.payload == 1232
    r = ask(engine, "route.example.net", "A", use_edns=0, want_dnssec=True)
    assert r.ednsflags & dns.flags.DO
    assert not ask(engine, "route.example.net", "A").opt  # no EDNS in, none out
    r = ask(engine, "route.example.net", "A", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS
    assert r.question[0].name.to_text() == "route.example.net."


def test_truncation_honours_the_client_buffer() -> None:
    e = Engine(config(answers=20, shard_size=20), state(), rng=random.Random(1))
    # 20 AAAA records: 20 * 28 bytes + question > 512, < 1232
    r = ask(e, "route.example.net", "AAAA")
    assert r.flags & dns.flags.TC
    assert not r.answer
    r = ask(e, "route.example.net", "AAAA", use_edns=0, payload=512)
    assert r.flags & dns.flags.TC
    r = ask(e, "route.example.net", "AAAA", use_edns=0, payload=1232)
    assert not r.flags & dns.flags.TC
    assert len(_ips(r)) == 20
    r = ask(e, "route.example.net", "AAAA", tcp=True)
    assert not r.flags & dns.flags.TC
    assert len(_ips(r)) == 20
    assert e.counts[E.TRUNCATED] == 2


def test_minimal_any(engine: Engine) -> None:
    r = ask(engine, "route.example.net", "ANY")
    assert len(r.answer) == 1
    assert r.answer[0].rdtype == dns.rdatatype.HINFO
    assert r.answer[0][0].cpu == b"RFC8482"
    r = ask(engine, "shop.route.example.net", "ANY")
    assert r.answer[0].rdtype == dns.rdatatype.HINFO


def test_shared_name_random_k_of_pool(engine: Engine) -> None:
    seen: Counter[str] = Counter()
    sets = set()
    for _ in range(400):
        ips = _ips(ask(engine, "route.example.net", "A"))
        assert len(ips) == 4
        assert len(set(ips)) == 4
        sets.add(tuple(ips))
        seen.update(ips)
    assert set(seen) == {str(ip) for ip in V4}  # every VIP is handed out
    # random per query: 8 random orders x 40 windows = 320 possible answers at any time
    assert len(sets) > 150
    assert max(seen.values()) < 3 * min(seen.values())  # roughly uniform


def test_app_answers_stay_in_the_shard_and_skip_pulled_vips() -> None:
    members = shard("shop", 1, V6, 8)
    pulled = {members[0]: VipState.DRAINED, members[1]: VipState.BLACKHOLED}
    e = Engine(config(), state(pulled=pulled), rng=random.Random(2))
    seen = set()
    for _ in range(300):
        ips = {ip_address(a) for a in _ips(ask(e, "shop.route.example.net", "AAAA"))}
        assert len(ips) == 4
        assert ips <= set(members)
        assert not ips & set(pulled)
        seen |= ips
    assert seen == set(members) - set(pulled)


def test_live_state_change_pulls_a_vip(engine: Engine) -> None:
    target = V4[0]
    assert any(str(target) in _ips(ask(engine, "route.example.net")) for _ in range(200))
    engine.apply(state(pulled={target: VipState.BLACKHOLED}, revision=2))
    for _ in range(300):
        assert str(target) not in _ips(ask(engine, "route.example.net"))


def test_fallback_pool_fills_from_the_ranking() -> None:
    members = shard("shop", 1, V4, 8)
    pulled = dict.fromkeys(members[:6], VipState.DRAINED)  # 2 healthy left, k = 4
    e = Engine(config(), state(pulled=pulled), rng=random.Random(3))
    ips = {ip_address(a) for a in _ips(ask(e, "shop.route.example.net"))}
    assert len(ips) == 4
    assert set(members[6:]) <= ips
    assert not ips & set(pulled)
    e = Engine(config(fallback="nodata"), state(pulled=pulled), rng=random.Random(3))
    r = ask(e, "shop.route.example.net")
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer
    # everything pulled: NODATA with either fallback
    gone = dict.fromkeys(V4, VipState.DRAINED)
    e = Engine(config(), state(pulled=gone), rng=random.Random(3))
    assert not ask(e, "route.example.net").answer
    assert ask(e, "route.example.net", "AAAA").answer


def test_apps_with_names_that_are_not_labels_are_skipped() -> None:
    e = Engine(config(), state(apps={"ok": 1, "Not_A.label": 2}))
    assert e.tables.skipped_apps == ("Not_A.label",)
    assert ask(e, "ok.route.example.net").answer


def test_customer_zone_apex_and_cname() -> None:
    e = Engine(config(), state(), rng=random.Random(4))
    members = set(shard("shop", 1, V4, 8))
    r = ask(e, "Shop.Example", "A")
    assert {ip_address(a) for a in _ips(r)} <= members
    assert (
        ask(e, "shop.example", "SOA").answer[0][0].mname.to_text() == "ns1.dns.route.example.net."
    )
    r = ask(e, "WWW.shop.example", "A")
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    assert r.answer[0].name.to_text() == "WWW.shop.example."
    assert r.answer[0][0].target.to_text() == "shop.route.example.net."
    assert r.answer[1].name.to_text() == "shop.route.example.net."
    assert {ip_address(a) for a in _ips(r)} <= members
    assert len(_ips(r)) == 4
    r = ask(e, "www.shop.example", "CNAME")
    assert len(r.answer) == 1
    r = ask(e, "www.shop.example", "TXT")
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    r = ask(e, "www.x.example", "A")  # app "gone" is not in the state
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    assert ask(e, "x.example", "A").rcode() == dns.rcode.NOERROR
    assert ask(e, "other.shop.example", "A").rcode() == dns.rcode.NXDOMAIN


def test_cookies() -> None:
    e = Engine(config(), state(), rng=random.Random(6), cookie_secret=b"s" * 32)
    opt = dns.edns.CookieOption(b"12345678", b"")
    r = ask(e, "route.example.net", use_edns=0, options=[opt], host="2001:db8::9")
    cookie = r.options[0]
    assert cookie.client == b"12345678"
    assert len(cookie.server) == 16
    again = dns.edns.CookieOption(b"12345678", cookie.server)
    ask(e, "route.example.net", use_edns=0, options=[again], host="2001:db8::9")
    assert e.counts[E.COOKIES_VALID] == 1
    ask(e, "route.example.net", use_edns=0, options=[again], host="2001:db8::10")
    assert e.counts[E.COOKIES_VALID] == 1  # bound to the client address


def test_rrl_drops_and_slips_but_not_with_valid_cookies() -> None:
    e = Engine(config(rrl={"responses_per_second": 5, "burst": 5, "slip": 2}), state())
    q = dns.message.make_query("route.example.net", "A").to_wire()
    outs = [e.respond(q, "192.0.2.7", 100.0) for _ in range(25)]
    full = [o for o in outs if o is not None and not o[2] & 0x02]
    slipped = [o for o in outs if o is not None and o[2] & 0x02]
    assert len(full) == 5
    assert len(slipped) == 10
    assert outs.count(None) == 10
    assert e.counts[E.RRL_SLIPPED] == 10
    assert e.respond(q, "192.0.3.7", 100.0) is not None  # another /24
    assert e.respond(q, "192.0.2.7", 101.0) is not None  # refilled a second later
    assert e.respond(q, "192.0.2.7", 101.0, tcp=True) is not None  # TCP is never limited


def test_reshuffle_changes_orders(engine: Engine) -> None:
    a = engine.lookup("route.example.net", 1)
    assert a is not None
    before = list(a.blobs)
    engine.handle_timer(10.0)
    assert a.blobs != before

    def records(blob: bytes) -> list[bytes]:
        return sorted(blob[i : i + a.rl] for i in range(0, a.n * a.rl, a.rl))

    assert records(a.blobs[1]) == records(before[1])  # same records, another order


def test_pool_is_whole_pool(engine: Engine) -> None:
    assert len(engine.state.vips) == len(POOL)
    assert len(V6) == 40


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_engine_never_raises_on_garbage(data: bytes) -> None:
    e = _FUZZ_ENGINE
    out = e.respond(data, "192.0.2.1", 0.0)
    if out is not None:
        r = dns.message.from_wire(out, question_only=True)
        assert r.id == int.from_bytes(data[:2], "big")
        assert out[2] & 0x80


_FUZZ_ENGINE = Engine(config(rrl={"responses_per_second": 1000}), state(), rng=random.Random(0))


def test_rrl_counts_nxdomain_per_zone() -> None:
    # a random-subdomain flood shares one bucket per zone, whatever the names' lengths
    e = Engine(config(rrl={"responses_per_second": 1, "burst": 3, "slip": 0}), state())
    outs = []
    for i in range(10):
        q = dns.message.make_query(f"{'x' * (i + 1)}.route.example.net", "A").to_wire()
        outs.append(e.respond(q, "192.0.2.7", 50.0))
    assert sum(o is not None for o in outs) == 3


_SLOW = Engine(config(), state(), rng=random.Random(0))
_FAST = Engine(config(), state(), rng=random.Random(0))
_SLOW.fast_path = False
_SEEDS = [
    dns.message.make_query(name, rdtype, **kw).to_wire()
    for name, rdtype, kw in (
        ("Route.example.net", "A", {}),
        ("shop.route.example.net", "AAAA", {"use_edns": 0}),
        (
            "www.shop.example",
            "A",
            {"use_edns": 0, "options": [dns.edns.CookieOption(b"8" * 8, b"")]},
        ),
        ("route.example.net", "SOA", {"use_edns": 1}),
    )
]


@settings(max_examples=3000)
@given(st.integers(0, 3), st.integers(0, 120), st.binary(min_size=0, max_size=6), st.booleans())
def test_fast_path_answers_exactly_like_the_full_scan(
    seed: int, at: int, noise: bytes, cut: bool
) -> None:
    base = _SEEDS[seed]
    i = at % (len(base) + 1)
    data = base[:i] if cut else base[:i] + noise + base[i + len(noise) :]
    _SLOW.rng.seed(1)
    _FAST.rng.seed(1)
    assert _FAST.respond(data, "192.0.2.1", 0.0) == _SLOW.respond(data, "192.0.2.1", 0.0)


def test_cookie_only_query_gets_a_server_cookie() -> None:
    # RFC 7873 5.4: QDCOUNT 0 with a COOKIE option
    e = Engine(config(), state(), cookie_secret=b"k" * 32)
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x0c\x00\x0a\x00\x08" + b"abcdefgh"
    query = b"\x12\x34\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" + opt
    out = e.respond(query, "192.0.2.1", 0.0)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.id == 0x1234
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.question
    assert r.options[0].client == b"abcdefgh"
    assert len(r.options[0].server) == 16
    no_cookie = b"\x12\x34\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" + opt[:9] + b"\x00\x00"
    out = e.respond(no_cookie, "192.0.2.1", 0.0)
    assert out is not None
    assert out[3] & 0x0F == dns.rcode.FORMERR


def test_app_names_are_built_on_first_query_and_kept_hot() -> None:
    e = Engine(config(), state(apps={"shop": 1, "blog": 2, "cold": 3}), rng=random.Random(8))
    key = b"\x04shop\x05route\x07example\x03net\x00"
    assert key not in e.tables.names
    members = set(shard("shop", 1, V4, 8))
    assert {ip_address(a) for a in _ips(ask(e, "SHOP.route.example.net"))} <= members
    assert key in e.tables.names
    # a state change rebuilds the hot names at once, without the pulled VIP
    pulled = dict.fromkeys(list(members)[:3], VipState.BLACKHOLED)
    e.apply(state(apps={"shop": 1, "blog": 2, "cold": 3}, pulled=pulled, revision=2))
    assert key in e.tables.names
    assert b"\x04cold\x05route\x07example\x03net\x00" not in e.tables.names
    for _ in range(100):
        assert not {ip_address(a) for a in _ips(ask(e, "shop.route.example.net"))} & set(pulled)
    # an app that left has no name; unknown labels and deeper names stay NXDOMAIN
    e.apply(state(apps={"blog": 2}, revision=3))
    assert ask(e, "shop.route.example.net").rcode() == dns.rcode.NXDOMAIN
    assert ask(e, "a.blog.route.example.net").rcode() == dns.rcode.NXDOMAIN
    assert ask(e, "blog.route.example.net").answer


def test_fallback_reaches_past_the_cached_ranks() -> None:
    order = ranking("shop", 1, V4)
    pulled = dict.fromkeys(order[:15], VipState.DRAINED)  # S = 8: ranks cached to 16
    e = Engine(config(), state(pulled=pulled), rng=random.Random(9))
    ips = {ip_address(a) for a in _ips(ask(e, "shop.route.example.net"))}
    assert ips == set(order[15:19])  # the next four healthy in the app's rank order


def test_reshuffle_budget_reaches_lazily_built_answers() -> None:
    e = Engine(config(), state(apps={f"a{i}": 0 for i in range(30)}), rng=random.Random(3))
    for i in range(30):
        ask(e, f"a{i}.route.example.net", "AAAA")
    t = e.tables
    assert len(t.sampled) > 10
    before = [list(a.blobs) for a in t.sampled]
    for tick in range(1, 40):
        t.reshuffle(tick, e.rng, budget=7)  # the slots cycle, the cursor walks the list
    assert all(a.blobs != b for a, b in zip(t.sampled, before, strict=True))


def test_reshuffle_work_is_spread_over_timer_calls() -> None:
    e = Engine(config(), state(apps={f"a{i}": 0 for i in range(40)}), rng=random.Random(3))
    for i in range(40):
        ask(e, f"a{i}.route.example.net", "A")
    total = len(e.tables.sampled)
    done: list[int] = []
    real = e.tables.reshuffle

    def counting(slot: int, rng: random.Random, budget: int | None = None) -> None:
        done.append(budget or 0)
        real(slot, rng, budget)

    e.tables.reshuffle = counting  # type: ignore[method-assign]
    e.handle_timer(0.0)
    for i in range(1, 21):  # two seconds of 0.1 s ticks, reshuffle_interval 1 s
        e.handle_timer(i / 10)
    assert 2 * total - 2 <= sum(done) <= 2 * total
    assert max(done) <= total / 5  # never all at once


def _cookie_request(version: int = 0, opcode: int = 0) -> bytes:
    opt = b"\x00" + b"\x00\x29" + b"\x04\xd0" + bytes([0, version, 0, 0])
    option = b"\x00\x0a\x00\x08" + b"\x01\x02\x03\x04\x05\x06\x07\x08"
    header = b"\x12\x34" + bytes([opcode << 3, 0]) + b"\x00\x00\x00\x00\x00\x00\x00\x01"
    return header + opt + len(option).to_bytes(2, "big") + option


def test_cookie_requests_badvers_other_opcodes_and_rrl() -> None:
    import dns.message
    import dns.rcode

    e = Engine(config(), state())
    ok = dns.message.from_wire(e.respond(_cookie_request(), "192.0.2.1", 0.0))
    assert ok.rcode() == dns.rcode.NOERROR
    assert not ok.question
    bad = e.respond(_cookie_request(version=1), "192.0.2.1", 0.0)
    assert bad is not None
    r = dns.message.from_wire(bad)
    assert r.rcode() == dns.rcode.BADVERS
    assert not r.question
    notify = e.respond(_cookie_request(opcode=4), "192.0.2.1", 0.0)
    assert notify is not None
    assert dns.message.from_wire(notify).rcode() != dns.rcode.NOERROR
    limited = Engine(config(rrl={"responses_per_second": 1, "burst": 2, "slip": 0}), state())
    got = [limited.respond(_cookie_request(), "192.0.2.1", 0.0) for _ in range(5)]
    assert sum(x is not None for x in got) == 2


def _malformed_cookie_query(question: bool = True) -> bytes:
    q = dns.message.make_query(
        "route.example.net", "A", use_edns=0, options=[dns.edns.GenericOption(10, b"short")]
    ).to_wire()
    if question:
        return q
    qend = 12 + len(b"\x05route\x07example\x03net\x00") + 4
    return q[:4] + b"\x00\x00" + q[6:12] + q[qend:]  # QDCOUNT 0, no question


def test_formerr_for_a_malformed_cookie_carries_an_opt_record(engine: Engine) -> None:
    """Issue 15 item 11: RFC 6891 6.1.1, an OPT record in the reply to an EDNS query, even
    a FORMERR for its COOKIE option (RFC 7873 5.2.2), with the question echoed."""
    out = engine.respond(_malformed_cookie_query(), "192.0.2.1", 0.0)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.rcode() == dns.rcode.FORMERR
    assert r.edns == 0
    assert r.payload == 1232
    assert r.question[0].name.to_text() == "route.example.net."
    out = engine.respond(_malformed_cookie_query(question=False), "192.0.2.1", 0.0)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.rcode() == dns.rcode.FORMERR
    assert r.edns == 0
    assert not r.question
    # a broken OPT record itself (its length past the message) is answered without one
    q = dns.message.make_query("route.example.net", "A", use_edns=0).to_wire()
    r = dns.message.from_wire(engine.respond(q[:-2] + b"\x00\x09", "192.0.2.1", 0.0) or b"")
    assert r.rcode() == dns.rcode.FORMERR
    assert r.edns < 0


COMPRESSIBLE = [
    ("route.example.net", "NS"),
    ("ROUTE.example.net", "SOA"),
    ("nothing.route.example.net", "A"),
    ("shop.route.example.net", "MX"),
    ("dns.route.example.net", "A"),
    ("shop.example", "TXT"),
    ("www.shop.example", "A"),
    ("www.shop.example", "TXT"),
    ("www.x.example", "A"),
    ("nothing.x.example", "AAAA"),
]


def test_names_in_record_data_are_compressed(engine: Engine) -> None:
    """Issue 15 item 11: names inside NS, SOA and CNAME data are compression pointers where
    the message holds them already: no longer than dnspython's own compressed encoding."""
    for name, rdtype in COMPRESSIBLE:
        for kw in ({}, {"use_edns": 0}):
            q = dns.message.make_query(name, rdtype, **kw)
            out = engine.respond(q.to_wire(), "192.0.2.1", 0.0)
            assert out is not None
            r = dns.message.from_wire(out)
            assert len(out) <= len(r.to_wire()), (name, rdtype, len(out), len(r.to_wire()))
    ns = engine.respond(dns.message.make_query("route.example.net", "NS").to_wire(), "h", 0.0)
    assert ns is not None
    assert len(ns) == 130  # 2 NS and 2 glue (197 bytes uncompressed)


def test_cname_to_a_name_without_the_type_carries_the_soa(engine: Engine) -> None:
    """Issue 15 item 11: www.<zone> CNAME <app>.<route zone>, asked for a type the target
    has not: NODATA after the CNAME, with the target zone's SOA so it is cached (RFC 2308
    2.2)."""
    for rdtype in ("TXT", "MX", "NS"):
        r = ask(engine, "www.shop.example", rdtype, use_edns=0)
        assert r.rcode() == dns.rcode.NOERROR
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]
        assert [rr.rdtype for rr in r.authority] == [dns.rdatatype.SOA]
        assert r.authority[0].name.to_text() == "route.example.net."
        assert r.authority[0].ttl == 30
    for rdtype in ("CNAME", "ANY"):  # the CNAME itself is the answer
        r = ask(engine, "www.shop.example", rdtype)
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME]
        assert not r.authority


def test_rrl_buckets_survive_a_rebuild() -> None:
    """Issue 15 item 12: a response class is the answer's name and type (the zone for
    NXDOMAIN), not the answer set's contents: pulling a VIP, or any rebuild, hands a
    limited client no fresh burst."""
    e = Engine(config(rrl={"responses_per_second": 1, "burst": 3, "slip": 0}), state())
    names = [("shop.route.example.net", "A"), ("route.example.net", "NS"),
             ("nothing.route.example.net", "A"), ("www.shop.example", "AAAA"),
             ("shop.route.example.net", "TXT")]  # fmt: skip
    queries = [dns.message.make_query(n, t).to_wire() for n, t in names]
    for q in queries:
        assert [e.respond(q, "192.0.2.7", 10.0) is not None for _ in range(4)] == [True] * 3 + [
            False
        ]
    victim = shard("shop", 1, V4, 8)[0]
    e.apply(state(pulled={victim: VipState.BLACKHOLED}, revision=2))
    e.apply(state(pulled={victim: VipState.BLACKHOLED}, revision=3))  # and an unchanged one
    for q in queries:
        assert e.respond(q, "192.0.2.7", 10.0) is None
    assert e.respond(queries[0], "192.0.2.7", 11.0) is not None  # refilled, as before


def test_shard_caches_stay_bounded_under_seed_and_app_churn() -> None:
    """Issue 15 item 12: re-sharding and app churn leave no (app, seed) ranking behind for
    ever: the caches hold about the apps of the current state."""
    e = Engine(config(customer_zones=[]), state(apps={"shop": 0}), rng=random.Random(3))
    for i in range(1, 400):
        apps = {"shop": i, f"tmp{i}": 0}  # a new seed for shop, an app that comes and goes
        e.apply(state(apps=apps, revision=i + 1))
        for app in apps:
            assert ask(e, f"{app}.route.example.net").rcode() == dns.rcode.NOERROR
    shards = e.builder.shards
    assert len(shards._top) <= 2 * 2 + 64
    assert len(shards._ptop) <= 2 * 2 + 64
