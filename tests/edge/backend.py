"""A test container app: answers with its name, the request headers and the body length.

``/status/NNN`` answers with that status; ``/slow/SECONDS`` answers after a pause; a request
with ``Upgrade: websocket`` gets ``101`` and then an echo of every byte it sends.
"""

import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while data := self.connection.recv(4096):
                self.connection.sendall(data)
            self.close_connection = True
            return
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        elif self.path.startswith("/slow/"):
            time.sleep(float(self.path.split("/")[2]))
        length = int(self.headers.get("Content-Length") or 0)
        got = len(self.rfile.read(length)) if length else 0
        body = json.dumps(
            {
                "name": sys.argv[3],
                "headers": dict(self.headers.items()),
                "body_bytes": got,
                "peer_port": self.client_address[1],
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
