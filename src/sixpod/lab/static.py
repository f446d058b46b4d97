"""The lab's stand-in for an edge node's health endpoint: files of a directory over HTTP.

``python -m sixpod.lab.static DIR HOST PORT`` serves DIR (``healthz`` there or not is the
node's health) like ``python -m http.server``, but logs through :mod:`sixpod.logs`, so its
lines carry the same timestamps as every other daemon's in the lab.
"""

from __future__ import annotations

import functools
import http.server
import logging
import socket
import sys
from typing import Any

from sixpod import logs

log = logging.getLogger("sixpod.lab.static")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("request from %s failed", client_address)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    directory, host, port = argv
    logs.setup("static")
    handler = functools.partial(_Handler, directory=directory)
    with _Server((host, int(port)), handler) as server:
        log.info("serving %s on [%s]:%s", directory, host, port)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
