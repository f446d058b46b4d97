"""The agent's certificate sync when a full push's TLS step fails half-way."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

import pki
from sixpod.edge import tls
from sixpod.edge.agent import Agent
from sixpod.edge.config import EdgeConfig
from sixpod.edge.errors import EdgeError
from sixpod.tenants import sealed
from sixpod.tenants.model import Cert
from sixpod.tenants.reader import TenantState


def _agent(tmp: Path) -> Agent:
    (tmp / "nginx.conf").write_text("events {}\n")
    key = tmp / "edge-seal.key"
    key.write_bytes(
        pki.SEAL_PRIVATE.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    cfg = EdgeConfig.model_validate(
        {
            "node": "n",
            "listen": ["[::1]:80"],
            "health": "[::1]:8081",
            "run_dir": str(tmp / "run"),
            "nginx_conf": str(tmp / "nginx.conf"),
            "lua_dir": str(tmp / "lua"),
            "access_log": str(tmp / "a.log"),
            "error_log": str(tmp / "e.log"),
            "redis": {"address": "[::1]:6379"},
            "tls": {"listen": ["[::1]:443"], "seal_key": str(key)},
        }
    )
    return Agent(cfg)


def test_a_full_push_whose_tls_sync_fails_syncs_the_certificates_again(tmp_path: Path) -> None:
    """After a reader resync the agent pushes everything; if GET /tls (100k entries, 10 s
    client timeout) or a cert batch fails, nginx still holds this agent's certs mark, so
    check() never asks for a TLS sync again: certificates changed during the resync are
    never applied (a deleted one keeps being served)."""

    async def run() -> None:
        agent = _agent(tmp_path)
        chain, key = pki.site("shop.example.com")
        sealed_key = sealed.seal(key, "shop.example.com", pki.SEAL_PUBLIC)
        state = TenantState(epoch="e", revision=5, with_certs=True)
        state.certs["shop.example.com"] = Cert("shop.example.com", "NEWFP", 0, chain, sealed_key)
        agent.reader.state = state
        agent.need_tls_sync = False  # synced once already: the mark is in nginx
        nginx = {"generation": "", "certs": {"shop.example.com": "OLDFP"}, "fail_tls": True}

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/tls":
                if nginx["fail_tls"]:
                    nginx["fail_tls"] = False
                    raise httpx.ReadTimeout("timed out", request=request)
                return httpx.Response(
                    200,
                    json={
                        "mark": agent.certs_mark,
                        "certs": nginx["certs"],
                        "challenges": {},
                    },
                )
            if request.url.path == "/apply":
                batch = json.loads(request.content)
                nginx["generation"] = batch["generation"]
                for d, v in (batch.get("certs") or {}).items():
                    nginx["certs"][d] = v.split("\n", 1)[0]
                return httpx.Response(
                    200, json={"generation": nginx["generation"], "cert_format": "der1"}
                )
            if request.url.path == "/state":
                return httpx.Response(
                    200,
                    json={
                        "generation": nginx["generation"],
                        "ready": True,
                        "certs_mark": agent.certs_mark,
                        "cert_format": "der1",
                    },
                )
            return httpx.Response(200, json={})

        agent.client = httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://admin"
        )
        agent.nginx_running = lambda: True  # type: ignore[method-assign]
        agent.reload_if_changed = _false  # type: ignore[method-assign]
        agent.rotate_tickets_if_due = _false  # type: ignore[method-assign]
        with contextlib.suppress(httpx.ReadTimeout):
            await agent.push_full()
        # the sync loop's next rounds: check(), then a TLS sync if one is needed
        for _ in range(3):
            await agent.check()
            if agent.need_full:
                await agent.push_full()
            elif agent.need_tls_sync:
                await agent.sync_tls()
        assert nginx["certs"]["shop.example.com"] == tls.version(state.certs["shop.example.com"])

    asyncio.run(run())


async def _false() -> bool:
    return False


def test_no_certificate_is_pushed_to_an_nginx_whose_module_reads_another_format(
    tmp_path: Path,
) -> None:
    """A reload that did not happen leaves the older module (PEM values) running: values in
    the new format would be stored as they come and never parse, under a version that
    looks current. The agent says so and pushes nothing until nginx runs its module."""

    async def run() -> None:
        agent = _agent(tmp_path)
        chain, key = pki.site("shop.example.com")
        sealed_key = sealed.seal(key, "shop.example.com", pki.SEAL_PUBLIC)
        state = TenantState(epoch="e", revision=5, with_certs=True)
        state.certs["shop.example.com"] = Cert("shop.example.com", "FP", 0, chain, sealed_key)
        agent.reader.state = state
        posted: list[dict[str, object]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/apply":
                posted.append(json.loads(request.content))
            return httpx.Response(200, json={"generation": "", "certs": {}, "challenges": {}})

        agent.client = httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://admin"
        )
        agent.nginx_status = {"generation": "", "ready": True}  # no cert_format: older module
        with pytest.raises(EdgeError, match="reads certificates as PEM, this agent writes der1"):
            await agent.sync_tls()
        assert not any("certs" in b for b in posted)

    asyncio.run(run())
