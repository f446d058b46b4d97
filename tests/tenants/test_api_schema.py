"""Schemathesis over the served OpenAPI spec: every operation, generated from the spec, gets
an answer the spec documents (status, content type, schema, headers), never a 5xx. Bounded:
25 examples per operation. Not checked: that schema-valid data is always accepted, since the
spec cannot say everything the store checks (an endpoint inside its node's /64, a VIP of
the pool); those answers are 422 problems that name what is wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sixpod.tenants.api import create_api
from sixpod.tenants.model import AppSpec, EndpointSpec
from tenantkit import open_store

TOKEN = "s" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _app() -> Any:
    from sixpod.inventory.lock import parse_lock

    lock = parse_lock((EXAMPLES / "small.lock").read_text(), "small.lock")[0]
    db = Path(tempfile.mkdtemp(prefix="sixpod-schemathesis-")) / "tenants.db"
    store = open_store(f"sqlite:///{db}", lock)
    store.create_app(AppSpec("shop"))
    store.attach_domain("shop.example.com", "shop")
    base = lock.nodes["edge1"].prefix
    store.set_endpoints("shop", [EndpointSpec.parse(str(base[i]), 80) for i in range(1, 9)])
    return create_api(store, token=TOKEN)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.auth()
class _Token:
    """The bearer token on every generated call (the spec's security scheme)."""

    def get(self, case: Any, ctx: Any) -> str:
        return TOKEN

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@pytest.mark.filterwarnings("ignore")
def test_the_api_answers_what_its_spec_says(case: Any) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
