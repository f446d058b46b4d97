"""Lab traffic: a TCP responder that answers with its node name, and a client for flows.

``python -m sixpod.lab.whoami serve NAME PORT`` listens on [::]:PORT (IPv4 too) and answers
every line with NAME. ``python -m sixpod.lab.whoami flows HOST PORT COUNT`` opens COUNT
long-lived connections (distinct source ports) and prints one JSON object per round: for each
flow, the node that answered, or null if the flow broke; rounds are triggered by lines on stdin.
"""

from __future__ import annotations

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
    if len(argv) >= 4 and argv[0] == "flows":
        flows(argv[1], int(argv[2]), int(argv[3]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
