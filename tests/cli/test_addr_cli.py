"""Tests for ``sixpod addr``: outputs, stderr messages and exit codes 0/1/2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from sixpod.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["addr", *args])


def test_normalize_each_kind() -> None:
    result = run(
        "normalize",
        "[2001:DB8::1]:443",
        "[2001:db8::1]",
        "2001:0DB8:0:0:0:0:0:0001",
        "fe80::1%eth0",
        "::FFFF:192.0.2.1",
        "192.0.2.1:80",
        "2001:DB8::/32",
        "2001:DB8::1/64",
        "http://[2001:DB8::1]:8080/x",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[2001:db8::1]:443",
        "2001:db8::1",
        "2001:db8::1",
        "fe80::1%eth0",
        "::ffff:192.0.2.1",
        "192.0.2.1:80",
        "2001:db8::/32",
        "2001:db8::1/64",
        "http://[2001:db8::1]:8080/x",
    ]
    assert result.stderr == ""


def test_normalize_is_all_or_nothing() -> None:
    result = run("normalize", "::1", "2001::dead::beef::1", "192.0.2.01", "[::1]:0")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "sixpod: addr: '2001::dead::beef::1': more than one '::'",
        "sixpod: addr: '192.0.2.01': IPv4 octet '01' has a leading zero (ambiguous: octal?)",
        "sixpod: addr: '[::1]:0': port 0 is out of range 1-65535",
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[2001:db8::1]:http", "service names are not accepted"),
        ("[192.0.2.1]:80", "brackets are only for IPv6"),
        ("2001:db8::1/129", "out of range for IPv6"),
        (" ::1", "whitespace"),
        ("[2001:db8::1", "unbalanced brackets"),
    ],
)
def test_normalize_rejects(text: str, reason: str) -> None:
    result = run("normalize", text)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"sixpod: addr: {text!r}: ")
    assert reason in result.stderr


@pytest.mark.parametrize(
    ("consumer", "texts", "expected"),
    [
        ("url", ["[2001:DB8::1]:443", "192.0.2.1:80"], ["[2001:db8::1]:443", "192.0.2.1:80"]),
        ("nginx", ["[2001:db8:0::1]:443", "2001:DB8::/32"], ["[2001:db8::1]:443", "2001:db8::/32"]),
        ("exabgp", ["2001:DB8::1", "2001:DB8:1::/48"], ["2001:db8::1", "2001:db8:1::/48"]),
        ("redis", ["[2001:DB8::1]:8080", "2001:DB8::1"], ["[2001:db8::1]:8080", "2001:db8::1"]),
        ("prometheus", ["[2001:DB8::A]:9100"], ["[2001:db8::a]:9100"]),
    ],
)
def test_format_for(consumer: str, texts: list[str], expected: list[str]) -> None:
    result = run("format", "--for", consumer, *texts)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == expected


@pytest.mark.parametrize(
    ("consumer", "text", "reason"),
    [
        ("url", "[fe80::1%eth0]:443", "a zone id cannot be written in a URL (RFC 9844)"),
        ("prometheus", "[fe80::1%eth0]:9100", "a zone id cannot be written"),
        ("nginx", "2001:db8::1", "add a port"),
        ("exabgp", "2001:db8::1/64", "did you mean '2001:db8::/64'?"),
        ("redis", "2001:db8::/64", "a prefix cannot be written for redis"),
        ("url", "2001:db8::1:443", "an address without a port"),
    ],
)
def test_format_rejects(consumer: str, text: str, reason: str) -> None:
    result = run("format", "--for", consumer, "[::1]:1", text)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("sixpod: addr: '")
    assert reason in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["normalize"],
        ["format", "[::1]:80"],
        ["format", "--for", "bind", "[::1]:80"],
        ["format", "--for", "url"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_json_pairs_each_input_with_its_output() -> None:
    result = run("format", "--for", "url", "--json", "[2001:DB8::1]:443", "192.0.2.1:80")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"input": "[2001:DB8::1]:443", "output": "[2001:db8::1]:443"},
        {"input": "192.0.2.1:80", "output": "192.0.2.1:80"},
    ]
    result = run("normalize", "--json", "2001::dead::beef")
    assert result.exit_code == 1
    assert result.stdout == ""
