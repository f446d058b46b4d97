"""``sixpod controller`` and the thin API verbs: ``app``, ``domain``, ``endpoint``, ``vip``,
``publisher``. The verbs talk to the controller at ``--api`` (or ``$SIXPOD_API``) with the
token in ``--token-file`` (or ``$SIXPOD_TOKEN_FILE``)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sixpod.cli.config import load_config_or_exit
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
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")


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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        sys.exit(run(cfg))
    except (OSError, ValueError, TenantError) as e:
        click.echo(f"sixpod controller: {e}", err=True)
        sys.exit(1)


def _run(
    api: str,
    token_file: Path,
    fn: Callable[[Client], Any],
    as_json: bool,
    show: Callable[[Any], None] | None = None,
) -> Any:
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as e:
        click.echo(f"{token_file}: cannot read the API token: {e.strerror}", err=True)
        sys.exit(1)
    client = Client(api, token)
    try:
        result = fn(client)
    except ApiError as e:
        click.echo(f"sixpod: {e.detail}", err=True)
        sys.exit(1)
    finally:
        client.close()
    if as_json or show is None:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        show(result)
    return result


def _table(columns: list[str]) -> Callable[[Any], None]:
    def show(items: list[dict[str, Any]]) -> None:
        t = Table(*columns, box=None)
        for i in items:
            t.add_row(*(str(i.get(c, "")) for c in columns))
        Console().print(t)

    return show


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
    """List every app: name, owner, shard seed, revision."""
    _run(
        api,
        token_file,
        lambda c: c.pages("/v1/apps"),
        as_json,
        _table(["name", "owner", "shard_seed", "revision"]),
    )


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
    _run(api, token_file, lambda c: c.call("POST", "/v1/apps", json=body), as_json)


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
def app_show(name: str, api: str, token_file: Path) -> None:
    """Show the app NAME with its settings."""
    _run(api, token_file, lambda c: c.call("GET", f"/v1/apps/{seg(name)}"), True)


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
def app_set(
    name: str,
    owner: str | None,
    shard_seed: int | None,
    settings: tuple[str, ...],
    api: str,
    token_file: Path,
) -> None:
    """Change the app NAME: only what is given changes."""
    body: dict[str, Any] = {"owner": owner, "shard_seed": shard_seed}
    if settings:
        body["settings"] = _settings(settings)
    body = {k: v for k, v in body.items() if v is not None}
    _run(api, token_file, lambda c: c.call("PATCH", f"/v1/apps/{seg(name)}", json=body), True)


@examples("sixpod app delete shop", "sixpod app delete shop --force   # a big app")
@app.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Pass the churn guard (a mass removal).")
@API
@TOKEN
def app_delete(name: str, force: bool, api: str, token_file: Path) -> None:
    """Delete the app NAME with its domains and endpoints."""
    params = {"force": "true"} if force else {}
    _run(api, token_file, lambda c: c.call("DELETE", f"/v1/apps/{seg(name)}", params=params), True)


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
def domain_attach(host: str, app_name: str, api: str, token_file: Path) -> None:
    """Route HOST (a name or *.name) to APP.

    If another app had HOST, it moves to APP."""
    _run(
        api,
        token_file,
        lambda c: c.call("PUT", f"/v1/domains/{seg(host)}", json={"app": app_name}),
        True,
    )


@examples("sixpod domain detach www.shop.example")
@domain.command("detach")
@click.argument("host")
@API
@TOKEN
def domain_detach(host: str, api: str, token_file: Path) -> None:
    """Stop routing HOST."""
    _run(api, token_file, lambda c: c.call("DELETE", f"/v1/domains/{seg(host)}"), True)


@examples("sixpod domain list", "sixpod domain list --app shop --json")
@domain.command("list")
@click.option("--app", "app_name", metavar="APP", help="Only the domains of APP.")
@API
@TOKEN
@JSON
def domain_list(app_name: str | None, api: str, token_file: Path, as_json: bool) -> None:
    """List domains: name, app, revision."""
    params = {"app": app_name} if app_name else {}
    _run(
        api,
        token_file,
        lambda c: c.pages("/v1/domains", **params),
        as_json,
        _table(["name", "app", "revision"]),
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
def endpoint_add(
    app_name: str, endpoints: tuple[str, ...], weight: int, state: str, api: str, token_file: Path
) -> None:
    """Add (or update) APP's endpoints.

    Each must be inside a node's /64."""
    from sixpod import addr

    items = []
    for text in endpoints:
        try:
            e = addr.parse_endpoint(text)
        except addr.AddressError as err:
            click.echo(f"sixpod: {err}", err=True)
            sys.exit(1)
        items.append(
            {"address": addr.format_ip(e.ip), "port": e.port, "weight": weight, "state": state}
        )
    _run(
        api,
        token_file,
        lambda c: c.call("POST", f"/v1/apps/{seg(app_name)}/endpoints", json={"endpoints": items}),
        True,
    )


