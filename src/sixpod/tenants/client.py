"""The one client of the controller API: the ``sixpod app|domain|endpoint|vip`` verbs and
Razor's re-shard action both call the controller through :class:`Client`.

Bearer-token auth, one timeout for every call, no retries (a change is sent once; the caller
decides what a failure means). httpx errors are translated here, once: callers see only
:class:`ApiError`, with the HTTP status (0 when the controller could not be reached).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.tenants.errors import TenantError


class ApiError(TenantError):
    """The controller refused the call (its problem detail) or could not be reached.

    ``status``: the HTTP status, 0 when unreachable; ``reason``: the problem's detail (the
    body's text when it is not a problem), or why the controller could not be reached.
    """

    def __init__(self, detail: str, status: int = 0, *, reason: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason or detail


class Client:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``timeout``: seconds for each call; ``transport``: for tests."""
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The controller's 2xx response; :class:`ApiError` for anything else."""
        unreachable: ExceptionMap = {
            httpx.HTTPError: lambda e: ApiError(
                f"controller at {self.url} unreachable: {e}", reason=str(e)
            )
        }
        with map_exceptions(unreachable):
            r = self._http.request(method, path, **kwargs)
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except (ValueError, AttributeError):  # not JSON, or not a problem object
                detail = r.text
            raise ApiError(f"{r.status_code}: {detail}", r.status_code, reason=str(detail))
        return r

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON answer (for an empty one, the revision it was made at)."""
        r = self.request(method, path, **kwargs)
        if r.status_code == 204 or not r.content:
            return {"revision": int(r.headers.get("X-Sixpod-Revision", 0))}
        return r.json()

    def pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = None
        while True:
            query = {**params, "limit": 1000, **({"after": after} if after else {})}
            page = self.call("GET", path, params=query)
            items += page["items"]
            after = page.get("next")
            if not after:
                return items


def seg(text: str) -> str:
    """One URL path segment (addresses and hostnames are quoted, ``/`` included)."""
    return quote(text, safe="")
