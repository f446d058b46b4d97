"""The API verbs (app, domain, endpoint, vip, publisher) through the real API over a real
SQLite store: a table or one line by default, ``--json`` with the same fields."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from sixpod.cli import cli
from sixpod.cli.output import cell, flatten

EDGE1 = "2001:db8:200:1"  # edge1's /64 in examples/small.lock


def run(token_file: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, [*args, "--token-file", str(token_file)])
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def both(token_file: Path, *args: str) -> tuple[str, Any]:
    """A read verb's text output and its --json output (both see the same state)."""
    code, text, err = run(token_file, *args)
    assert code == 0, err
    code, out, err = run(token_file, *args, "--json")
    assert code == 0, err
    return text, json.loads(out)


def assert_same_fields(text: str, data: Any) -> None:
    """Every field of the JSON, name and value, is in the text: a list's fields are its
    columns, a record's nested fields are shown as ``a.b``."""
    if isinstance(data, list):
        header = text.splitlines()[0].split()
        for item in data:
            assert sorted(item) == sorted(header), (item, header)
            for value in item.values():
                assert cell(value) in text, (value, text)
    else:
        for key, value in flatten(data).items():
            assert re.search(rf"^{re.escape(key)} +{re.escape(cell(value))}$", text, re.M), (
                key,
                value,
                text,
            )


def test_app_verbs_print_a_table_or_a_line_and_json_on_request(api: Path) -> None:
    code, out, err = run(api, "app", "create", "shop", "--owner", "acme", "--setting", "tls=true")
    assert code == 0, err
    assert not out.lstrip().startswith("{"), "a table by default, not JSON"
    assert "owner" in out
    assert "acme" in out
    code, out, _ = run(api, "app", "create", "blog", "--json")
    assert json.loads(out)["name"] == "blog"
    text, data = both(api, "app", "list")
    assert [a["name"] for a in data] == ["blog", "shop"]
    assert_same_fields(text, data)
    text, data = both(api, "app", "show", "shop")
    assert data["settings"] == {"tls": True}
    assert_same_fields(text, data)
    code, out, _ = run(api, "app", "set", "shop", "--shard-seed", "7")
    assert code == 0
    assert "shard_seed" in out
    code, out, _ = run(api, "app", "delete", "blog")
    assert code == 0
    assert out.startswith("deleted app blog (revision ")


def test_domain_endpoint_vip_verbs(api: Path) -> None:
    run(api, "app", "create", "shop")
    code, out, err = run(api, "domain", "attach", "WWW.Shop.Example", "shop")
    assert code == 0, err
    assert out.startswith("www.shop.example -> app shop (revision ")
    text, data = both(api, "domain", "list")
    assert data[0]["name"] == "www.shop.example"
    assert_same_fields(text, data)
    code, out, err = run(
        api, "endpoint", "add", "shop", f"[{EDGE1}::10]:8080", f"[{EDGE1}::11]:8080"
    )
    assert code == 0, err
    assert out.strip() == "shop: 2 endpoints added or changed, 0 removed"
    code, out, _ = run(api, "endpoint", "remove", "shop", f"[{EDGE1}::11]:8080", "--json")
    assert json.loads(out) == {"app": "shop", "changed": 0, "removed": 1}
    code, out, _ = run(api, "endpoint", "remove", "shop", f"[{EDGE1}::10]:8080")
    assert out.strip() == "shop: 0 endpoints added or changed, 1 removed"
    run(api, "endpoint", "add", "shop", f"[{EDGE1}::12]:8080")
    text, data = both(api, "endpoint", "list", "shop")
    assert [e["endpoint"] for e in data] == [f"[{EDGE1}::12]:8080"]
    assert_same_fields(text, data)
    code, out, _ = run(api, "vip", "set", "203.0.113.1", "blackholed", "--reason", "DDoS")
    assert out.startswith("VIP 203.0.113.1 blackholed (DDoS; revision ")
    text, data = both(api, "vip", "list")
    assert_same_fields(text, data)
    code, out, _ = run(api, "domain", "detach", "www.shop.example")
    assert code == 0
    assert out.startswith("detached www.shop.example (revision ")


def test_publisher_status_table_and_json(api: Path) -> None:
    text, data = both(api, "publisher", "status")
    assert data["publisher"]["active"] is True
    assert_same_fields(text, data)
    code, out, _ = run(api, "publisher", "force")
    assert code == 0
    assert out.startswith("publisher: let through every change up to revision ")


def test_an_api_error_is_one_line_on_stderr_and_exit_1(api: Path) -> None:
    for args in (("app", "show", "nope"), ("app", "show", "nope", "--json")):
        code, out, err = run(api, *args)
        assert code == 1
        assert out == ""
        assert err.startswith("sixpod: 404: ")


def test_cert_verbs_never_print_the_key(api: Path, tmp_path: Path) -> None:
    import pki

    chain, key = pki.site("shop.example.com")
    (tmp_path / "chain.pem").write_text(chain)
    (tmp_path / "key.pem").write_text(key)
    files = ("--chain", str(tmp_path / "chain.pem"), "--key", str(tmp_path / "key.pem"))
    code, out, err = run(api, "cert", "upload", "shop.example.com", *files)
    assert code == 0, err
    assert "shop.example.com" in out
    assert "PRIVATE" not in out
    text, data = both(api, "cert", "list")
    assert [c["domain"] for c in data] == ["shop.example.com"]
    assert_same_fields(text, data)
    text, data = both(api, "cert", "show", "shop.example.com")
    assert data["fingerprint"] in text
    assert "PRIVATE" not in text + json.dumps(data)
    code, _, err = run(api, "cert", "upload", "other.example.com", *files)
    assert code == 1
    assert "does not cover other.example.com" in err
    (tmp_path / "bin.pem").write_bytes(b"\xff\xfe")
    code, _, err = run(
        api,
        "cert",
        "upload",
        "a.example.com",
        "--chain",
        str(tmp_path / "bin.pem"),
        "--key",
        str(tmp_path / "key.pem"),
    )
    assert code == 1
    assert "cannot read the chain: not ASCII PEM text" in err
    code, out, _ = run(api, "cert", "delete", "shop.example.com")
    assert (code, out) == (0, "deleted the certificate of shop.example.com\n")
    code, _, err = run(api, "cert", "show", "shop.example.com")
    assert code == 1
    assert "404: no certificate for 'shop.example.com'" in err
