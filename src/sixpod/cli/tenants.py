"""``sixpod controller`` and the thin API verbs: ``app``, ``domain``, ``endpoint``, ``vip``,
``publisher``, ``cert``. The verbs talk to the controller at ``--api`` (or ``$SIXPOD_API``) with the
token in ``--token-file`` (or ``$SIXPOD_TOKEN_FILE``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sixpod import logs
from sixpod.cli import output
from sixpod.cli.config import load_config_or_exit
from sixpod.cli.errors import CommandFailed
from sixpod.cli.help import examples
from sixpod.tenants.client import ApiError, Client, seg
from sixpod.tenants.config import ControllerConfig

API = click.option(
    "--api",
    envvar="SIXPOD_API",
    default="http://[::1]:8700",
    show_default=True,
    help="The controller's URL ($SIXPOD_API).",
)
TOKEN = click.option(
    "--token-file",
    envvar="SIXPOD_TOKEN_FILE",
    default="/etc/sixpod/controller.token",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the API token ($SIXPOD_TOKEN_FILE).",
)
JSON = output.JSON_OPTION


def load_controller_config(path: Path) -> ControllerConfig:
    return load_config_or_exit(path, ControllerConfig)


@examples("sixpod controller --config /etc/sixpod/controller.yaml")
@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="controller.yaml: store, Redis, listen address, token, churn guard.",
)
def controller(config_path: Path) -> None:
    """Run the tenants API and the publisher to Redis."""
    from sixpod.tenants.controller import run
    from sixpod.tenants.errors import TenantError

    cfg = load_controller_config(config_path)
    logs.setup("controller")
    try:
        sys.exit(run(cfg))
    except TenantError as e:
        raise CommandFailed.because(e, f"sixpod controller: {e}") from None
    except (OSError, ValueError) as e:
        raise CommandFailed(f"sixpod controller: {e}") from None


def _call(api: str, token_file: Path, fn: Callable[[Client], Any]) -> Any:
    """``fn``'s answer from the controller; on any error, one line on stderr and exit 1."""
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise CommandFailed(f"{token_file}: cannot read the API token: {e.strerror}") from None
    client = Client(api, token)
    try:
        return fn(client)
    except ApiError as e:
        raise CommandFailed.because(e, f"sixpod: {e.detail}") from None
    finally:
        client.close()


APP_FIELDS = ["name", "owner", "shard_seed", "settings", "revision"]


@examples(
    "sixpod app create shop --owner acme",
    "sixpod app list",
    "sixpod app delete shop",
)
@click.group()
def app() -> None:
    """Apps: reached by their domains, served by their endpoints."""


@examples("sixpod app list", "sixpod app list --json")
@app.command("list")
@API
@TOKEN
@JSON
def app_list(api: str, token_file: Path, as_json: bool) -> None:
    """List every app: name, owner, shard seed, settings, revision."""
    output.rows(_call(api, token_file, lambda c: c.pages("/v1/apps")), APP_FIELDS, as_json=as_json)


@examples(
    "sixpod app create shop",
    "sixpod app create shop --owner acme --setting max_body_bytes=1048576",
)
@app.command("create")
@click.argument("name")
@click.option("--owner", default="", help="Who the app belongs to (free text).")
@click.option(
    "--shard-seed",
    type=int,
    default=0,
    help="Picks the app's shuffle shard of VIPs; change it to move the app.",
)
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=JSON",
    help="One setting (repeat for more); the value is JSON, or text if it is not.",
)
@API
@TOKEN
@JSON
def app_create(
    name: str,
    owner: str,
    shard_seed: int,
    settings: tuple[str, ...],
    api: str,
    token_file: Path,
    as_json: bool,
) -> None:
    """Create the app NAME (lowercase letters, digits, '-')."""
    body = {"name": name, "owner": owner, "shard_seed": shard_seed, "settings": _settings(settings)}
    created = _call(api, token_file, lambda c: c.call("POST", "/v1/apps", json=body))
    output.record(created, as_json=as_json)


