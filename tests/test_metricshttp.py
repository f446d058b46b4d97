"""/metrics on several addresses, one of them not (yet) on this machine."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from sixpod import addr
from sixpod.configtypes import ConfigModel, MetricsListen
from sixpod.metricshttp import MetricsServer, MetricsServerError


def _free_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port: int = s.getsockname()[1]
        return port


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("sixpod_test_answer", "the answer", registry=registry).set(42)
    return registry


def test_serves_on_loopback_and_binds_an_address_that_is_not_up_yet() -> None:
    port = _free_port()
    # 2001:db8::/32 is never on this machine: a node's global address before DAD ends, or
    # before its uplink comes up, is bound all the same (IP_FREEBIND) and served once it is.
    absent = addr.parse_endpoint(f"[2001:db8:ffff::9]:{port}")
    server = MetricsServer(_registry(), (addr.parse_endpoint(f"[::1]:{port}"), absent))
    try:
        server.start()
        text = httpx.get(f"http://[::1]:{port}/metrics", timeout=5).text
        assert "sixpod_test_answer 42.0" in text
        assert server.endpoints == (addr.parse_endpoint(f"[::1]:{port}"), absent)
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://[::1]:{port}/metrics", timeout=2)


def test_a_taken_port_is_our_error_and_nothing_keeps_listening() -> None:
    port, other = _free_port(), _free_port()
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", port))
        taken.listen()
        server = MetricsServer(
            _registry(),
            (addr.parse_endpoint(f"[::1]:{other}"), addr.parse_endpoint(f"[::1]:{port}")),
        )
        with pytest.raises(MetricsServerError, match=rf"\[::1\]:{port}"):
            server.start()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://[::1]:{other}/metrics", timeout=2)


class _Cfg(ConfigModel):
    metrics: MetricsListen = ()


def test_metrics_in_a_config_is_one_endpoint_or_a_list() -> None:
    one = _Cfg.model_validate({"metrics": "[::1]:9180"})
    assert one.metrics == (addr.parse_endpoint("[::1]:9180"),)
    two = _Cfg.model_validate({"metrics": ["[::1]:9180", "[2001:DB8::2]:9180"]})
    assert two.metrics[1] == addr.parse_endpoint("[2001:db8::2]:9180")
    assert _Cfg.model_validate({}).metrics == ()
    assert _Cfg.model_validate({"metrics": None}).metrics == ()
    with pytest.raises(ValueError, match="more than once"):
        _Cfg.model_validate({"metrics": ["[::1]:9180", "[::1]:9180"]})
