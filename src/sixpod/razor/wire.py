"""DNS wire format, sans-IO: the question of a query in, pre-encodable records out.

Only what an authoritative server answering one question needs (RFC 1035, EDNS0 RFC 6891,
cookies RFC 7873). :func:`scan` is the hot path: it checks the header, walks the question
name and the one OPT record a query may carry, and returns offsets and numbers without
building objects. :func:`parse_query` and :func:`format_query` are the mirrored codec pair
built on it, for tests and tools; names have :func:`name_to_wire` / :func:`name_from_wire`.

Every malformed input raises :class:`~sixpod.razor.errors.QueryError` (answered with its
rcode) or :class:`~sixpod.razor.errors.Unanswerable` (dropped); nothing else escapes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from sixpod.razor.errors import BADVERS, NOTIMP, QueryError, Unanswerable

# Record types and classes (IANA DNS parameters).
A = 1
NS = 2
CNAME = 5
SOA = 6
HINFO = 13
TXT = 16
AAAA = 28
OPT = 41
IXFR = 251
AXFR = 252
ANY = 255
IN = 1

COOKIE = 10  # EDNS option code (RFC 7873)
HEADER = 12
MAX_NAME = 255
MIN_UDP = 512

_OPT_HEAD = struct.Struct(
    "!BHHBBHH"
)  # root name, type, class=payload, ext-rcode, version, flags, rdlen
_RR_HEAD = struct.Struct("!HHIH")


@dataclass(frozen=True, slots=True)
class Edns:
    """A query's OPT record: the client's UDP payload size, DO bit and cookie (RFC 6891, 7873)."""

    payload: int = 1232
    version: int = 0
    do: bool = False
    cookie: bytes | None = None  # client cookie (8 bytes), then the server cookie if any

    def __post_init__(self) -> None:
        if not 0 <= self.payload <= 0xFFFF or not 0 <= self.version <= 0xFF:
            raise ValueError("EDNS payload or version out of range")
        if self.cookie is not None and not _cookie_ok(len(self.cookie)):
            raise ValueError("a cookie is 8 bytes, or 16 to 40 with a server cookie")


@dataclass(frozen=True, slots=True)
class Query:
    """One DNS query: header id and flags, the question (name in wire form, case kept), EDNS."""

    id: int
    qname: bytes
    qtype: int
    qclass: int = IN
    rd: bool = False
    cd: bool = False
    edns: Edns | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.id <= 0xFFFF or not 0 <= self.qtype <= 0xFFFF:
            raise ValueError("id or qtype out of range")
        name_end(self.qname, 0)  # raises on a malformed name


def _cookie_ok(n: int) -> bool:
    return n == 8 or 16 <= n <= 40


def name_end(data: bytes, i: int) -> int:
    """Offset just past the uncompressed name at ``i``; QueryError if malformed."""
    n = len(data)
    start = i
    while True:
        if i >= n:
            raise QueryError("name runs past the end of the message")
        length = data[i]
        if length == 0:
            break
        if length > 63:
            raise QueryError("compressed or extended label in the question")
        i += length + 1
    i += 1
    if i - start > MAX_NAME:
        raise QueryError("name longer than 255 bytes")
    return i


def scan(data: bytes) -> tuple[int, int, int, int, int, bytes | None]:
    """Check a query and find its parts: ``(qend, qtype, qclass, payload, do, cookie)``.

    ``qend`` is the offset just past the question (``data[12:qend]`` is the question to
    echo); ``payload`` is the client's EDNS UDP size, or -1 without EDNS; ``do`` is 0x80
    when the DNSSEC OK bit is set. Raises :class:`QueryError` with the rcode to answer, or
    :class:`Unanswerable` for messages that get no answer.
    """
    n = len(data)
    if n < HEADER:
        raise Unanswerable("shorter than a DNS header")
    flags = data[2]
    if flags & 0x80:
        raise Unanswerable("a response, not a query")
    if flags & 0x78:
        raise QueryError("only standard queries are served", NOTIMP, edns=_has_opt(data))
    if data[4:10] != b"\x00\x01\x00\x00\x00\x00":
        raise QueryError("a query has one question and no answer or authority records")
    i = HEADER
    length = data[i] if n > i else 0
    while length:
        if length > 63:
            raise QueryError("compressed or extended label in the question")
        i += length + 1
        if i >= n:
            raise QueryError("question name runs past the end")
        length = data[i]
    if i - 11 > MAX_NAME:
        raise QueryError("name longer than 255 bytes")
    qend = i + 5
    if qend > n:
        raise QueryError("question truncated")
    qtype = data[i + 1] << 8 | data[i + 2]
    qclass = data[i + 3] << 8 | data[i + 4]
    arcount = data[10] << 8 | data[11]
    if arcount == 0:
        if qend != n:
            raise QueryError("trailing bytes after the question")
        return qend, qtype, qclass, -1, 0, None
    if arcount != 1:
        raise QueryError("at most one additional record (OPT) is accepted")
    return (qend, qtype, qclass, *scan_opt(data, qend))


def _has_opt(data: bytes) -> bool:
    """A message of another opcode carries a well-framed OPT record as its one additional
    record, after at most one well-formed question and no other records: its NOTIMP then
    carries Razor's OPT too (RFC 6891 7). Messages with other sections get a bare header."""
    if data[6:12] != b"\x00\x00\x00\x00\x00\x01" or data[4:6] not in (b"\x00\x00", b"\x00\x01"):
        return False
    qend = HEADER
    try:
        if data[5]:
            qend = name_end(data, HEADER) + 4
            if qend > len(data):
                return False
        scan_opt(data, qend)
    except QueryError as e:
        return e.edns  # framed right, the fault inside it
    return True


