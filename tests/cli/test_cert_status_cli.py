"""``sixpod cert status``: ACME per domain through the real API, a table or --json."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sixpod.cli import cli


def run(token_file: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, [*args, "--token-file", str(token_file)])
    return r.exit_code, r.stdout, r.stderr


def test_status_lists_every_domain_and_shows_one(api: Path) -> None:
    assert run(api, "app", "create", "shop")[0] == 0
    for d in ("shop.example.com", "*.shop.example.com"):
        assert run(api, "domain", "attach", d, "shop")[0] == 0
    code, out, err = run(api, "cert", "status")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["domain", "status", "not_after", "next_attempt", "failures", "error"]
    assert rows[0].startswith("*.shop.example.com  wildcard")
    assert rows[1].startswith("shop.example.com    pending")
    code, out, _ = run(api, "cert", "status", "--json")
    assert [i["status"] for i in json.loads(out)] == ["wildcard", "pending"]
    code, out, _ = run(api, "cert", "status", "--failing", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = run(api, "cert", "status", "shop.example.com", "--json")
    assert json.loads(out)["status"] == "pending"
    code, out, _ = run(api, "cert", "status", "shop.example.com")
    assert "status        pending" in out
    code, _, err = run(api, "cert", "status", "other.example.com")
    assert code == 1
    assert "404: domain 'other.example.com' is not attached to any app" in err