def _settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected KEY=VALUE", param_hint="--setting")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@examples("sixpod app show shop")
@app.command("show")
@click.argument("name")
@API
@TOKEN
@JSON
def app_show(name: str, api: str, token_file: Path, as_json: bool) -> None:
    """Show the app NAME with its settings."""
    item = _call(api, token_file, lambda c: c.call("GET", f"/v1/apps/{seg(name)}"))
    output.record(item, as_json=as_json)


@examples("sixpod app set shop --shard-seed 7", "sixpod app set shop --setting tls=true")
@app.command("set")
@click.argument("name")
@click.option("--owner", help="New owner.")
@click.option("--shard-seed", type=int, help="New shard seed: moves the app to other VIPs.")
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=JSON",
    help="Settings (repeat for more); when given they replace all the app's settings.",
)
@API
@TOKEN
@JSON
def app_set(
    name: str,
    owner: str | None,
    shard_seed: int | None,
    settings: tuple[str, ...],
    api: str,
    token_file: Path,
    as_json: bool,
) -> None:
    """Change the app NAME: only what is given changes."""
    body: dict[str, Any] = {"owner": owner, "shard_seed": shard_seed}
    if settings:
        body["settings"] = _settings(settings)
    body = {k: v for k, v in body.items() if v is not None}
    item = _call(api, token_file, lambda c: c.call("PATCH", f"/v1/apps/{seg(name)}", json=body))
    output.record(item, as_json=as_json)


@examples("sixpod app delete shop", "sixpod app delete shop --force   # a big app")
@app.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Pass the churn guard (a mass removal).")
@API
@TOKEN
@JSON
def app_delete(name: str, force: bool, api: str, token_file: Path, as_json: bool) -> None:
    """Delete the app NAME with its domains and endpoints."""
    params = {"force": "true"} if force else {}
    done = _call(
        api, token_file, lambda c: c.call("DELETE", f"/v1/apps/{seg(name)}", params=params)
    )
    data = {"app": name, "revision": done["revision"]}
    output.line(f"deleted app {name} (revision {done['revision']})", data, as_json=as_json)


@examples("sixpod domain attach www.shop.example shop", "sixpod domain list --app shop")
@click.group()
def domain() -> None:
    """Customer hostnames, each attached to one app."""


@examples(
    "sixpod domain attach www.shop.example shop", "sixpod domain attach '*.shop.example' shop"
)
@domain.command("attach")
@click.argument("host")
@click.argument("app_name", metavar="APP")
@API
@TOKEN
@JSON
def domain_attach(host: str, app_name: str, api: str, token_file: Path, as_json: bool) -> None:
    """Route HOST (a name or *.name) to APP."""
    d = _call(
        api,
        token_file,
        lambda c: c.call("PUT", f"/v1/domains/{seg(host)}", json={"app": app_name}),
    )
    text = f"{d['name']} -> app {d['app']} (revision {d['revision']})"
    output.line(text, d, as_json=as_json)


@examples("sixpod domain detach www.shop.example")
@domain.command("detach")
@click.argument("host")
@API
@TOKEN
@JSON
def domain_detach(host: str, api: str, token_file: Path, as_json: bool) -> None:
    """Stop routing HOST."""
    done = _call(api, token_file, lambda c: c.call("DELETE", f"/v1/domains/{seg(host)}"))
    data = {"domain": host, "revision": done["revision"]}
    output.line(f"detached {host} (revision {done['revision']})", data, as_json=as_json)


@examples("sixpod domain list", "sixpod domain list --app shop --json")
@domain.command("list")
@click.option("--app", "app_name", metavar="APP", help="Only the domains of APP.")
@API
@TOKEN
@JSON
def domain_list(app_name: str | None, api: str, token_file: Path, as_json: bool) -> None:
    """List domains: name, app, revision."""
    params = {"app": app_name} if app_name else {}
    items = _call(api, token_file, lambda c: c.pages("/v1/domains", **params))
    output.rows(items, ["name", "app", "revision"], as_json=as_json)


