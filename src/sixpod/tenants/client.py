"""A thin client of the controller API (what the ``sixpod app|domain|endpoint|vip`` verbs use)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from sixpod.tenants.errors import TenantError


class ApiError(TenantError):
    """The controller refused the call (its problem detail) or could not be reached."""

    def __init__(self, detail: str, status: int = 0) -> None:
        super().__init__(detail)
        self.status = status


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ApiError(f"controller at {self.url} unreachable: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApiError(f"{r.status_code}: {detail}", r.status_code)
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
