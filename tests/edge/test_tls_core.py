"""The pure TLS core: certificates and challenges to admin batches, and the full sync diff."""

from __future__ import annotations

from sixpod.edge import tls
from sixpod.tenants.model import Cert


def _cert(domain: str, fp: str) -> Cert:
    return Cert(domain, fp, 2000000000, f"CHAIN-{domain}\n", f"sealed1:{domain}")


def test_a_value_carries_a_version_of_the_whole_chain_and_splits_chain_and_key() -> None:
    c = _cert("shop.example", "ab12")
    value = tls.cert_value(c, "KEY\n")
    version, n, rest = value.split("\n", 2)
    assert version == tls.version(c)
    # same leaf, another intermediate: another version
    assert tls.version(Cert(c.domain, c.fingerprint, 1, c.chain + "X\n", "s")) != version
    assert rest[: int(n)] == c.chain
    assert rest[int(n) :] == "KEY\n"
    # the length counts bytes, as Lua's string.sub does
    u = Cert("x.example", "f", 1, "é\n", "s")
    _, n, rest = tls.cert_value(u, "K").split("\n", 2)
    assert rest.encode()[: int(n)] == "é\n".encode()


def test_full_sync_sends_only_what_nginx_lacks_holds_otherwise_or_should_drop() -> None:
    certs = {d: _cert(d, fp) for d, fp in (("a.example", "1"), ("b.example", "2"))}
    held = {d: tls.version(c) for d, c in certs.items()}
    assert tls.cert_sync(certs, held) == []
    assert tls.cert_sync(certs, {"a.example": "old", "gone.example": "9"}) == [
        "a.example",
        "b.example",
        "gone.example",
    ]


def test_batches_delete_what_is_gone_and_skip_a_key_that_does_not_open() -> None:
    certs = {d: _cert(d, "1") for d in ("a.example", "b.example", "c.example")}

    def open_key(c: Cert) -> str | None:
        return None if c.domain == "b.example" else "KEY"

    batches = list(
        tls.cert_batches(
            certs, ["a.example", "b.example", "c.example", "z.example"], open_key, "g", 2
        )
    )
    assert [sorted(b["certs"]) for b in batches] == [["a.example"], ["c.example", "z.example"]]
    assert batches[1]["certs"]["z.example"] is None
    assert all(b["generation"] == "g" for b in batches)


def test_challenge_batches_name_set_and_removed_tokens() -> None:
    assert tls.challenge_batch({"t": "t.k"}, frozenset(), "g") is None
    assert tls.challenge_batch({"t": "t.k"}, frozenset({"t", "u"}), "g") == {
        "generation": "g",
        "challenges": {"t": "t.k", "u": None},
    }
