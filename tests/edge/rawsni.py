"""A TLS 1.2 ClientHello with any SNI bytes, built by hand (Python's ssl refuses NUL, raw
non-ASCII and over-long names): prints one JSON line, the SHA-256 fingerprint of the
certificate the server sent (in clear in TLS 1.2) or the alert it answered with.

    rawsni.py HOST PORT SNI_HEX   (SNI_HEX "-": no server_name extension at all)
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import sys


def _vec(data: bytes, size: int) -> bytes:
    return len(data).to_bytes(size, "big") + data


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def client_hello(sni: bytes | None) -> bytes:
    suites = b"\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"  # ECDHE-{ECDSA,RSA}-AES{128,256}-GCM
    exts = b""
    if sni is not None:
        exts += _ext(0, _vec(b"\x00" + _vec(sni, 2), 2))
    exts += _ext(10, _vec(b"\x00\x1d\x00\x17\x00\x18", 2))  # x25519, P-256, P-384
    exts += _ext(11, _vec(b"\x00", 1))
    exts += _ext(13, _vec(b"\x04\x03\x05\x03\x08\x04\x04\x01", 2))
    body = b"\x03\x03" + os.urandom(32) + _vec(b"", 1) + _vec(suites, 2) + b"\x01\x00"
    body += _vec(exts, 2)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + _vec(hs, 2)


def _read(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def served(host: str, port: int, sni: bytes | None) -> dict[str, object]:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(client_hello(sni))
        handshake = b""
        try:
            while True:
                kind, _, length = struct.unpack("!BHH", _read(s, 5))
                record = _read(s, length)
                if kind == 21:
                    return {"ok": False, "alert": record[1]}
                if kind != 22:
                    return {"ok": False, "error": f"record type {kind}"}
                handshake += record
                while len(handshake) >= 4:
                    size = int.from_bytes(handshake[1:4], "big")
                    if len(handshake) < 4 + size:
                        break
                    msg, handshake = handshake[: 4 + size], handshake[4 + size :]
                    if msg[0] == 11:  # Certificate: list length (3), first cert length (3)
                        first = int.from_bytes(msg[7:10], "big")
                        der = msg[10 : 10 + first]
                        return {"ok": True, "fingerprint": hashlib.sha256(der).hexdigest()}
        except (EOFError, ConnectionResetError):
            return {"ok": False, "error": "closed"}


if __name__ == "__main__":
    raw = None if sys.argv[3] == "-" else bytes.fromhex(sys.argv[3])
    print(json.dumps(served(sys.argv[1], int(sys.argv[2]), raw)))
