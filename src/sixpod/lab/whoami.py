"""Lab traffic: a TCP responder that answers with its node name, a client for flows, and
the HTTP app the lab's containers run.

``python -m sixpod.lab.whoami serve NAME PORT`` listens on [::]:PORT (IPv4 too) and answers
every line with NAME. ``python -m sixpod.lab.whoami flows HOST PORT COUNT`` opens COUNT
long-lived connections (distinct source ports) and prints one JSON object per round: for each
flow, the node that answered, or null if the flow broke; rounds are triggered by lines on stdin.
``python -m sixpod.lab.whoami http CONTAINER NODE PORT`` serves HTTP on [::]:PORT: every GET
or HEAD is answered with a JSON object naming the container and node that answered, the
request's method, path and headers (in order, as received), and the peer's address.
``python -m sixpod.lab.whoami get ADDRESS PORT HOST COUNT [CAFILE]`` makes COUNT GET requests
to ADDRESS, each on a new connection (a new source port: a new ECMP hash), with ``Host: HOST``
(over HTTPS with SNI HOST and only CAFILE trusted, when given), and prints one JSON list: each
answer's status and JSON body (or the error).
``python -m sixpod.lab.whoami resolve SERVER NAME TYPE`` asks SERVER (port 53, UDP) for
NAME's TYPE records with dnspython (an independent client) and prints the answer as JSON:
rcode, the CNAME chain and the addresses.
"""

from __future__ import annotations

import http.server
import json
import logging
import socket
import socketserver
import sys
from typing import Any

from sixpod import logs


class _Handler(socketserver.StreamRequestHandler):
    name = b"?"

    def handle(self) -> None:
        for _ in self.rfile:
            self.wfile.write(self.name + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logging.getLogger("sixpod.lab.whoami").exception("flow from %s failed", client_address)


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    container = "?"
    node = "?"
    protocol_version = "HTTP/1.1"  # keep-alive, as the edge's upstream pool expects

    def do_GET(self) -> None:
        body = answer(
            container=self.container,
            node=self.node,
            method=self.command,
            path=self.path,
            headers=list(self.headers.items()),
            peer=self.client_address[0],
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logging.getLogger("sixpod.lab.whoami").info("%s %s", self.address_string(), format % args)


def answer(
    *, container: str, node: str, method: str, path: str, headers: list[tuple[str, str]], peer: str
) -> bytes:
    """The app's answer (pure): who answered, and the request as it arrived."""
    doc = {
        "container": container,
        "node": node,
        "method": method,
        "path": path,
        "headers": [[k, v] for k, v in headers],
        "peer": peer,
    }
    return json.dumps(doc).encode() + b"\n"


class _HttpServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


def serve_http(container: str, node: str, port: int) -> None:
    logs.setup(f"app {container}")
    _HttpHandler.container, _HttpHandler.node = container, node
    with _HttpServer(("::", port), _HttpHandler) as server:
        server.serve_forever()


def get(
    address: str, port: int, host: str, count: int, cafile: str = "", timeout: float = 3.0
) -> list[Any]:
    """With ``cafile``: HTTPS, SNI ``host``, the certificate checked against ``cafile``."""
    import http.client
    import ssl

    class SniConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection((self.host, self.port), self.timeout)
            assert ctx is not None
            self.sock = ctx.wrap_socket(sock, server_hostname=host)

    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    out: list[Any] = []
    for _ in range(count):
        conn: http.client.HTTPConnection
        if ctx is not None:
            conn = SniConnection(address, port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(address, port, timeout=timeout)
        try:
            conn.request("GET", "/", headers={"Host": host, "User-Agent": "sixpod-lab"})
            resp = conn.getresponse()
            body = resp.read()
            try:
                doc = json.loads(body)
            except ValueError:
                doc = body.decode(errors="replace")[:200]
            out.append({"status": resp.status, "body": doc})
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            out.append({"status": 0, "error": str(e) or type(e).__name__})
        finally:
            conn.close()
    return out


def resolve(server: str, name: str, rdtype: str) -> dict[str, Any]:
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    query = dns.message.make_query(name, rdtype)
    resp = dns.query.udp(query, server, timeout=3)
    cnames = [
        str(rr.target)
        for rrset in resp.answer
        if rrset.rdtype == dns.rdatatype.CNAME
        for rr in rrset
    ]
    addresses = [
        rr.address
        for rrset in resp.answer
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for rr in rrset
    ]
    return {"rcode": dns.rcode.to_text(resp.rcode()), "cnames": cnames, "addresses": addresses}


def serve(name: str, port: int) -> None:
    logs.setup(f"whoami {name}")
    _Handler.name = name.encode()
    with _Server(("::", port), _Handler) as server:
        server.serve_forever()


def ask(sock: socket.socket) -> str | None:
    try:
        sock.sendall(b"?\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:
                return None
            data += chunk
        return data.decode().strip()
    except OSError:
        return None


def flows(host: str, port: int, count: int, timeout: float = 3.0) -> None:
    socks: list[socket.socket | None] = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection((host, port), timeout=timeout))
        except OSError:
            socks.append(None)
    for _line in sys.stdin:
        answers: list[str | None] = []
        for i, sock in enumerate(socks):
            who = ask(sock) if sock is not None else None
            if who is None and sock is not None:
                sock.close()
                socks[i] = None
            answers.append(who)
        print(json.dumps(answers), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
        return 0
    if len(argv) >= 5 and argv[0] == "get":
        cafile = argv[5] if len(argv) > 5 else ""
        print(json.dumps(get(argv[1], int(argv[2]), argv[3], int(argv[4]), cafile)))
        return 0
    if len(argv) >= 4 and argv[0] == "resolve":
        print(json.dumps(resolve(argv[1], argv[2], argv[3])))
        return 0
    if len(argv) >= 4 and argv[0] == "http":
        serve_http(argv[1], argv[2], int(argv[3]))
        return 0
    if len(argv) >= 4 and argv[0] == "flows":
        flows(argv[1], int(argv[2]), int(argv[3]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
