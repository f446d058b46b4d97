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
from sixpod.tenants.client import ApiError, Client, seg
from sixpod.tenants.config import ControllerConfig

API = click.option(
    "--api",
    envvar="SIXPOD_API",
    default="http://[::1]:8700",
    show_default=True,
    help="controller URL ($SIXPOD_API)",
)
TOKEN = click.option(
    "--token-file",
    envvar="SIXPOD_TOKEN_FILE",
    default="/etc/sixpod/controller.token",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="file holding the API token ($SIXPOD_TOKEN_FILE)",
)
JSON = click.option("--json", "as_json", is_flag=True, help="print JSON")


def load_controller_config(path: Path) -> ControllerConfig:
    return load_config_or_exit(path, ControllerConfig)


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="controller.yaml",
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


@click.group()
def app() -> None:
    """Apps (tenants' applications)."""


@app.command("list")
@API
@TOKEN
@JSON
def app_list(api: str, token_file: Path, as_json: bool) -> None:
    _run(
        api,
        token_file,
        lambda c: c.pages("/v1/apps"),
        as_json,
        _table(["name", "owner", "shard_seed", "revision"]),
    )


@app.command("create")
@click.argument("name")
@click.option("--owner", default="")
@click.option("--shard-seed", type=int, default=0)
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=JSON",
    help="a setting; the value is JSON, or text if it is not",
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


@app.command("show")
@click.argument("name")
@API
@TOKEN
def app_show(name: str, api: str, token_file: Path) -> None:
    _run(api, token_file, lambda c: c.call("GET", f"/v1/apps/{seg(name)}"), True)


@app.command("set")
@click.argument("name")
@click.option("--owner")
@click.option("--shard-seed", type=int)
@click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="KEY=JSON",
    help="replaces all settings when given",
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
    body: dict[str, Any] = {"owner": owner, "shard_seed": shard_seed}
    if settings:
        body["settings"] = _settings(settings)
    body = {k: v for k, v in body.items() if v is not None}
    _run(api, token_file, lambda c: c.call("PATCH", f"/v1/apps/{seg(name)}", json=body), True)


@app.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="pass the churn guard")
@API
@TOKEN
def app_delete(name: str, force: bool, api: str, token_file: Path) -> None:
    params = {"force": "true"} if force else {}
    _run(api, token_file, lambda c: c.call("DELETE", f"/v1/apps/{seg(name)}", params=params), True)


@click.group()
def domain() -> None:
    """Customer hostnames, each attached to one app."""


@domain.command("attach")
@click.argument("host")
@click.argument("app_name", metavar="APP")
@API
@TOKEN
def domain_attach(host: str, app_name: str, api: str, token_file: Path) -> None:
    _run(
        api,
        token_file,
        lambda c: c.call("PUT", f"/v1/domains/{seg(host)}", json={"app": app_name}),
        True,
    )


@domain.command("detach")
@click.argument("host")
@API
@TOKEN
def domain_detach(host: str, api: str, token_file: Path) -> None:
    _run(api, token_file, lambda c: c.call("DELETE", f"/v1/domains/{seg(host)}"), True)


@domain.command("list")
@click.option("--app", "app_name")
@API
@TOKEN
@JSON
def domain_list(app_name: str | None, api: str, token_file: Path, as_json: bool) -> None:
    params = {"app": app_name} if app_name else {}
    _run(
        api,
        token_file,
        lambda c: c.pages("/v1/domains", **params),
        as_json,
        _table(["name", "app", "revision"]),
    )


@click.group()
def endpoint() -> None:
    """Containers behind an app: [address]:port inside their node's /64."""


@endpoint.command("add")
@click.argument("app_name", metavar="APP")
@click.argument("endpoints", nargs=-1, required=True, metavar="[ADDRESS]:PORT...")
@click.option("--weight", type=int, default=100, show_default=True)
@click.option(
    "--state", type=click.Choice(["up", "draining", "down"]), default="up", show_default=True
)
@API
@TOKEN
def endpoint_add(
    app_name: str, endpoints: tuple[str, ...], weight: int, state: str, api: str, token_file: Path
) -> None:
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


@endpoint.command("remove")
@click.argument("app_name", metavar="APP")
@click.argument("endpoints", nargs=-1, required=True, metavar="[ADDRESS]:PORT...")
@click.option("--force", is_flag=True, help="pass the churn guard")
@API
@TOKEN
def endpoint_remove(
    app_name: str, endpoints: tuple[str, ...], force: bool, api: str, token_file: Path
) -> None:
    body = {"remove": list(endpoints), "force": force}
    _run(
        api,
        token_file,
        lambda c: c.call("POST", f"/v1/apps/{seg(app_name)}/endpoints", json=body),
        True,
    )


@endpoint.command("list")
@click.argument("app_name", metavar="APP")
@API
@TOKEN
@JSON
def endpoint_list(app_name: str, api: str, token_file: Path, as_json: bool) -> None:
    _run(
        api,
        token_file,
        lambda c: c.pages(f"/v1/apps/{seg(app_name)}/endpoints"),
        as_json,
        _table(["endpoint", "node", "weight", "state", "revision"]),
    )


@click.group()
def vip() -> None:
    """VIP states: active, drained (out of DNS answers), blackholed (under attack)."""


@vip.command("list")
@API
@TOKEN
@JSON
def vip_list(api: str, token_file: Path, as_json: bool) -> None:
    _run(
        api,
        token_file,
        lambda c: c.call("GET", "/v1/vips")["items"],
        as_json,
        _table(["address", "state", "reason", "revision"]),
    )


@vip.command("set")
@click.argument("address")
@click.argument("state", type=click.Choice(["active", "drained", "blackholed"]))
@click.option("--reason", default="")
@API
@TOKEN
def vip_set(address: str, state: str, reason: str, api: str, token_file: Path) -> None:
    body = {"state": state, "reason": reason}
    _run(api, token_file, lambda c: c.call("PUT", f"/v1/vips/{seg(address)}", json=body), True)


@click.group()
def publisher() -> None:
    """The publisher to Redis: status, and releasing the churn guard."""


@publisher.command("status")
@API
@TOKEN
def publisher_status(api: str, token_file: Path) -> None:
    """Print the controller's revision and publisher state (JSON). Exits 1 when the
    publisher reports an error (Redis unreachable, say), with the error on stderr."""
    status = _run(api, token_file, lambda c: c.call("GET", "/v1/status"), True)
    error = (status.get("publisher") or {}).get("error")
    if error:
        click.echo(f"sixpod: publisher: {error}", err=True)
        sys.exit(1)


@publisher.command("force")
@click.option("--through", type=int, help="last revision to let through (default: all now)")
@API
@TOKEN
def publisher_force(through: int | None, api: str, token_file: Path) -> None:
    body = {} if through is None else {"through": through}
    _run(api, token_file, lambda c: c.call("POST", "/v1/publisher/force", json=body), True)
