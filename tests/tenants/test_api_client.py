"""The one client of the controller API: auth header, problem details, unreachable is status 0."""

from __future__ import annotations

import httpx
import pytest

from sixpod.tenants.client import ApiError, Client


def _client(handler: object) -> Client:
    return Client("http://[::1]:8700/", "t0k", transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_answers_and_the_bearer_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer t0k"
        if request.method == "DELETE":
            return httpx.Response(204, headers={"X-Sixpod-Revision": "7"})
        return httpx.Response(200, json={"name": "shop"})

    with _client(handler) as c:
        assert c.url == "http://[::1]:8700"
        assert c.call("GET", "/v1/apps/shop") == {"name": "shop"}
        assert c.call("DELETE", "/v1/apps/shop") == {"revision": 7}


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(409, json={"detail": "churn guard: too many removals"}), "churn guard"),
        (httpx.Response(502, text="bad gateway"), "bad gateway"),
        (httpx.Response(500, json=["not", "a", "problem"]), '["not"'),
    ],
)
def test_refusals_carry_status_and_reason(response: httpx.Response, reason: str) -> None:
    with _client(lambda request: response) as c, pytest.raises(ApiError) as e:
        c.call("PUT", "/v1/vips/x")
    assert e.value.status == response.status_code
    assert e.value.reason.startswith(reason)
    assert e.value.detail.startswith(f"{response.status_code}: ")


def test_unreachable_is_status_zero() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with _client(down) as c, pytest.raises(ApiError) as e:
        c.request("GET", "/v1/apps")
    assert e.value.status == 0
    assert e.value.reason == "connection refused"
    assert "unreachable" in e.value.detail