def scan_opt(data: bytes, qend: int) -> tuple[int, int, bytes | None]:
    """The OPT record that must fill ``data`` after ``qend``: ``(payload, do, cookie)``."""
    n = len(data)
    if n < qend + 11:
        raise QueryError("additional record truncated")
    _, rtype, payload, _ext, version, eflags, rdlen = _OPT_HEAD.unpack_from(data, qend)
    if data[qend] != 0 or rtype != OPT:
        raise QueryError("the additional record is not an OPT record at the root")
    end = qend + 11 + rdlen
    if end != n:
        raise QueryError("OPT record length does not match the message")
    # From here on the OPT record is there and framed right: errors say edns=True, so the
    # reply carries an OPT record too (RFC 6891 6.1.1).
    cookie = None
    j = qend + 11
    while j < end:
        if j + 4 > end:
            raise QueryError("EDNS option truncated", edns=True)
        code = data[j] << 8 | data[j + 1]
        olen = data[j + 2] << 8 | data[j + 3]
        j += 4
        if j + olen > end:
            raise QueryError("EDNS option runs past the OPT record", edns=True)
        if code == COOKIE:
            if cookie is not None or not _cookie_ok(olen):
                raise QueryError("malformed or repeated COOKIE option", edns=True)
            cookie = data[j : j + olen]
        j += olen
    if version != 0:
        raise QueryError(f"EDNS version {version} is not supported", BADVERS, edns=True)
    return max(payload, MIN_UDP), (eflags >> 8) & 0x80, cookie


def parse_query(data: bytes) -> Query:
    """The whole query as a value (the mirror of :func:`format_query`)."""
    qend, qtype, qclass, payload, do, cookie = scan(data)
    edns = None
    if payload >= 0:
        raw_payload = data[qend + 3] << 8 | data[qend + 4]
        edns = Edns(payload=raw_payload, version=0, do=bool(do), cookie=cookie)
    return Query(
        id=data[0] << 8 | data[1],
        qname=data[HEADER : qend - 4],
        qtype=qtype,
        qclass=qclass,
        rd=bool(data[2] & 0x01),
        cd=bool(data[3] & 0x10),
        edns=edns,
    )


def format_query(q: Query) -> bytes:
    """Wire bytes of a query (the mirror of :func:`parse_query`)."""
    flags = (0x0100 if q.rd else 0) | (0x0010 if q.cd else 0)
    out = struct.pack("!HHHHHH", q.id, flags, 1, 0, 0, 0 if q.edns is None else 1)
    out += q.qname + struct.pack("!HH", q.qtype, q.qclass)
    if q.edns is not None:
        e = q.edns
        opts = b"" if e.cookie is None else struct.pack("!HH", COOKIE, len(e.cookie)) + e.cookie
        out += opt_record(e.payload, do=e.do, options=opts, version=e.version)
    return out


