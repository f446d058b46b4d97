"""ICMPv6 echo probes of an exact size that no one may fragment (IPv6 routers never do; the
socket is told not to either, and to ignore what it learnt of the path before), over a raw
socket in the network namespace it runs in. Needs root (CAP_NET_RAW)."""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from ipaddress import IPv6Address

from sixpod.errors import SixpodError
from sixpod.monitoring.pathmtu import IPV6_HEADERS, Outcome, Result

IPV6_MTU_DISCOVER = 23
IPV6_PMTUDISC_PROBE = 3  # send at the interface MTU whatever the path cache says, never fragment
IPV6_MTU = 24
IPV6_DONTFRAG = 62
ECHO_REQUEST, ECHO_REPLY, PACKET_TOO_BIG = 128, 129, 2
DEST_UNREACHABLE, TIME_EXCEEDED = 1, 3
UNREACHABLE_CODES = {
    0: "no route to destination",
    1: "administratively prohibited",
    2: "beyond the scope of the source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed ingress/egress policy",
    6: "reject route to destination",
}


class ProbeError(SixpodError):
    """The probe cannot be sent at all (not root, an address not on this host)."""


class Prober:
    """One raw ICMPv6 socket to ``dst``, bound to ``src`` when given."""

    def __init__(
        self,
        dst: IPv6Address,
        src: IPv6Address | None = None,
        *,
        timeout: float = 1.0,
        tries: int = 2,
    ) -> None:
        self.dst, self.timeout, self.tries = dst, timeout, tries
        self.ident = (os.getpid() ^ int.from_bytes(os.urandom(2), "big")) & 0xFFFF
        self.seq = 0
        try:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except PermissionError:
            raise ProbeError("raw ICMPv6 sockets need root (CAP_NET_RAW)") from None
        try:
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE)
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
            if src is not None:
                self.sock.bind((str(src), 0))
            # not connected: a connected raw socket only reads what its peer sends, and a
            # Packet Too Big comes from a router on the way
            self.route = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            self.route.connect((str(dst), 9))  # reads the MTU this host sends at
        except OSError as e:
            self.sock.close()
            if e.errno == errno.EADDRNOTAVAIL:
                raise ProbeError(
                    f"{src} is not an address of this host: run the probe on the node that holds it"
                ) from None
            raise ProbeError(f"cannot reach {dst}: {e.strerror}") from None

    def close(self) -> None:
        self.sock.close()
        self.route.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def probe(self, size: int) -> Result:
        """Send echo requests of exactly ``size`` bytes (IPv6 header included) until one is
        answered, up to ``tries``; a Packet Too Big naming this probe ends it at once."""
        for _ in range(self.tries):
            self.seq = (self.seq + 1) & 0xFFFF
            head = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, self.ident, self.seq)
            try:
                self.sock.sendto(head + bytes(size - IPV6_HEADERS), (str(self.dst), 0))
            except OSError as e:
                if e.errno != errno.EMSGSIZE:
                    raise ProbeError(f"sending to {self.dst}: {e.strerror}") from None
                mtu = self.route.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
                return Result(size, Outcome.LOCAL, mtu, "this host")
            got = self._answer(size)
            if got is not None:
                return got
        return Result(size, Outcome.LOST)

    def _answer(self, size: int) -> Result | None:
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            data, (sender, *_rest) = self.sock.recvfrom(65535)
            if len(data) < 8:
                continue
            kind = data[0]
            if (
                kind == ECHO_REPLY
                and IPv6Address(sender.split("%")[0]) == self.dst
                and data[4:8] == struct.pack("!HH", self.ident, self.seq)
            ):
                return Result(size, Outcome.PASSED)
            if kind == PACKET_TOO_BIG and self._mine(data[8:]):
                (mtu,) = struct.unpack("!I", data[4:8])
                return Result(size, Outcome.TOO_BIG, mtu, sender.split("%")[0])
            if kind in (DEST_UNREACHABLE, TIME_EXCEEDED) and self._mine(data[8:]):
                what = (
                    f"Destination Unreachable ({UNREACHABLE_CODES.get(data[1], f'code {data[1]}')})"
                    if kind == DEST_UNREACHABLE
                    else "Time Exceeded (a routing loop?)"
                )
                return Result(size, Outcome.UNREACHABLE, None, sender.split("%")[0], what)
        return None

    def _mine(self, inner: bytes) -> bool:
        """The packet a Packet Too Big carries back is this probe's echo request."""
        if len(inner) < 48 or inner[6] != socket.IPPROTO_ICMPV6:
            return False
        if IPv6Address(inner[24:40]) != self.dst:
            return False
        return inner[40] == ECHO_REQUEST and inner[44:48] == struct.pack(
            "!HH", self.ident, self.seq
        )
