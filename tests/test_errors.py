"""One root exception per package, all under :class:`sixpod.errors.SixpodError`, each carrying
its exit code; a daemon's bad config raises its own package's config error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sixpod import addr
from sixpod.cli import cli
from sixpod.cli.errors import CommandFailed
from sixpod.errors import (
    ConfigFileError,
    Diagnostic,
    ExceptionMap,
    SixpodError,
    map_exceptions,
)
from sixpod.inventory.allocate import AllocationError
from sixpod.inventory.errors import InventoryError
from sixpod.inventory.load import load_model
from sixpod.inventory.render import RenderError
from sixpod.lab.netns import LabError
from sixpod.lab.redisproc import RedisStartError
from sixpod.razor import errors as razor_errors
from sixpod.razor.config import RazorConfig
from sixpod.routing import errors as routing_errors
from sixpod.routing.bfd import BfdError
from sixpod.routing.config import AnnouncerConfig
from sixpod.routing.exabgp import ExaBGPProtocolError, MalformedNegotiated
from sixpod.routing.floor import FloorUnavailable
from sixpod.routing.ledger import LedgerError
from sixpod.routing.loopback import LoopbackError
from sixpod.routing.resilient.config import TorResilientConfig
from sixpod.routing.resilient.errors import CommandError, ParseError, ResilientError
from sixpod.routing.status import StatusError
from sixpod.tenants import errors as tenant_errors
from sixpod.tenants.client import ApiError
from sixpod.tenants.config import ControllerConfig


@pytest.mark.parametrize(
    ("error", "root"),
    [
        (RenderError, InventoryError),
        (AllocationError, InventoryError),
        (LedgerError, routing_errors.DataError),
        (StatusError, routing_errors.DataError),
        (ExaBGPProtocolError, routing_errors.DataError),
        (MalformedNegotiated, routing_errors.DataError),
        (ParseError, routing_errors.DataError),
        (ParseError, ResilientError),
        (CommandError, routing_errors.Unavailable),
        (CommandError, ResilientError),
        (ResilientError, routing_errors.RoutingError),
        (LoopbackError, routing_errors.Unavailable),
        (BfdError, routing_errors.Unavailable),
        (FloorUnavailable, routing_errors.Unavailable),
        (routing_errors.ConfigError, routing_errors.RoutingError),
        (routing_errors.DataError, routing_errors.RoutingError),
        (routing_errors.Unavailable, routing_errors.RoutingError),
        (razor_errors.ConfigError, razor_errors.RazorError),
        (tenant_errors.ConfigError, tenant_errors.TenantError),
        (ApiError, tenant_errors.TenantError),
        (RedisStartError, LabError),
        (InventoryError, SixpodError),
        (routing_errors.RoutingError, SixpodError),
        (razor_errors.RazorError, SixpodError),
        (tenant_errors.TenantError, SixpodError),
        (LabError, SixpodError),
        (addr.AddressError, SixpodError),
        (CommandFailed, SixpodError),
        (ConfigFileError, SixpodError),
    ],
)
def test_each_error_is_under_its_packages_root(error: type[Exception], root: type) -> None:
    assert issubclass(error, root)


def test_an_address_error_is_still_a_value_error() -> None:
    assert issubclass(addr.AddressError, ValueError)  # pydantic validators rely on it
    assert issubclass(RedisStartError, RuntimeError)


@pytest.mark.parametrize(
    ("model", "error"),
    [
        (AnnouncerConfig, routing_errors.ConfigError),
        (TorResilientConfig, routing_errors.ConfigError),
        (RazorConfig, razor_errors.ConfigError),
        (ControllerConfig, tenant_errors.ConfigError),
    ],
)
@pytest.mark.parametrize("text", ["no_such_key: 1\n", "a: [\n"])
def test_a_bad_daemon_config_raises_its_packages_config_error(
    model: type, error: type[SixpodError], text: str
) -> None:
    with pytest.raises(error) as e:
        load_model(text, "d.yaml", model)
    assert not isinstance(e.value, InventoryError)
    assert e.value.exit_code == 1
    assert e.value.diagnostics
    assert str(e.value) == "\n".join(str(d) for d in e.value.diagnostics)
    assert all(d.filename == "d.yaml" for d in e.value.diagnostics)


def test_at_sorts_diagnostics_by_position() -> None:
    late, early = Diagnostic("f", 9, 1, "late"), Diagnostic("f", 2, 3, "early")
    err = razor_errors.ConfigError.at([late, early])
    assert list(err.diagnostics) == [early, late]
    assert err.message == "f:2:3: early\nf:9:1: late"


def test_the_command_line_exits_with_the_errors_exit_code() -> None:
    class Odd(SixpodError):
        exit_code = 7

    failed = CommandFailed.because(Odd("it broke"), "sixpod: it broke")
    assert (failed.lines, failed.exit_code) == (("sixpod: it broke",), 7)
    assert CommandFailed.because(Odd("as is")).lines == ("as is",)
    assert CommandFailed().exit_code == 1

    @cli.command("odd-failure", hidden=True)
    def odd() -> None:
        raise failed

    try:
        res = CliRunner().invoke(cli, ["odd-failure"])
    finally:
        cli.commands.pop("odd-failure")
    assert (res.exit_code, res.stdout, res.stderr) == (7, "", "sixpod: it broke\n")


class _Refused(SixpodError):
    pass


def test_map_exceptions_raises_the_first_matching_translation_without_the_foreign_chain() -> None:
    mapping: ExceptionMap = {
        ConnectionRefusedError: lambda e: _Refused(f"refused: {e.strerror}"),
        OSError: lambda e: SixpodError(f"os: {e}"),
    }
    with pytest.raises(_Refused, match="refused: nobody home") as caught, map_exceptions(mapping):
        raise ConnectionRefusedError(111, "nobody home")
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    with pytest.raises(SixpodError, match="os: boom"), map_exceptions(mapping):
        raise OSError("boom")


def test_map_exceptions_lets_through_what_it_does_not_list_and_what_maps_to_none() -> None:
    mapping: ExceptionMap = {_Refused: None, SixpodError: lambda e: _Refused("translated")}
    with pytest.raises(KeyError), map_exceptions(mapping):
        raise KeyError("not foreign to this edge")
    original = _Refused("ours")
    with pytest.raises(_Refused) as caught, map_exceptions(mapping):
        raise original
    assert caught.value is original
    with pytest.raises(_Refused, match="translated"), map_exceptions(mapping):
        raise SixpodError("another package's")