CERT_FIELDS = ["domain", "names", "not_after", "issuer", "key_type", "source"]


@examples(
    "sixpod cert upload shop.example.com --chain fullchain.pem --key privkey.pem",
    "sixpod cert list",
)
@click.group(short_help="TLS certificates per domain; keys never shown.")
def cert() -> None:
    """TLS certificates per domain; the private key is never shown."""


def _pem_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not ASCII PEM text"
        raise CommandFailed(f"{path}: cannot read the {what}: {reason}") from None


@examples(
    "sixpod cert upload shop.example.com --chain fullchain.pem --key privkey.pem",
    "sixpod cert upload '*.shop.example.com' --chain wild.pem --key wild.key --json",
)
@cert.command("upload")
@click.argument("domain")
@click.option(
    "--chain",
    "chain_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificates: the site's first, then each issuer.",
)
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The unencrypted PEM private key of the site's certificate.",
)
@API
@TOKEN
@JSON
def cert_upload(
    domain: str, chain_file: Path, key_file: Path, api: str, token_file: Path, as_json: bool
) -> None:
    """Store DOMAIN's certificate, checked whole first.

    It replaces the one stored before; a chain or key that does not pass changes nothing."""
    body = {"chain": _pem_file(chain_file, "chain"), "key": _pem_file(key_file, "key")}
    c = _call(api, token_file, lambda cl: cl.call("PUT", f"/v1/certs/{seg(domain)}", json=body))
    output.record({k: c.get(k) for k in [*CERT_FIELDS, "fingerprint"]}, as_json=as_json)


@examples("sixpod cert show shop.example.com")
@cert.command("show")
@click.argument("domain")
@API
@TOKEN
@JSON
def cert_show(domain: str, api: str, token_file: Path, as_json: bool) -> None:
    """DOMAIN's certificate: names, validity, issuer (never the key)."""
    output.record(
        _call(api, token_file, lambda c: c.call("GET", f"/v1/certs/{seg(domain)}")),
        as_json=as_json,
    )


@examples("sixpod cert list", "sixpod cert list --json")
@cert.command("list")
@API
@TOKEN
@JSON
def cert_list(api: str, token_file: Path, as_json: bool) -> None:
    """List certificates: domain, names, expiry, issuer, source."""
    output.rows(
        _call(api, token_file, lambda c: c.pages("/v1/certs")), CERT_FIELDS, as_json=as_json
    )


@examples("sixpod cert delete shop.example.com")
@cert.command("delete")
@click.argument("domain")
@API
@TOKEN
@JSON
def cert_delete(domain: str, api: str, token_file: Path, as_json: bool) -> None:
    """Remove DOMAIN's certificate."""
    _call(api, token_file, lambda c: c.call("DELETE", f"/v1/certs/{seg(domain)}"))
    output.line(f"deleted the certificate of {domain}", {"domain": domain}, as_json=as_json)


ACME_FIELDS = ["domain", "status", "not_after", "next_attempt", "failures", "error"]


@examples(
    "sixpod cert status",
    "sixpod cert status shop.example.com",
    "sixpod cert status --failing --json",
)
@cert.command("status", short_help="ACME per domain: status, expiry, next attempt, error.")
@click.argument("domain", required=False)
@click.option("--failing", is_flag=True, help="Only the domains whose last order failed.")
@API
@TOKEN
@JSON
def cert_status(
    domain: str | None, failing: bool, api: str, token_file: Path, as_json: bool
) -> None:
    """Where ACME stands for every attached domain, or for DOMAIN: pending, valid,
    renewing, failed (with the CA's error and the next attempt), uploaded (ACME leaves an
    uploaded certificate alone) or wildcard (upload one: HTTP-01 cannot issue it)."""
    if domain is not None:
        item = _call(api, token_file, lambda c: c.call("GET", f"/v1/acme/{seg(domain)}"))
        output.record(item, as_json=as_json)
        return
    items = _call(api, token_file, lambda c: c.pages("/v1/acme"))
    if failing:
        items = [i for i in items if i.get("status") == "failed"]
    output.rows(items, ACME_FIELDS, as_json=as_json)


