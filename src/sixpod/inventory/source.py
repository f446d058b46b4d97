"""YAML source text with positions: every value and key keeps its line and column.

PyYAML's composer gives the node tree; this module turns it into plain data with its own
scalar rules (YAML 1.2 core-like: ``true``/``false``, ``null``, decimal integers, decimal
fractions ``2.5`` and ``1e3`` as floats (not ``.inf``/``.nan``); everything else, notably
``2001:db8::1`` and ``no``, stays a string) and rejects duplicate keys, which PyYAML would
silently merge.

Anchors and aliases may expand to at most :data:`MAX_ALIASED` values in all (a "billion
laughs" file of nine levels of nine aliases would otherwise take minutes and gigabytes), and
an alias may not refer to the node it is in; values nest at most :data:`MAX_DEPTH` levels deep
(PyYAML's composer, like this module's walk, recurses once per level). These limits hold for
everything read through :func:`load`: inventories, locks and the daemons' configs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sixpod.inventory.errors import Diagnostic, InventoryError

Path = tuple[str | int, ...]

_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
_NULL = {"null", "Null", "NULL", "~", ""}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}

MAX_DEPTH = 100
"""The most lists and mappings one value may be nested in (the inventory needs about 6)."""

MAX_ALIASED = 10_000
"""The most values that aliases may expand to in one file (each alias counts its whole node)."""


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    column: int


@dataclass
class Source:
    """Plain data loaded from one file, with the position of every value and key."""

    filename: str
    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Path, *, key: bool = False) -> Position:
        """The closest known position for ``path`` (a key's own position when ``key``)."""
        if key and path in self.keys:
            return self.keys[path]
        p = path
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), Position(1, 1))

    def diagnostic(
        self,
        path: Path,
        message: str,
        *,
        key: bool = False,
        warning: bool = False,
        note: bool = False,
    ) -> Diagnostic:
        pos = self.position(path, key=key)
        return Diagnostic(self.filename, pos.line, pos.column, message, warning=warning, note=note)


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: yaml.ScalarNode) -> Any:
    text: str = node.value
    if node.style is not None and node.style != "":
        return text  # quoted or block scalar: always a string
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text, 10)
    if _FLOAT.match(text):
        return float(text)
    return text


def check_limits(text: str, filename: str) -> None:
    """Refuse, from the event stream alone (the parser does not recurse; the composer does,
    and no node is built yet), nesting deeper than :data:`MAX_DEPTH` and aliases that expand
    to more than :data:`MAX_ALIASED` values or that refer to a node they are in."""
    sizes: dict[str, int] = {}  # anchor -> values in its node, aliases expanded
    heights: dict[str, int] = {}  # anchor -> collections nested in its node, itself included
    stack: list[list[Any]] = []  # open collections: [anchor, values so far, height of children]
    aliased = 0
    deep = f"nested more than {MAX_DEPTH} levels deep"

    def fail(event: yaml.Event, message: str) -> None:
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InventoryError([Diagnostic(filename, line, col, message)])

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                fail(event, deep)
            stack.append([event.anchor, 1, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, size, height = stack.pop()
            if anchor is not None:
                sizes[anchor], heights[anchor] = size, height + 1
            if stack:
                stack[-1][1] += size
                stack[-1][2] = max(stack[-1][2], height + 1)
        elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            size = 1
            if isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor], heights[event.anchor] = 1, 0
            elif any(frame[0] == event.anchor for frame in stack):
                fail(event, f"alias *{event.anchor} refers to a node it is in")
            else:
                size = sizes.get(str(event.anchor), 1)  # undefined: the composer says so
                height = heights.get(str(event.anchor), 0)
                if len(stack) + height > MAX_DEPTH:
                    fail(event, deep)
                if stack:
                    stack[-1][2] = max(stack[-1][2], height)
                aliased += size
                if aliased > MAX_ALIASED:
                    fail(event, f"anchors and aliases expand to more than {MAX_ALIASED} values")
            if stack:
                stack[-1][1] += size


# PyYAML's token names, in the words of someone editing the file
_YAML_WORDS = {
    "<block end>": "the end of an indented block",
    "<block sequence start>": "a list item ('- ')",
    "<block mapping start>": "a key",
    "<stream end>": "the end of the file",
    "<document start>": "'---'",
    "<flow sequence start>": "'['",
    "<flow mapping start>": "'{'",
    "<scalar>": "a value",
    "the node content": "a value",
}


def _plain_yaml(problem: str) -> str:
    for token, words in _YAML_WORDS.items():
        problem = problem.replace(f"'{token}'", words).replace(token, words)
    return problem


def _position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def load(text: str, filename: str) -> Source:
    """Parse YAML ``text``; raise :class:`InventoryError` naming ``filename:LINE:COL``."""
    src = Source(filename, None)
    try:
        check_limits(text, filename)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = _plain_yaml(str(e.problem or e.context))
        raise InventoryError(
            [Diagnostic(filename, line, col, f"not valid YAML: {problem}")]
        ) from None
    except yaml.reader.ReaderError as e:  # a NUL or another character YAML does not allow
        line, col = _position(text, e.position)
        what = f"character U+{e.character:04X}" if isinstance(e.character, int) else "byte"
        raise InventoryError(
            [Diagnostic(filename, line, col, f"not valid YAML: a {what} YAML does not allow")]
        ) from None
    except yaml.YAMLError as e:
        raise InventoryError([Diagnostic(filename, 1, 1, f"not valid YAML: {e}")]) from None
    if root is None:
        raise InventoryError([Diagnostic(filename, 1, 1, "file is empty")])
    problems: list[Diagnostic] = []

    def walk(node: yaml.Node, path: Path) -> Any:
        src.values[path] = _pos(node)
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [walk(child, (*path, i)) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    p = _pos(knode)
                    problems.append(Diagnostic(filename, p.line, p.column, "keys must be text"))
                    continue
                key = str(knode.value)
                if key == "<<":
                    p = _pos(knode)
                    problems.append(
                        Diagnostic(
                            filename, p.line, p.column, "merge keys ('<<') are not supported"
                        )
                    )
                    continue
                if key in out:
                    p, first = _pos(knode), src.keys[(*path, key)]
                    problems.append(
                        Diagnostic(
                            filename,
                            p.line,
                            p.column,
                            f"duplicate key {key!r} (first at line {first.line})",
                        )
                    )
                    continue
                src.keys[(*path, key)] = _pos(knode)
                out[key] = walk(vnode, (*path, key))
            return out
        raise AssertionError(f"unexpected YAML node {node!r}")

    src.data = walk(root, ())
    if problems:
        raise InventoryError(problems)
    return src