@examples("sixpod endpoint remove shop '[2001:db8:200:1::10]:8080'")
@endpoint.command("remove")
@click.argument("app_name", metavar="APP")
@click.argument("endpoints", nargs=-1, required=True, metavar="[ADDRESS]:PORT...")
@click.option("--force", is_flag=True, help="Pass the churn guard (a mass removal).")
@API
@TOKEN
def endpoint_remove(
    app_name: str, endpoints: tuple[str, ...], force: bool, api: str, token_file: Path
) -> None:
    """Remove APP's endpoints."""
    body = {"remove": list(endpoints), "force": force}
    _run(
        api,
        token_file,
        lambda c: c.call("POST", f"/v1/apps/{seg(app_name)}/endpoints", json=body),
        True,
    )


@examples("sixpod endpoint list shop", "sixpod endpoint list shop --json")
@endpoint.command("list")
@click.argument("app_name", metavar="APP")
@API
@TOKEN
@JSON
def endpoint_list(app_name: str, api: str, token_file: Path, as_json: bool) -> None:
    """List APP's endpoints: endpoint, node, weight, state, revision."""
    _run(
        api,
        token_file,
        lambda c: c.pages(f"/v1/apps/{seg(app_name)}/endpoints"),
        as_json,
        _table(["endpoint", "node", "weight", "state", "revision"]),
    )


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
    _run(
        api,
        token_file,
        lambda c: c.call("GET", "/v1/vips")["items"],
        as_json,
        _table(["address", "state", "reason", "revision"]),
    )


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
def vip_set(address: str, state: str, reason: str, api: str, token_file: Path) -> None:
    """Set the state of the VIP ADDRESS."""
    body = {"state": state, "reason": reason}
    _run(api, token_file, lambda c: c.call("PUT", f"/v1/vips/{seg(address)}", json=body), True)


@examples("sixpod publisher status", "sixpod publisher force")
@click.group()
def publisher() -> None:
    """The publisher to Redis: its state; the churn guard."""


@examples("sixpod publisher status")
@publisher.command("status")
@API
@TOKEN
def publisher_status(api: str, token_file: Path) -> None:
    """The controller's revision and the publisher's state.

    Exits 1 when the publisher reports an error (Redis unreachable, say), with the error on
    stderr."""
    status = _run(api, token_file, lambda c: c.call("GET", "/v1/status"), True)
    error = (status.get("publisher") or {}).get("error")
    if error:
        click.echo(f"sixpod: publisher: {error}", err=True)
        sys.exit(1)


@examples("sixpod publisher force", "sixpod publisher force --through 1234")
@publisher.command("force")
@click.option("--through", type=int, help="Last revision to let through (default: all now).")
@API
@TOKEN
def publisher_force(through: int | None, api: str, token_file: Path) -> None:
    """Let changes held back by the churn guard through to Redis."""
    body = {} if through is None else {"through": through}
    _run(api, token_file, lambda c: c.call("POST", "/v1/publisher/force", json=body), True)
