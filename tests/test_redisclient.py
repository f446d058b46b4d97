"""The one Redis client factory: address text through sixpod.addr, the password file, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sixpod import addr, redisclient


def _kwargs(client: object) -> dict[str, object]:
    return dict(client.connection_pool.connection_kwargs)  # type: ignore[attr-defined]


def test_sync_client_options(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    c = redisclient.RedisTarget(
        addr.parse_endpoint("[2001:db8::6]:6380"), password_file=str(secret), decode=True
    ).client()
    got = _kwargs(c)
    assert (got["host"], got["port"], got["password"]) == ("2001:db8::6", 6380, "s3cret")
    assert got["socket_timeout"] == got["socket_connect_timeout"] == 5.0
    assert got["decode_responses"] is True
    c.close()


def test_async_client_keeps_the_zone_and_can_skip_retries() -> None:
    ep = addr.parse_endpoint("[fe80::1%eth0]:6379", allow_zone=True)
    c = redisclient.RedisTarget(ep, timeout=1.5, connect_timeout=0.5, retry=False).async_client()
    got = _kwargs(c)
    assert got["host"] == "fe80::1%eth0"
    assert (got["socket_timeout"], got["socket_connect_timeout"]) == (1.5, 0.5)
    assert got["retry"].get_retries() == 0  # type: ignore[attr-defined]
    assert got["password"] is None


def test_password_and_password_file_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        redisclient.RedisTarget(addr.parse_endpoint("[::1]:6379"), password="a", password_file="b")
    with pytest.raises(FileNotFoundError):
        redisclient.RedisTarget(
            addr.parse_endpoint("[::1]:6379"), password_file=str(tmp_path / "x")
        ).client()
