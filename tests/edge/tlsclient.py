"""TLS client for the edge tests, run inside the test's namespace: one JSON line per
connection with what the handshake gave (or the error), resuming the first session after.

    tlsclient.py HOST PORT SNI [--alpn h2,http/1.1] [--version 1.1|1.2|1.3] [--count N]
                 [--wait] [--request] [--later-sni NAME]

``--wait``: before each connection after the first, wait for a line on stdin (the test
changes something in between). ``--later-sni``: the connections after the first offer the
first one's session under this name instead (what a client bent on resuming does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import ssl
import sys


def context(version: str | None, alpn: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test compares fingerprints
    if version:
        v = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2,
             "1.3": ssl.TLSVersion.TLSv1_3}[version]  # fmt: skip
        if version == "1.1":
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = v
    if alpn:
        ctx.set_alpn_protocols(alpn.split(","))
    return ctx


def one(
    args: argparse.Namespace, ctx: ssl.SSLContext, session: ssl.SSLSession | None
) -> tuple[dict[str, object], ssl.SSLSession | None]:
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    name = args.later_sni if session is not None and args.later_sni else args.sni
    try:
        with socket.create_connection((args.host, args.port), timeout=5) as raw:
            assert raw.family == family
            sni = name or None
            with ctx.wrap_socket(raw, server_hostname=sni, session=session) as s:
                der = s.getpeercert(binary_form=True) or b""
                out: dict[str, object] = {
                    "ok": True,
                    "fingerprint": hashlib.sha256(der).hexdigest(),
                    "version": s.version(),
                    "alpn": s.selected_alpn_protocol(),
                    "reused": s.session_reused,
                }
                if args.request:  # HTTP/1.1: also brings TLS 1.3's tickets in
                    s.sendall(
                        f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
                    )
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                    out["status"] = int(data.split(b" ", 2)[1]) if data else 0
                return out, s.session
    except (OSError, ssl.SSLError) as e:
        return {"ok": False, "error": str(e)}, None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("sni")
    p.add_argument("--alpn")
    p.add_argument("--version")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--wait", action="store_true")
    p.add_argument("--request", action="store_true")
    p.add_argument("--later-sni")
    args = p.parse_args()
    ctx = context(args.version, args.alpn)
    session = None
    for i in range(args.count):
        if i and args.wait:
            sys.stdin.readline()
        out, new = one(args, ctx, session)
        print(json.dumps(out), flush=True)
        session = session or new


if __name__ == "__main__":
    main()