# --- names -----------------------------------------------------------------------------


def name_to_wire(name: str) -> bytes:
    """``Example.NET`` or ``example.net.`` → wire labels, case kept (``.`` is the root)."""
    text = name.rstrip(".") if name != "." else ""
    out = bytearray()
    for label in text.split(".") if text else []:
        raw = label.encode("ascii")
        if not 1 <= len(raw) <= 63:
            raise ValueError(f"{name!r}: empty label or label longer than 63 bytes")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > MAX_NAME:
        raise ValueError(f"{name!r}: longer than 255 bytes in wire form")
    return bytes(out)


def name_from_wire(wire: bytes) -> str:
    """Wire labels → ``example.net`` (no trailing dot; ``.`` for the root); mirror of the above."""
    end = name_end(wire, 0)
    if end != len(wire):
        raise QueryError("bytes after the name")
    labels = []
    i = 0
    while wire[i]:
        labels.append(wire[i + 1 : i + 1 + wire[i]].decode("ascii", "backslashreplace"))
        i += wire[i] + 1
    return ".".join(labels) if labels else "."


def suffixes(wire: bytes) -> list[bytes]:
    """Every suffix of a (valid) wire name, longest first, ending with the root."""
    out = []
    i = 0
    while True:
        out.append(wire[i:])
        if wire[i] == 0:
            return out
        i += wire[i] + 1


# --- records ---------------------------------------------------------------------------


def pointer(offset: int) -> bytes:
    """A compression pointer to ``offset`` in the message (RFC 1035 4.1.4)."""
    if not 0 <= offset < 0x4000:
        raise ValueError("pointer offset out of range")
    return struct.pack("!H", 0xC000 | offset)


class Compressor:
    """Name compression while a message is laid out (RFC 1035 4.1.4): the offset of every
    name, and of each of its suffixes, already in the message, so a later name is written
    as its first labels and a pointer to the longest suffix known. Names compare without
    case (the question keeps the client's case; pointers into it are still right)."""

    def __init__(self) -> None:
        self._at: dict[bytes, int] = {}

    def add(self, name: bytes, offset: int, upto: int | None = None) -> None:
        """``name`` (wire labels) is in the message at ``offset``: its suffixes that start
        before ``upto`` (all of them by default) can be pointed at."""
        i = 0
        end = len(name) if upto is None else upto
        while i < end and name[i] and offset + i < 0x4000:
            self._at.setdefault(name[i:].lower(), offset + i)
            i += name[i] + 1

    def encode(self, name: bytes, offset: int) -> bytes:
        """The bytes of ``name`` (wire labels) written at ``offset``, compressed; its new
        suffixes are remembered for the names after it."""
        i = 0
        while name[i]:
            at = self._at.get(name[i:].lower())
            if at is not None:
                self.add(name, offset, upto=i)  # the labels written out here
                return name[:i] + pointer(at)
            i += name[i] + 1
        self.add(name, offset)
        return name


def record(owner: bytes, rtype: int, ttl: int, rdata: bytes, rclass: int = IN) -> bytes:
    """One resource record; ``owner`` is wire labels or a pointer."""
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def address_rdata(ip: IPv4Address | IPv6Address) -> bytes:
    return ip.packed


def soa_rdata(
    mname: bytes, rname: bytes, serial: int, refresh: int, retry: int, expire: int, minimum: int
) -> bytes:
    return mname + rname + struct.pack("!IIIII", serial, refresh, retry, expire, minimum)


def hinfo_rdata(cpu: bytes, os: bytes) -> bytes:
    return bytes([len(cpu)]) + cpu + bytes([len(os)]) + os


def opt_record(
    payload: int, *, do: bool = False, options: bytes = b"", version: int = 0, ext_rcode: int = 0
) -> bytes:
    """The OPT pseudo-record (RFC 6891 6.1.2)."""
    return _OPT_HEAD.pack(
        0, OPT, payload, ext_rcode, version, 0x8000 if do else 0, len(options)
    ) + (options)


def cookie_option(cookie: bytes) -> bytes:
    return struct.pack("!HH", COOKIE, len(cookie)) + cookie
