"""The wire codec: round trips against bytes captured from dnspython, every malformed case
answered with its rcode, and a property test: garbage in, only our own errors out."""

from __future__ import annotations

import contextlib

import dns.edns
import dns.flags
import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sixpod.razor import wire
from sixpod.razor.errors import BADVERS, FORMERR, NOTIMP, QueryError, Unanswerable
from sixpod.razor.wire import Edns, Query

# Captured with dnspython 2.x (make_query ... to_wire()).
PLAIN = bytes.fromhex(
    "12340100000100000000000005526f757465074578616d706c65034e45540000010001"
)  # id 0x1234, RD, Route.Example.NET A, no EDNS
COOKIE_DO = bytes.fromhex(
    "beef010000010000000000010473686f7005726f757465076578616d706c65036e657400001c0001"
    "00002904d000008000000c000a00080102030405060708"
)  # shop.route.example.net AAAA, EDNS 1232, DO, client cookie 0102030405060708
BIG_EDNS = bytes.fromhex(
    "000700000001000000000001076578616d706c6503636f6d00001000010000291000000000000000"
)  # id 7, no RD, example.com TXT, EDNS 4096


def test_parse_captured_plain() -> None:
    q = wire.parse_query(PLAIN)
    assert q == Query(id=0x1234, qname=b"\x05Route\x07Example\x03NET\x00", qtype=wire.A, rd=True)
    assert wire.format_query(q) == PLAIN


def test_parse_captured_edns_cookie() -> None:
    q = wire.parse_query(COOKIE_DO)
    assert q.edns == Edns(payload=1232, do=True, cookie=bytes.fromhex("0102030405060708"))
    assert q.qtype == wire.AAAA
    assert not q.cd
    assert wire.format_query(q) == COOKIE_DO


def test_parse_captured_big_payload() -> None:
    q = wire.parse_query(BIG_EDNS)
    assert q.edns is not None
    assert q.edns.payload == 4096
    assert not q.rd
    assert wire.format_query(q) == BIG_EDNS
    assert wire.scan(BIG_EDNS)[3] == 4096


@given(
    name=st.lists(st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True), min_size=0, max_size=6),
    qtype=st.integers(0, 65535),
    qid=st.integers(0, 65535),
    rd=st.booleans(),
    cd=st.booleans(),
    edns=st.none()
    | st.builds(
        Edns,
        payload=st.integers(0, 65535),
        do=st.booleans(),
        cookie=st.none() | st.binary(min_size=8, max_size=8) | st.binary(min_size=24, max_size=24),
    ),
)
def test_query_round_trip(
    name: list[str], qtype: int, qid: int, rd: bool, cd: bool, edns: Edns | None
) -> None:
    q = Query(qid, wire.name_to_wire(".".join(name) or "."), qtype, rd=rd, cd=cd, edns=edns)
    data = wire.format_query(q)
    assert wire.parse_query(data) == q
    # dnspython, the independent codec, reads the same question
    m = dns.message.from_wire(data)
    assert m.id == qid
    assert m.question[0].rdtype == qtype
    assert m.question[0].name.to_wire() == q.qname


def test_name_codec_mirrors() -> None:
    for name in ("Route.Example.NET", "a.b.c", "."):
        assert wire.name_from_wire(wire.name_to_wire(name)) == name
    assert wire.name_to_wire("example.net.") == b"\x07example\x03net\x00"
    with pytest.raises(ValueError, match="63"):
        wire.name_to_wire("a" * 64 + ".net")
    with pytest.raises(ValueError, match="255"):
        wire.name_to_wire(".".join(["a" * 63] * 4))
    assert wire.suffixes(b"\x01a\x02bc\x00") == [b"\x01a\x02bc\x00", b"\x02bc\x00", b"\x00"]


def _err(data: bytes) -> int:
    with pytest.raises(QueryError) as e:
        wire.scan(data)
    return e.value.rcode


