"""Prometheus ``/metrics`` over HTTP on one or more addresses: every daemon's one server.

A daemon listens on its node's global IPv6 address (where Prometheus scrapes it) and on
``[::1]`` (the node's own tools, the lab). Each socket is bound with ``IP_FREEBIND``: a
daemon started at boot, before its address has finished duplicate address detection or
its uplink is up, binds all the same and answers once the address is there (binding a
tentative IPv6 address otherwise fails with ``EADDRNOTAVAIL``). Foreign errors are
translated here, once: a port that is taken is a :class:`MetricsServerError` naming it.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from sixpod import addr
from sixpod.errors import SixpodError

__all__ = ["MetricsServer", "MetricsServerError"]

_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux; also applies to IPv6 sockets


class MetricsServerError(SixpodError):
    """A metrics address cannot be listened on (the port is taken, the address is not
    IPv6 or IPv4 text the kernel takes): the environment's fault. Exit code 1."""

    exit_code = 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


class MetricsServer:
    """``/metrics`` of ``registry`` on every endpoint, each in a daemon thread.

    :meth:`start` binds them all or none; :meth:`stop` closes them (safe to call twice).
    """

    def __init__(self, registry: CollectorRegistry, endpoints: Sequence[addr.Endpoint]) -> None:
        self.registry = registry
        self.endpoints = tuple(endpoints)
        self._servers: list[_Server] = []

    def start(self) -> None:
        handler: Any = MetricsHandler.factory(self.registry)
        try:
            for e in self.endpoints:
                family = socket.AF_INET6 if e.ip.version == 6 else socket.AF_INET
                server_class = type("_Bound", (_Server,), {"address_family": family})
                try:
                    server = server_class((addr.format_ip(e.ip), e.port), handler)
                except OSError as err:
                    why = err.strerror or str(err)
                    if err.errno == errno.EADDRINUSE:
                        why = "the port is taken"
                    raise MetricsServerError(
                        f"metrics: cannot listen on {addr.format_endpoint(e)}: {why}"
                    ) from None
                self._servers.append(server)
                name = f"metrics {addr.format_endpoint(e)}"
                threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        except MetricsServerError:
            self.stop()
            raise

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()