@examples("sixpod cert keygen --out /etc/sixpod")
@cert.command("keygen", short_help="Make the pod's key-sealing pair (edge nodes, controller).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for edge-seal.key (0600, edge nodes only) and edge-seal.pub.",
)
@JSON
def cert_keygen(out: Path, as_json: bool) -> None:
    """Make the pod's key-sealing pair: the controller gets the public half
    (cert_seal_key), every edge node the private half (tls.seal_key); nothing else can
    read a certificate's private key."""
    from sixpod.tenants import sealed

    private, public = sealed.generate()
    priv_path, pub_path = out / "edge-seal.key", out / "edge-seal.pub"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, data, mode in ((priv_path, private, 0o600), (pub_path, public, 0o644)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    except FileExistsError as e:
        raise CommandFailed(
            f"{e.filename}: exists; a new pair would orphan every sealed key"
        ) from None
    except OSError as e:
        raise CommandFailed(f"{e.filename or out}: {e.strerror}") from None
    output.line(
        f"wrote {priv_path} (edge nodes only) and {pub_path} (the controller)",
        {"private": str(priv_path), "public": str(pub_path)},
        as_json=as_json,
    )


@examples(
    "sixpod endpoint add shop '[2001:db8:200:1::10]:8080'",
    "sixpod endpoint list shop",
)
@click.group()
def endpoint() -> None:
    """Containers behind an app, as [address]:port.

    Each endpoint must be inside its node's /64."""


@examples(
    "sixpod endpoint add shop '[2001:db8:200:1::10]:8080' '[2001:db8:200:2::10]:8080'",
    "sixpod endpoint add shop '[2001:db8:200:1::10]:8080' --state draining",
)
@endpoint.command("add")
@click.argument("app_name", metavar="APP")
@click.argument("endpoints", nargs=-1, required=True, metavar="[ADDRESS]:PORT...")
@click.option(
    "--weight", type=int, default=100, show_default=True, help="Share of requests, relative."
)
@click.option(
    "--state",
    type=click.Choice(["up", "draining", "down"]),
    default="up",
    show_default=True,
    help="draining: finish requests in flight, take no new ones; down: take none.",
)
@API
@TOKEN
@JSON
def endpoint_add(
    app_name: str,
    endpoints: tuple[str, ...],
    weight: int,
    state: str,
    api: str,
    token_file: Path,
    as_json: bool,
) -> None:
    """Add (or update) APP's endpoints.

    Each must be inside a node's /64."""
    from sixpod import addr

    items = []
    for text in endpoints:
        try:
            e = addr.parse_endpoint(text)
        except addr.AddressError as err:
            raise CommandFailed.because(err, f"sixpod: {err}") from None
        items.append(
            {"address": addr.format_ip(e.ip), "port": e.port, "weight": weight, "state": state}
        )
    body = {"endpoints": items}
    _endpoints_changed(app_name, api, token_file, body, as_json)


def _endpoints_changed(
    app_name: str, api: str, token_file: Path, body: dict[str, Any], as_json: bool
) -> None:
    done = _call(
        api,
        token_file,
        lambda c: c.call("POST", f"/v1/apps/{seg(app_name)}/endpoints", json=body),
    )
    data = {"app": app_name, "changed": done["changed"], "removed": done["removed"]}
    text = (
        f"{app_name}: {output.plural(done['changed'], 'endpoint')} added or changed, "
        f"{done['removed']} removed"
    )
    output.line(text, data, as_json=as_json)


@examples("sixpod endpoint remove shop '[2001:db8:200:1::10]:8080'")
@endpoint.command("remove")
@click.argument("app_name", metavar="APP")
@click.argument("endpoints", nargs=-1, required=True, metavar="[ADDRESS]:PORT...")
@click.option("--force", is_flag=True, help="Pass the churn guard (a mass removal).")
@API
@TOKEN
@JSON
def endpoint_remove(
    app_name: str,
    endpoints: tuple[str, ...],
    force: bool,
    api: str,
    token_file: Path,
    as_json: bool,
) -> None:
    """Remove APP's endpoints."""
    body = {"remove": list(endpoints), "force": force}
    _endpoints_changed(app_name, api, token_file, body, as_json)


@examples("sixpod endpoint list shop", "sixpod endpoint list shop --json")
@endpoint.command("list")
@click.argument("app_name", metavar="APP")
@API
@TOKEN
@JSON
def endpoint_list(app_name: str, api: str, token_file: Path, as_json: bool) -> None:
    """List APP's endpoints: endpoint, node, weight, state, revision."""
    items = _call(api, token_file, lambda c: c.pages(f"/v1/apps/{seg(app_name)}/endpoints"))
    output.rows(items, ["endpoint", "node", "weight", "state", "revision"], as_json=as_json)


@examples("sixpod vip list", "sixpod vip set 203.0.113.7 blackholed --reason 'DDoS on shop'")
@click.group()
def vip() -> None:
    """VIP states: active, drained or blackholed.

    drained: out of DNS answers; blackholed: dropped upstream (an attack)."""


@examples("sixpod vip list", "sixpod vip list --json")
@vip.command("list")
@API
@TOKEN
@JSON
def vip_list(api: str, token_file: Path, as_json: bool) -> None:
    """List every VIP: address, state, reason, revision."""
    items = _call(api, token_file, lambda c: c.call("GET", "/v1/vips")["items"])
    output.rows(items, ["address", "state", "reason", "revision"], as_json=as_json)


@examples(
    "sixpod vip set 203.0.113.7 drained --reason maintenance",
    "sixpod vip set 203.0.113.7 active",
)
@vip.command("set")
@click.argument("address")
@click.argument("state", type=click.Choice(["active", "drained", "blackholed"]))
@click.option("--reason", default="", help="Why, for whoever looks next.")
@API
@TOKEN
@JSON
def vip_set(
    address: str, state: str, reason: str, api: str, token_file: Path, as_json: bool
) -> None:
    """Set the state of the VIP ADDRESS."""
    body = {"state": state, "reason": reason}
    v = _call(api, token_file, lambda c: c.call("PUT", f"/v1/vips/{seg(address)}", json=body))
    why = f"{v['reason']}; " if v["reason"] else ""
    text = f"VIP {v['address']} {v['state']} ({why}revision {v['revision']})"
    output.line(text, v, as_json=as_json)


@examples("sixpod publisher status", "sixpod publisher force")
@click.group()
def publisher() -> None:
    """The publisher to Redis: its state; the churn guard."""


@examples("sixpod publisher status", "sixpod publisher status --json")
@publisher.command("status")
@API
@TOKEN
@JSON
def publisher_status(api: str, token_file: Path, as_json: bool) -> None:
    """The controller's revision and the publisher's state.

    Exits 1 when the publisher reports an error (Redis unreachable, say), with the error on
    stderr."""
    status = _call(api, token_file, lambda c: c.call("GET", "/v1/status"))
    output.record(status, as_json=as_json)
    error = (status.get("publisher") or {}).get("error")
    if error:
        raise CommandFailed(f"sixpod: publisher: {error}")


@examples("sixpod publisher force", "sixpod publisher force --through 1234")
@publisher.command("force")
@click.option("--through", type=int, help="Last revision to let through (default: all now).")
@API
@TOKEN
@JSON
def publisher_force(through: int | None, api: str, token_file: Path, as_json: bool) -> None:
    """Let changes held back by the churn guard through to Redis."""
    body = {} if through is None else {"through": through}
    done = _call(api, token_file, lambda c: c.call("POST", "/v1/publisher/force", json=body))
    text = f"publisher: let through every change up to revision {done['forced_through']}"
    output.line(text, done, as_json=as_json)