def test_malformed_queries_name_their_rcode() -> None:
    head = PLAIN[:12]
    body = PLAIN[12:]
    assert _err(head) == FORMERR  # no question
    assert _err(PLAIN[:-1]) == FORMERR  # truncated qclass
    assert _err(PLAIN + b"\x00") == FORMERR  # trailing byte
    assert _err(head[:4] + b"\x00\x02" + head[6:] + body) == FORMERR  # two questions
    assert _err(head[:6] + b"\x00\x01" + head[8:] + body) == FORMERR  # an answer record
    assert _err(head[:12] + b"\xc0\x0c" + body[-4:]) == FORMERR  # compression pointer
    assert _err(head[:10] + b"\x00\x02" + body) == FORMERR  # two additional records
    assert _err(head[:2] + b"\x28\x00" + head[4:] + body) == NOTIMP  # opcode UPDATE
    assert _err(head + b"\x3f" + b"a" * 63 + b"\x00") == FORMERR  # name runs out
    long_name = (b"\x3f" + b"a" * 63) * 4 + b"\x00"
    assert _err(head + long_name + b"\x00\x01\x00\x01") == FORMERR  # > 255 bytes
    # OPT: wrong owner, wrong type, length mismatch, bad cookie, BADVERS
    opt = bytearray(COOKIE_DO)
    opt[-23] = 1  # owner no longer the root
    assert _err(bytes(opt)) == FORMERR
    assert _err(COOKIE_DO[:-1]) == FORMERR
    bad_cookie = COOKIE_DO[:-12] + b"\x00\x0a\x00\x07" + b"1234567"
    assert _err(bad_cookie[:-15] + b"\x00\x0b" + bad_cookie[-13:]) == FORMERR
    v1 = bytearray(BIG_EDNS)
    v1[-5] = 1  # EDNS version 1
    assert _err(bytes(v1)) == BADVERS


def test_unanswerable() -> None:
    with pytest.raises(Unanswerable):
        wire.scan(b"\x00" * 11)
    response = bytearray(PLAIN)
    response[2] |= 0x80
    with pytest.raises(Unanswerable):
        wire.scan(bytes(response))


def test_records_decode_with_dnspython() -> None:
    ip = __import__("ipaddress").ip_address("2001:db8::1")
    owner = wire.name_to_wire("x.example")
    rr = wire.record(owner, wire.AAAA, 30, wire.address_rdata(ip))
    msg = (
        b"\x00\x01\x84\x00\x00\x00\x00\x01\x00\x00\x00\x01"
        + rr
        + wire.opt_record(1232, do=True, options=wire.cookie_option(b"12345678"))
    )
    m = dns.message.from_wire(msg)
    assert str(m.answer[0]) == "x.example. 30 IN AAAA 2001:db8::1"
    assert m.payload == 1232
    assert m.ednsflags & dns.flags.DO
    assert m.options[0].otype == dns.edns.COOKIE


@settings(max_examples=3000)
@given(st.binary(max_size=600))
def test_garbage_in_only_our_errors_out(data: bytes) -> None:
    try:
        q = wire.parse_query(data)
    except (QueryError, Unanswerable):
        return
    assert wire.format_query(q)[:2] == data[:2]


@settings(max_examples=3000)
@given(st.binary(min_size=1, max_size=80), st.integers(0, 200))
def test_mutated_queries_only_our_errors_out(noise: bytes, at: int) -> None:
    for base in (PLAIN, COOKIE_DO, BIG_EDNS):
        i = at % len(base)
        data = base[:i] + noise + base[i + len(noise) :]
        with contextlib.suppress(QueryError, Unanswerable):
            wire.scan(data)


def test_compressor_points_at_the_longest_known_suffix() -> None:
    import dns.name

    c = wire.Compressor()
    msg = bytearray(b"\x00" * 12)
    question = wire.name_to_wire("Route.Example.NET")
    c.add(question, len(msg))
    msg += question
    for text in ("ns1.dns.route.example.net", "dns.route.example.net", "ns2.example.org",
                 "example.net", "www.example.org", "."):  # fmt: skip
        at = len(msg)
        msg += c.encode(wire.name_to_wire(text), at)
        got, used = dns.name.from_wire(bytes(msg), at)
        assert got == dns.name.from_text(text)
        assert used == len(msg) - at
    # the question in full, then only the labels no earlier name ends with, and a pointer
    assert len(msg) == 12 + 19 + (4 + 4 + 2) + 2 + (4 + 8 + 4 + 1) + 2 + (4 + 2) + 1
