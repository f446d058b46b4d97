"""`sixpod lab status`'s monitoring and controller tables, from a status document."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from sixpod.lab.overview import FOLD, print_overview


def target(job: str, instance: str, health: str = "up", error: str = "") -> dict[str, Any]:
    return {"job": job, "instance": instance, "device": "", "health": health, "last_error": error}


def status(targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "prometheus": {"url": "http://[::1]:9090", "targets": targets, "alerts": []},
        "controller": {"error": "this lab runs no controller"},
        "edges": {
            "edge1": {
                "link": "down", "bytes_behind": None, "replica_revision": 7,
                "revisions_behind": 2, "nginx_revision": 5, "nginx_behind": 2,
            },
        },
    }  # fmt: skip


def shown(s: dict[str, Any]) -> str:
    out = io.StringIO()
    print_overview(Console(file=out, width=160, emoji=False, highlight=False, markup=False), s)
    return out.getvalue()


def test_a_job_with_many_targets_is_one_line_and_each_one_down() -> None:
    vips = [target("vips-ip6", f"http://[2001:db8:2fe::{i:x}]/") for i in range(1, 513)]
    vips[7] = target("vips-ip6", "http://[2001:db8:2fe::8]/", "down", "context deadline exceeded")
    text = shown(status([target("node", "[2001:db8:2ff::2]:9100"), *vips]))
    assert "512 targets" in text
    assert "511 up" in text
    assert "http://[2001:db8:2fe::8]/" in text
    assert "DOWN" in text
    assert "context deadline exceeded" in text
    assert "http://[2001:db8:2fe::9]/" not in text  # up: folded
    assert "[2001:db8:2ff::2]:9100" in text  # a small job: every target
    assert len(vips) > FOLD


def test_what_cannot_be_read_is_said_and_the_rest_shown() -> None:
    text = shown(status([]))
    assert "controller: this lab runs no controller" in text
    assert "alerts firing: none" in text
    assert "DOWN" in text  # edge1's replica link
