"""DNS cookies (RFC 7873) with the interoperable server cookie layout of RFC 9018.

Server cookie: version 1, three reserved bytes, a 32-bit timestamp (seconds) and an 8-byte
hash of (client cookie, version, reserved, timestamp, client address) under a secret shared
by every server of the anycast set. RFC 9018 names SipHash-2-4; the standard library has no
keyed SipHash, so Razor uses keyed BLAKE2b, which every Razor instance computes alike.
A valid server cookie proves the client owns its source address; such clients bypass RRL.
"""

from __future__ import annotations

import hashlib
import struct

VALID_FOR = 3600  # seconds a server cookie is accepted (RFC 9018 4.3)
REFRESH_AFTER = 1800  # seconds after which a fresh one is handed out


class Cookies:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cookie secret must be at least 16 bytes")
        self._key = hashlib.blake2b(secret, digest_size=32).digest()

    def _hash(self, client: bytes, head: bytes, address: bytes) -> bytes:
        return hashlib.blake2b(client + head + address, key=self._key, digest_size=8).digest()

    def server_cookie(self, client: bytes, address: bytes, now: int) -> bytes:
        head = struct.pack("!B3xI", 1, now & 0xFFFFFFFF)
        return head + self._hash(client, head, address)

    def valid(self, cookie: bytes, address: bytes, now: int) -> bool:
        """Whether ``cookie`` (client + server part) carries a server cookie we made lately."""
        if len(cookie) != 24 or cookie[8] != 1:
            return False
        (stamp,) = struct.unpack_from("!I", cookie, 12)
        age = (now - stamp) & 0xFFFFFFFF
        if age > VALID_FOR and (stamp - now) & 0xFFFFFFFF > 300:
            return False
        return cookie[16:] == self._hash(cookie[:8], cookie[8:16], address)

    def answer(self, cookie: bytes, address: bytes, now: int) -> tuple[bytes, bool]:
        """(the COOKIE value to send back, whether the client's server cookie was valid)."""
        client = cookie[:8]
        ok = self.valid(cookie, address, now)
        if ok:
            (stamp,) = struct.unpack_from("!I", cookie, 12)
            if (now - stamp) & 0xFFFFFFFF < REFRESH_AFTER:
                return cookie, True
        return client + self.server_cookie(client, address, now), ok
