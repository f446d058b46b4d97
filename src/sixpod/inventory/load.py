"""Read ``pod.yaml`` into a checked :class:`Inventory`, or diagnostics that name line and column."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sixpod.inventory import source
from sixpod.inventory.checks import check
from sixpod.inventory.errors import Diagnostic, InventoryError
from sixpod.inventory.model import Inventory
from sixpod.inventory.source import Path, Source


@dataclass(frozen=True, slots=True)
class Loaded:
    inventory: Inventory
    source: Source
    warnings: tuple[Diagnostic, ...]


def load_inventory(text: str, filename: str) -> Loaded:
    """Parse, validate and check; raise :class:`InventoryError` with every error found."""
    src = source.load(text, filename)
    if not isinstance(src.data, dict):
        raise InventoryError([src.diagnostic((), "expected a mapping with pod, racks and nodes")])
    try:
        inv = Inventory.model_validate(src.data)
    except ValidationError as e:
        raise InventoryError(validation_diagnostics(e, src, Inventory)) from None
    findings = check(inv)
    diags = [src.diagnostic(f.path, f.message, warning=f.warning) for f in findings]
    if any(not d.warning for d in diags):
        raise InventoryError(diags)
    return Loaded(inv, src, tuple(diags))


M = TypeVar("M", bound=BaseModel)


def load_model(text: str, filename: str, model: type[M]) -> M:
    """Parse YAML (or JSON) ``text`` into ``model``; errors name ``FILE:LINE:COL``."""
    src = source.load(text, filename)
    try:
        return model.model_validate(src.data)
    except ValidationError as e:
        raise InventoryError(validation_diagnostics(e, src, model)) from None


def validation_diagnostics(
    err: ValidationError, src: Source, root: type[BaseModel]
) -> list[Diagnostic]:
    """Translate pydantic's errors into ``FILE:LINE:COL`` diagnostics in plain words."""
    out: list[Diagnostic] = []
    for e in err.errors(include_url=False):
        path: Path = tuple(e["loc"])
        kind = e["type"]
        if kind == "extra_forbidden":
            known = _known_keys(root, path[:-1])
            hint = f" (expected one of: {', '.join(known)})" if known else ""
            out.append(src.diagnostic(path, f"unknown key {path[-1]!r}{hint}", key=True))
        elif kind == "missing":
            out.append(src.diagnostic(path[:-1], f"missing required key {path[-1]!r}"))
        else:
            msg = str(e["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in path)
            out.append(src.diagnostic(path, f"{where}: {msg}" if where else msg))
    return out


def _known_keys(root: type[BaseModel], path: Path) -> list[str]:
    """The keys a model at ``path`` accepts, found by walking field annotations."""
    hint: Any = root
    for part in path:
        model = _model_in(hint)
        if isinstance(part, int):
            hint = _item_type(hint)
        elif model is not None and part in model.model_fields:
            hint = model.model_fields[part].annotation
        else:
            hint = _item_type(hint)
    model = _model_in(hint)
    return sorted(model.model_fields) if model else []


def _model_in(hint: Any) -> type[BaseModel] | None:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        for arg in typing.get_args(hint):
            found = _model_in(arg)
            if found:
                return found
    return None


def _item_type(hint: Any) -> Any:
    for arg in typing.get_args(hint):
        if arg is not Ellipsis and arg is not str and arg is not type(None):
            return arg
    return None
