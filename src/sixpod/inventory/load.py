"""Read ``pod.yaml`` into a checked :class:`Inventory`, or diagnostics that name line and column."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sixpod.configtypes import NAME_RE
from sixpod.errors import ConfigFileError, SixpodError
from sixpod.inventory import source
from sixpod.inventory.errors import Diagnostic, InventoryError
from sixpod.inventory.model import Inventory
from sixpod.inventory.rules import check
from sixpod.inventory.source import Path, Source
from sixpod.words import describe_value, suggest


@dataclass(frozen=True, slots=True)
class Loaded:
    inventory: Inventory
    source: Source
    warnings: tuple[Diagnostic, ...]  # and notes: everything printed that does not fail


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
    diags = [src.diagnostic(f.path, f.message, warning=f.warning, note=f.note) for f in findings]
    if any(d.error for d in diags):
        raise InventoryError([d for d in diags if not d.note])  # notes would be noise here
    return Loaded(inv, src, tuple(diags))


M = TypeVar("M", bound=BaseModel)


def load_model(text: str, filename: str, model: type[M]) -> M:
    """Parse YAML (or JSON) ``text`` into ``model``, a daemon's config.

    A bad file raises the config error of the model's package (its ``config_error`` class
    attribute; :class:`~sixpod.errors.ConfigFileError` if it names none), with a
    ``FILE:LINE:COL`` diagnostic for each problem: never an :class:`InventoryError`.
    """
    error: type[SixpodError] = getattr(model, "config_error", ConfigFileError)
    try:
        src = source.load(text, filename)
    except InventoryError as e:  # the YAML itself: not valid, too big, too deep
        raise error.at(e.diagnostics) from None
    try:
        return model.model_validate(src.data)
    except ValidationError as e:
        raise error.at(validation_diagnostics(e, src, model)) from None


def validation_diagnostics(
    err: ValidationError, src: Source, root: type[BaseModel]
) -> list[Diagnostic]:
    """Translate pydantic's errors into ``FILE:LINE:COL`` diagnostics in the operator's terms.

    Each message names the key and says what is expected and what was found; pydantic's own
    sentences never come through. A mistyped key is one message with a suggestion (case is
    ignored, ``ROLE`` for ``role``; then difflib), and the required key it meant is not also
    reported missing.
    """
    errors = err.errors(include_url=False)
    missing: dict[Path, set[str]] = {}
    for e in errors:
        if e["type"] == "missing":
            loc: Path = tuple(e["loc"])
            missing.setdefault(loc[:-1], set()).add(str(loc[-1]))
    meant: set[Path] = set()  # the missing keys a typo stands for
    out: list[Diagnostic] = []
    for e in errors:
        path: Path = tuple(e["loc"])
        kind = e["type"]
        if kind == "extra_forbidden":
            parent, key = path[:-1], str(path[-1])
            known = _known_keys(root, parent)
            guess = _suggest(key, sorted(missing.get(parent, ()))) or _suggest(key, known)
            if guess is not None:
                meant.add((*parent, guess))
                msg = f"unknown key {key!r}: did you mean {guess!r}?"
            elif known:
                msg = f"unknown key {key!r} (expected one of: {', '.join(known)})"
            else:
                msg = f"unknown key {key!r}"
            out.append(src.diagnostic(path, msg, key=True))
    for e in errors:
        path = tuple(e["loc"])
        kind = e["type"]
        if kind == "extra_forbidden" or path in meant:
            continue
        if kind == "too_short" and len(e.get("input") or ()) >= e["ctx"]["min_length"]:
            continue  # its items were wrong, and each says so
        where = _where(src.data, path)
        if kind == "missing":
            what = _describe(root, path)
            where = _where(src.data, path[:-1])
            msg = f"missing required key {path[-1]!r}" + (f" ({what})" if what else "")
            out.append(src.diagnostic(path[:-1], f"{where}: {msg}" if where else msg))
            continue
        msg = operator_message(e, _describe(root, path), _known_keys(root, path))
        out.append(src.diagnostic(path, f"{where}: {msg}" if where else msg))
    return out


def _suggest(key: str, choices: list[str]) -> str | None:
    return suggest(key, choices)


# Lists whose items have a ``name``: an error inside one names it ("node app1: mtu: ...").
_NAMED_ITEMS = {"nodes": "node", "racks": "rack", "upstreams": "upstream"}


def _where(data: Any, path: Path) -> str:
    """``path`` as an operator reads it: ``pod.vips.ipv4.count``, ``node app1: mtu``,
    ``rack r1: tor.ports``, ``roles.edge.services[1]``."""
    subject, rest = "", list[str]()
    node = data
    for i, part in enumerate(path):
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parent = path[i - 1] if i else None
            if isinstance(name, str) and isinstance(parent, str) and parent in _NAMED_ITEMS:
                shown = name if NAME_RE.match(name) else repr(name)  # never raw control text
                subject, rest = f"{_NAMED_ITEMS[parent]} {shown}", []
            elif rest:
                rest[-1] += f"[{part}]"
            else:
                rest.append(f"[{part}]")
            node = item
        else:
            rest.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    dotted = ".".join(rest)
    if subject:
        return f"{subject}: {dotted}" if dotted else subject
    return dotted


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def operator_message(e: Any, what: str | None, keys: list[str]) -> str:
    """One pydantic error as an operator reads it: what is expected, what was found (also
    the controller API's wording for a request body)."""
    kind, value, ctx = e["type"], e.get("input"), e.get("ctx") or {}
    about = f" ({what})" if what else ""
    if kind in ("int_type", "int_parsing", "int_from_float"):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value):
            hint = " (write numbers without quotes)"
        found = str(value) if isinstance(value, float) else describe_value(value)
        return f"expected a whole number{about}, got {found}{hint}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number{about}, got {describe_value(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false{about}, got {describe_value(value)}"
    if kind in ("string_type", "string_sub_type"):
        return f"expected text{about}, got {describe_value(value)}"
    if kind in ("tuple_type", "list_type", "set_type", "frozen_set_type", "iterable_type"):
        return f"expected a list{about}, got {describe_value(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        with_keys = f" with keys {', '.join(keys)}" if keys else ""
        return f"expected a mapping{with_keys}{about}, got {describe_value(value)}"
    if kind == "too_short":
        n = ctx["min_length"]
        return (
            f"expected at least {n} item{'s' if n != 1 else ''}{about}, got {describe_value(value)}"
        )
    if kind == "too_long":
        n = ctx["max_length"]
        return f"expected at most {n} item{'s' if n != 1 else ''}{about}, got {len(value)}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx[key]}{about}, got {value}"
    if kind in ("enum", "literal_error"):
        choices = _choices(str(ctx.get("expected", "")))
        guess = _suggest(str(value), choices) if isinstance(value, str) else None
        found = repr(value) if isinstance(value, str) else describe_value(value)
        msg = f"{found} is not one of {', '.join(choices)}"
        return msg + (f": did you mean {guess!r}?" if guess else "")
    if kind in ("string_too_short", "string_too_long"):
        n = ctx.get("min_length", ctx.get("max_length"))
        words = "at least" if kind == "string_too_short" else "at most"
        return f"expected text of {words} {n} characters{about}, got {describe_value(value)}"
    if kind == "string_pattern_mismatch":
        return f"expected text matching {ctx['pattern']}{about}, got {describe_value(value)}"
    if kind == "value_error":
        return str(e["msg"]).removeprefix("Value error, ")
    return f"not valid here{about}: {describe_value(value)}"


def _describe(root: type[BaseModel], path: Path) -> str | None:
    """The documented meaning of the field at ``path`` (its ``Field(description=...)``)."""
    if not path or isinstance(path[-1], int):
        return None
    model = _model_in(_hint_at(root, path[:-1]))
    field = model.model_fields.get(str(path[-1])) if model else None
    return field.description if field else None


def _hint_at(root: type[BaseModel], path: Path) -> Any:
    hint: Any = root
    for part in path:
        model = _model_in(hint)
        if isinstance(part, int):
            hint = _item_type(hint)
        elif model is not None and part in model.model_fields:
            hint = model.model_fields[part].annotation
        else:
            hint = _item_type(hint)
    return hint


def _known_keys(root: type[BaseModel], path: Path) -> list[str]:
    """The keys a model at ``path`` accepts, found by walking field annotations."""
    model = _model_in(_hint_at(root, path))
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
