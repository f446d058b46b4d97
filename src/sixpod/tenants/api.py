"""The controller's HTTP API (FastAPI): apps, domains, endpoints, VIP and node states.

Every error is an RFC 9457 problem (``application/problem+json``) whose ``detail`` names what
is wrong; a rejected request changes nothing. Writes answer with ``X-Sixpod-Revision``, the
store revision that includes them (wait for a reader to reach it to know the edges have it).
Single objects carry an ``ETag`` of their revision; ``If-Match`` makes a write conditional.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sixpod import __version__, addr
from sixpod.inventory.load import operator_message
from sixpod.tenants import issuance, statuspage
from sixpod.tenants.errors import InvalidInput, NotFound, TenantError
from sixpod.tenants.model import (
    PAGE_MAX,
    PORT_MAX,
    PORT_MIN,
    SHARD_SEED_MAX,
    TEXT_MAX,
    WEIGHT_DEFAULT,
    WEIGHT_MAX,
    WEIGHT_MIN,
    AppPatch,
    AppRecord,
    AppSpec,
    CertInfo,
    DomainRecord,
    EndpointRecord,
    EndpointRef,
    EndpointSpec,
    EndpointState,
    NodeRecord,
    NodeSpec,
    NodeState,
    VipRecord,
    VipSpec,
    VipState,
)
from sixpod.tenants.store import Page, Store, Written

PROBLEM = "application/problem+json"
MAX_BODY = 4 * 1024 * 1024


def problem(status: int, kind: str, detail: str, instance: str) -> JSONResponse:
    titles = {
        400: "Bad request",
        401: "Unauthorized",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        412: "Precondition failed",
        413: "Content too large",
        422: "Invalid input",
        503: "Unavailable",
    }
    body = {
        "type": f"urn:sixpod:problem:{kind}",
        "title": titles.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class _Body(BaseModel):
    """A request body's wire schema: its shape and the bounds of :mod:`sixpod.tenants.model`,
    stated so the OpenAPI document shows them. The rules are the typed values' (AppSpec,
    EndpointSpec, VipSpec, ...): each handler builds them, and the store takes nothing else."""

    model_config = ConfigDict(extra="forbid")


class AppCreate(_Body):
    name: StrictStr = Field(description="one DNS label: a-z, 0-9, inner hyphens")
    owner: StrictStr = Field(default="", max_length=TEXT_MAX)
    shard_seed: StrictInt = Field(default=0, ge=0, le=SHARD_SEED_MAX)
    settings: dict[str, Any] = Field(default_factory=dict)


class AppUpdate(_Body):
    owner: StrictStr | None = Field(default=None, max_length=TEXT_MAX)
    shard_seed: StrictInt | None = Field(default=None, ge=0, le=SHARD_SEED_MAX)
    settings: dict[str, Any] | None = None


class EndpointIn(_Body):
    address: StrictStr = Field(description="the container's IPv6 address, inside its node's /64")
    port: StrictInt = Field(ge=PORT_MIN, le=PORT_MAX)
    weight: StrictInt = Field(default=WEIGHT_DEFAULT, ge=WEIGHT_MIN, le=WEIGHT_MAX)
    state: EndpointState = EndpointState.UP
    node: StrictStr | None = Field(default=None, description="checked against pod.lock if given")


class EndpointsChange(_Body):
    endpoints: list[EndpointIn] = Field(default_factory=list, description="add or update")
    remove: list[StrictStr] = Field(default_factory=list, description="[address]:port texts")
    force: bool = Field(default=False, description="pass the churn guard")


class DomainAttach(_Body):
    app: StrictStr


class CertUpload(_Body):
    chain: StrictStr = Field(
        max_length=65536, description="PEM certificates: the site's first, then each issuer"
    )
    key: StrictStr = Field(
        max_length=65536, description="the unencrypted PEM private key; never returned"
    )


class VipChange(_Body):
    state: VipState
    reason: StrictStr = Field(default="", max_length=TEXT_MAX)


class NodeChange(_Body):
    state: NodeState
    reason: StrictStr = Field(default="", max_length=TEXT_MAX)


class Force(_Body):
    through: StrictInt | None = Field(default=None, ge=0, le=2**62, description="default: the head")


_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_REVISION = re.compile(r"[0-9]{1,19}")


class Gate:
    """ASGI middleware in front of the API: a /v1 call without the right bearer token is a
    401 before any byte of its body is read, and a body over ``max_body`` bytes is a 413
    (declared by Content-Length: at once; chunked: once it passes the limit)."""

    def __init__(self, app: ASGIApp, *, token: str, max_body: int) -> None:
        self.app = app
        self.expected = token.encode()
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = dict(scope["headers"])
        given = headers.get(b"authorization")
        if sum(name == b"authorization" for name, _ in scope["headers"]) > 1:
            refusal = problem(400, "invalid", "Authorization given more than once", path)
        elif given is None:
            refusal = problem(401, "unauthorized", "missing 'Authorization: Bearer <token>'", path)
        elif not hmac.compare_digest(_bearer_token(given), self.expected):
            refusal = problem(401, "unauthorized", "the bearer token is not valid", path)
        else:
            refusal = None
        if refusal is not None:
            if refusal.status_code == 401:
                refusal.headers["WWW-Authenticate"] = "Bearer"
            await refusal(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and not re.fullmatch(rb"[0-9]{1,18}", declared):
            bad = problem(400, "invalid", "Content-Length: not a number", path)
            await bad(scope, receive, send)
            return
        if declared is not None and int(declared) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        while True:  # the whole (bounded) body first, then the app: it never sees half of one
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over the limit of {self.max_body} bytes"
        reply = problem(413, "too-large", detail, scope["path"])
        reply.headers["Connection"] = "close"
        await reply(scope, receive, send)


class _Hidden:
    def __repr__(self) -> str:
        return "a value not shown"


def _shown(err: Any) -> Any:
    """A validation error safe to answer with: a key's value is never echoed, a long text
    is cut."""
    value = err.get("input")
    if "key" in err.get("loc", ()):
        return {**err, "input": _Hidden()}
    if isinstance(value, str) and len(value) > 40:
        return {**err, "input": value[:40] + "..."}
    return err


def _bearer_token(header: bytes) -> bytes:
    """The token of an ``Authorization`` value whose scheme is Bearer, in any case (RFC 9110
    §11.1: schemes are case-insensitive; §11.4: one or more spaces before the credentials);
    b"" for any other scheme, which then never matches."""
    scheme, _, rest = header.partition(b" ")
    return rest.lstrip(b" ") if scheme.lower() == b"bearer" else b""


class _DuplicateKey(StarletteHTTPException):
    def __init__(self, key: str) -> None:
        shown = key if len(key) <= 80 else key[:80] + "..."
        super().__init__(422, f"body: key {shown!r} given more than once (the last would win)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


class _StrictJSONRequest(Request):
    """A request whose JSON body may not repeat a key, at any depth: RFC 8259 §4 leaves
    the meaning open, and ``"force": true, "force": false`` must not silently be unforced."""

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = json.loads(await self.body(), object_pairs_hook=_unique_keys)
        return self._strict_json


class _StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Any:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


def _if_match(value: str | None) -> frozenset[int] | None:
    """``If-Match`` (RFC 9110 13.1.1) as the revisions it accepts; None for ``*`` or none.

    A list of entity tags, compared strongly: a weak tag, or one that is not a revision,
    is valid and never matches (412). Anything else (unquoted, unbalanced quotes, junk
    between tags) is a 422 that says so."""
    if value is None or value.strip(" \t") == "*":
        return None
    revisions: set[int] = set()
    tags, pos, end = 0, 0, len(value)
    while True:
        while pos < end and value[pos] in " \t,":  # empty list elements are allowed
            pos += 1
        if pos == end:
            break
        m = _ENTITY_TAG.match(value, pos)
        after = m.end() if m else pos
        while after < end and value[after] in " \t":
            after += 1
        if m is None or (after < end and value[after] != ","):
            shown = value if len(value) <= 80 else value[:80] + "..."
            raise InvalidInput(
                f"If-Match: expected entity tags such as '\"42\"' (a revision, in double "
                f"quotes), or '*'; got {shown!r}"
            )
        tags += 1
        weak, tag = m.groups()
        if not weak and _REVISION.fullmatch(tag):
            revisions.add(int(tag))
        pos = after
    if tags == 0:
        raise InvalidInput("If-Match: empty; expected entity tags such as '\"42\"', or '*'")
    return frozenset(revisions)


# -- the JSON shapes of what the store returns (the API's only serialisation of them) --------

Stored = AppRecord | DomainRecord | EndpointRecord | VipRecord | NodeRecord
S = TypeVar("S", AppRecord, DomainRecord, EndpointRecord, VipRecord, NodeRecord)
T = TypeVar("T")


def _app_json(r: AppRecord) -> dict[str, Any]:
    a = r.app
    return {
        "name": a.name,
        "owner": a.owner,
        "shard_seed": a.shard_seed,
        "settings": dict(a.settings),
        "revision": r.revision,
    }


def _domain_json(r: DomainRecord) -> dict[str, Any]:
    return {"name": r.name, "app": r.app, "revision": r.revision}


def _endpoint_json(r: EndpointRecord) -> dict[str, Any]:
    e = r.endpoint
    return {
        "address": addr.format_ip(e.address),
        "port": e.port,
        "endpoint": r.text,
        "node": r.node,
        "weight": e.weight,
        "state": e.state.value,
        "revision": r.revision,
    }


def _vip_json(r: VipRecord) -> dict[str, Any]:
    v = r.vip
    return {
        "address": addr.format_ip(v.address),
        "state": v.state.value,
        "reason": v.reason,
        "revision": r.revision,
    }


def _node_json(r: NodeRecord) -> dict[str, Any]:
    n = r.node
    return {"name": n.name, "state": n.state.value, "reason": n.reason, "revision": r.revision}


def _cert_json(c: CertInfo) -> dict[str, Any]:
    return {
        "domain": c.domain,
        "names": list(c.names),
        "not_before": c.not_before.isoformat(),
        "not_after": c.not_after.isoformat(),
        "issuer": c.issuer,
        "fingerprint": c.fingerprint,
        "key_type": c.key_type,
        "chain_length": c.chain_length,
        "source": c.source,
        "stored_at": c.stored_at,
    }


_JSON: dict[type, Callable[[Any], dict[str, Any]]] = {
    AppRecord: _app_json,
    DomainRecord: _domain_json,
    EndpointRecord: _endpoint_json,
    VipRecord: _vip_json,
    NodeRecord: _node_json,
    CertInfo: _cert_json,
}


def _json(item: Stored | CertInfo) -> dict[str, Any]:
    return _JSON[type(item)](item)


def _written(w: Written[S], response: Response) -> dict[str, Any]:
    response.headers["X-Sixpod-Revision"] = str(w.revision)
    response.headers["ETag"] = f'"{w.item.revision}"'
    return _json(w.item)


def _page(p: Page[Any]) -> dict[str, Any]:
    return {"items": [_json(i) for i in p.items], "next": p.next}


IfMatch = Annotated[str | None, Header(alias="If-Match")]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX)]


def create_api(
    store: Store,
    *,
    token: str,
    registry: CollectorRegistry | None = None,
    status: Callable[[], dict[str, Any]] | None = None,
    healthy: Callable[[], str | None] | None = None,
    max_body: int = MAX_BODY,
    acme_policy: issuance.Policy | None = None,
) -> FastAPI:
    """The API over ``store``; ``token`` is the bearer token every /v1 call must carry."""
    if len(token) < 16:
        raise ValueError("the API token must be at least 16 characters")
    app = FastAPI(
        title="sixpod controller",
        version=__version__,
        description="Tenants of an IPv6-only anycast pod: apps, domains, endpoints, VIPs.",
        # No redirect for a trailing slash: Starlette's names the client's own Host header
        # (an open redirect); the 404 says the path without the slash instead.
        redirect_slashes=False,
    )
    app.router.route_class = _StrictJSONRoute
    app.add_middleware(Gate, token=token, max_body=max_body)

    @app.exception_handler(TenantError)
    async def _tenant_error(request: Request, exc: TenantError) -> JSONResponse:
        return problem(exc.status, exc.kind, exc.detail, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            if err.get("type") == "missing":
                parts.append(f"{where}: required")
            elif err.get("type") == "json_invalid":
                reason = (err.get("ctx") or {}).get("error", "")
                parts.append(f"body: not valid JSON ({reason})" if reason else "body: not JSON")
            elif err.get("type") == "extra_forbidden":
                parts.append(f"{where}: not a field of this call")
            else:
                parts.append(f"{where}: {operator_message(_shown(err), None, [])}")
        return problem(422, "invalid", "; ".join(parts), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        detail, kind = str(exc.detail), "http"
        if exc.status_code == 422:
            kind = "invalid"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such path {path!r}"
            bare = path.rstrip("/")
            if bare != path and bare and _served(app, request, bare):
                detail += f"; without the trailing slash: {bare!r}"
        reply = problem(exc.status_code, kind, detail, path)
        if exc.status_code == 405:
            reply.headers["Allow"] = ", ".join(_allowed(app, request))
        return reply

    v1 = [
        Depends(HTTPBearer(auto_error=False, description="the controller's API token")),
        Depends(_strict_query),
    ]

    @app.get("/healthz", include_in_schema=False, response_model=None)
    def healthz(request: Request) -> dict[str, Any] | JSONResponse:
        problem_text = healthy() if healthy is not None else None
        if problem_text:
            return problem(503, "unhealthy", problem_text, request.url.path)
        return {"ok": True, "revision": store.head()}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        body = generate_latest(registry) if registry is not None else b""
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

    @app.get("/v1/status", dependencies=v1)
    def get_status() -> dict[str, Any]:
        return {"revision": store.head(), "publisher": status() if status else None}

    @app.post("/v1/publisher/force", dependencies=v1)
    def force(body: Force) -> dict[str, Any]:
        head = store.head()
        through = head if body.through is None else body.through
        if through > head:
            raise InvalidInput(f"through: {through} is past the last revision ({head})")
        store.force_through(through)
        return {"forced_through": through}

    # -- apps ---------------------------------------------------------------------------

    @app.get("/v1/apps", dependencies=v1)
    def list_apps(limit: Limit = 100, after: str | None = None) -> dict[str, Any]:
        return _page(store.list_apps(after=after, limit=limit))

    @app.post("/v1/apps", dependencies=v1, status_code=201)
    def create_app(body: AppCreate, response: Response) -> dict[str, Any]:
        w = store.create_app(AppSpec(body.name, body.owner, body.shard_seed, body.settings))
        response.headers["Location"] = f"/v1/apps/{body.name}"
        return _written(w, response)

    def _built(name: str, build: Callable[[], T]) -> T:
        """The typed values of a call on app ``name``; an absent app is a 404 before any
        fault in the values (the order the API has always answered in)."""
        try:
            return build()
        except InvalidInput:
            store.get_app(name)
            raise

    @app.get("/v1/apps/{name}", dependencies=v1)
    def get_app(name: str, response: Response) -> dict[str, Any]:
        item = store.get_app(name)
        response.headers["ETag"] = f'"{item.revision}"'
        return _app_json(item)

    @app.patch("/v1/apps/{name}", dependencies=v1)
    def update_app(
        name: str, body: AppUpdate, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        revisions = _if_match(if_match)
        patch = _built(name, lambda: AppPatch(body.owner, body.shard_seed, body.settings))
        w = store.update_app(name, patch, if_match=revisions)
        return _written(w, response)

    @app.delete("/v1/apps/{name}", dependencies=v1, status_code=204)
    def delete_app(
        name: str, response: Response, if_match: IfMatch = None, force: bool = False
    ) -> None:
        rev = store.delete_app(name, if_match=_if_match(if_match), force=force)
        response.headers["X-Sixpod-Revision"] = str(rev)

    # -- endpoints ----------------------------------------------------------------------

    @app.get("/v1/apps/{name}/endpoints", dependencies=v1)
    def list_endpoints(name: str, limit: Limit = 100, after: str | None = None) -> dict[str, Any]:
        return _page(store.list_endpoints(name, after=after, limit=limit))

    @app.post("/v1/apps/{name}/endpoints", dependencies=v1)
    def change_endpoints(name: str, body: EndpointsChange, response: Response) -> dict[str, Any]:
        items = _built(
            name,
            lambda: [
                EndpointSpec.parse(e.address, e.port, e.weight, e.state, e.node)
                for e in body.endpoints
            ],
        )
        remove = _built(name, lambda: [EndpointRef.parse(text) for text in body.remove])
        w = store.set_endpoints(name, items, remove=remove, force=body.force)
        response.headers["X-Sixpod-Revision"] = str(w.revision)
        return {"changed": w.item.changed, "removed": w.item.removed}

    @app.delete("/v1/apps/{name}/endpoints/{endpoint}", dependencies=v1, status_code=204)
    def delete_endpoint(name: str, endpoint: str, response: Response, force: bool = False) -> None:
        ref = _built(name, lambda: EndpointRef.parse(endpoint))
        w = store.set_endpoints(name, [], remove=[ref], force=force)
        if not w.item.removed:
            raise NotFound(f"app {name!r} has no endpoint {endpoint!r}")
        response.headers["X-Sixpod-Revision"] = str(w.revision)

    # -- domains ------------------------------------------------------------------------

    @app.get("/v1/domains", dependencies=v1)
    def list_domains(
        app_name: Annotated[str | None, Query(alias="app")] = None,
        limit: Limit = 100,
        after: str | None = None,
    ) -> dict[str, Any]:
        return _page(store.list_domains(app=app_name, after=after, limit=limit))

    @app.get("/v1/domains/{host}", dependencies=v1)
    def get_domain(host: str) -> dict[str, Any]:
        return _domain_json(store.get_domain(host))

    @app.put("/v1/domains/{host}", dependencies=v1)
    def attach_domain(host: str, body: DomainAttach, response: Response) -> dict[str, Any]:
        return _written(store.attach_domain(host, body.app), response)

    @app.delete("/v1/domains/{host}", dependencies=v1, status_code=204)
    def detach_domain(host: str, response: Response) -> None:
        response.headers["X-Sixpod-Revision"] = str(store.detach_domain(host))

    # -- certificates -------------------------------------------------------------------

    @app.get("/v1/certs", dependencies=v1)
    def list_certs(limit: Limit = 100, after: str | None = None) -> dict[str, Any]:
        return _page(store.list_certs(after=after, limit=limit))

    @app.get("/v1/certs/{domain}", dependencies=v1)
    def get_cert(domain: str) -> dict[str, Any]:
        return _cert_json(store.get_cert(domain))

    @app.put("/v1/certs/{domain}", dependencies=v1)
    def put_cert(domain: str, body: CertUpload) -> dict[str, Any]:
        return _cert_json(store.put_cert(domain, body.chain, body.key))

    @app.delete("/v1/certs/{domain}", dependencies=v1, status_code=204)
    def delete_cert(domain: str) -> None:
        store.delete_cert(domain)

    policy = acme_policy or issuance.Policy()

    @app.get("/v1/acme", dependencies=v1)
    def list_acme(limit: Limit = 100, after: str | None = None) -> dict[str, Any]:
        """Every attached domain's ACME status: pending, valid, renewing, failed (with the
        error and the next attempt), uploaded (ACME leaves it alone) or wildcard."""
        facts, nxt = store.list_acme(after=after, limit=limit)
        now = store.clock()
        return {"items": [issuance.view(f, now, policy) for f in facts], "next": nxt}

    @app.get("/v1/acme/{domain}", dependencies=v1)
    def get_acme(domain: str) -> dict[str, Any]:
        return issuance.view(store.acme_domain(domain), store.clock(), policy)

    # -- VIPs and nodes -----------------------------------------------------------------

    @app.get("/v1/vips", dependencies=v1)
    def list_vips() -> dict[str, Any]:
        return {"items": [_vip_json(v) for v in store.list_vips()], "next": None}

    @app.put("/v1/vips/{address}", dependencies=v1)
    def set_vip(
        address: str, body: VipChange, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        revisions = _if_match(if_match)
        w = store.set_vip(VipSpec.parse(address, body.state, body.reason), if_match=revisions)
        return _written(w, response)

    @app.get("/v1/nodes", dependencies=v1)
    def list_nodes() -> dict[str, Any]:
        return {"items": [_node_json(n) for n in store.list_nodes()], "next": None}

    @app.put("/v1/nodes/{name}", dependencies=v1)
    def set_node(name: str, body: NodeChange, response: Response) -> dict[str, Any]:
        return _written(store.set_node(NodeSpec(name, body.state, body.reason)), response)

    statuspage.mount(app, store, token=token, status=status)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _query_names(dependant: Any) -> set[str]:
    names = {q.alias for q in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _strict_query(request: Request) -> None:
    """A query parameter the call does not take, or one given twice, is a 422 naming it
    (``?limt=5`` must not silently mean the default)."""
    route = request.scope.get("route")
    known = _query_names(route.dependant) if route is not None else set()
    for key in request.query_params:
        if key not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise InvalidInput(f"query parameter {key!r}: not one this call takes ({takes})")
        if len(request.query_params.getlist(key)) > 1:
            raise InvalidInput(f"query parameter {key!r}: given more than once")


def _served(app: FastAPI, request: Request, path: str) -> bool:
    scope = {**request.scope, "path": path}
    return any(route.matches(scope)[0] is not Match.NONE for route in app.router.routes)


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves on this path (each method is a route of its own)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


class Problem(BaseModel):
    """An RFC 9457 problem, as every error is served (``application/problem+json``)."""

    type: str = Field(
        description="urn:sixpod:problem:KIND", examples=["urn:sixpod:problem:invalid"]
    )
    title: str
    status: int
    detail: str = Field(description="what is wrong, in the operator's terms")
    instance: str = Field(description="the request path")


_ERRORS = {
    400: "malformed request framing (Content-Length)",
    401: "no bearer token, or the wrong one (nothing of the body is read)",
    404: "no such object",
    409: "conflict with the stored state, or the churn guard refused the removals",
    412: "If-Match names a revision the object is not at",
    413: "request body over the controller's max_body_bytes",
    422: "invalid input: the detail names the field and what is expected",
    503: "the store is unavailable",
}
_PATTERNS = {
    "name": (r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", "an app name: one DNS label"),
    "endpoint": (r"^\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$", "an endpoint, [IPv6]:port"),
    "address": (r"^[0-9A-Fa-f:.]+$", "a VIP of the pool, IPv4 or IPv6 text"),
    "host": (r"^[^/\s]{1,254}$", "a hostname (IDNA allowed), or *.name for a wildcard"),
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec, made to say what is served: every error as a Problem in
    ``application/problem+json``, the bearer token required on /v1, path patterns."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            params = op.get("parameters", [])
            codes = {401, 422}
            if method in ("post", "put", "patch", "delete"):
                codes |= {400, 409, 413, 503}
            if "{" in path or any(p["name"] == "app" for p in params):
                codes.add(404)
            if any(p["name"] == "If-Match" for p in params):
                codes.add(412)
            responses = op["responses"]
            for code in sorted(codes):
                responses[str(code)] = {
                    "description": _ERRORS[code],
                    "content": {PROBLEM: {"schema": ref}},
                }
            for p in params:
                if p["in"] == "path" and p["name"] in _PATTERNS:
                    pattern, what = _PATTERNS[p["name"]]
                    p["schema"] = {**p["schema"], "pattern": pattern}
                    p.setdefault("description", what)
            op["security"] = [{"HTTPBearer": []}]
    for model in ("AppCreate", "DomainAttach"):
        props = schemas.get(model, {}).get("properties", {})
        for key in ("name", "app"):
            if key in props:
                props[key]["pattern"] = _PATTERNS["name"][0]
    app.openapi_schema = spec
    return spec
