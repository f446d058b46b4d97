"""The controller's API in process, for the CLI tests of the API verbs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import sixpod.cli.tenants
from sixpod.inventory.lock import parse_lock
from sixpod.tenants.api import create_api
from sixpod.tenants.client import Client
from tenantkit import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "t" * 32
STATUS = {"active": True, "holder": "ctl1", "fence": 3, "epoch": 1, "published": 7,
          "guard": None, "error": None, "last_loop": 1.5}  # fmt: skip


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real API over a real SQLite store of examples/small.lock, that the API verbs reach;
    the path of a token file for it."""
    lock = parse_lock((EXAMPLES / "small.lock").read_text(), "small.lock")[0]
    store = open_store(f"sqlite:///{tmp_path / 'tenants.db'}", lock)
    app = create_api(store, token=TOKEN, status=lambda: STATUS)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with TestClient(app) as http:

        class InProcess(Client):
            def __init__(self, url: str, token: str) -> None:
                self.url = url
                self._http = http
                http.headers["Authorization"] = f"Bearer {token}"

            def close(self) -> None:
                pass

        monkeypatch.setattr(sixpod.cli.tenants, "Client", InProcess)
        yield token_file
    store.close()
