"""The YAML loader's limits: a hostile file is one error naming FILE:LINE:COL, quickly."""

from __future__ import annotations

import time

import pytest

from sixpod.inventory.errors import InventoryError
from sixpod.inventory.source import MAX_ALIASED, MAX_DEPTH, load


def errors(text: str) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        load(text, "f.yaml")
    return [str(d) for d in exc.value.diagnostics]


def bomb(levels: int = 9, width: int = 9) -> str:
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [{', '.join([f'*{names[i - 1]}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once() -> None:
    t0 = time.monotonic()
    found = errors(bomb())
    assert time.monotonic() - t0 < 1
    assert found == [f"f.yaml:5:8: anchors and aliases expand to more than {MAX_ALIASED} values"]


def test_aliases_within_the_limit_load() -> None:
    src = load(bomb(levels=3, width=9), "f.yaml")  # 9 * 9 * 9 values through aliases
    assert len(src.data["c"]) == 9
    assert src.data["c"][8] == [["x"] * 9] * 9
    assert load("a: &a {x: 1}\nb: *a\n", "f.yaml").data == {"a": {"x": 1}, "b": {"x": 1}}


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert errors("a: &a [1, *a]\n") == ["f.yaml:1:11: alias *a refers to a node it is in"]
    assert errors("a: &a {b: [*a]}\n") == ["f.yaml:1:12: alias *a refers to a node it is in"]


def test_an_undefined_alias_is_still_the_composers_error() -> None:
    assert "not valid YAML: found undefined alias" in errors("a: *nope\n")[0]


def test_the_daemons_configs_have_the_same_limits() -> None:
    from sixpod.inventory.load import load_model
    from sixpod.routing.config import AnnouncerConfig
    from sixpod.routing.errors import ConfigError

    with pytest.raises(ConfigError, match="expand to more than"):  # routing's, not inventory's
        load_model(bomb(), "announcer.yaml", AnnouncerConfig)


@pytest.mark.parametrize("levels", [MAX_DEPTH, 1000, 100_000])
def test_deep_nesting_is_one_error(levels: int) -> None:
    text = "pod: " + "[" * levels + "]" * levels + "\n"
    # the mapping is level 1: the list that makes it MAX_DEPTH + 1 is the error
    assert errors(text) == [f"f.yaml:1:{5 + MAX_DEPTH}: nested more than {MAX_DEPTH} levels deep"]
    block = "".join(f"{' ' * i}k{i}:\n" for i in range(MAX_DEPTH + 1)) + " " * 1000 + "x\n"
    assert errors(block) == [
        f"f.yaml:{MAX_DEPTH + 1}:{MAX_DEPTH + 1}: nested more than {MAX_DEPTH} levels deep"
    ]


def test_nesting_up_to_the_limit_loads() -> None:
    levels = MAX_DEPTH - 1
    src = load("pod: " + "[" * levels + "]" * levels + "\n", "f.yaml")
    value, depth = src.data["pod"], 1
    while value:
        value, depth = value[0], depth + 1
    assert depth == MAX_DEPTH - 1


def test_aliases_count_towards_the_depth() -> None:
    half = MAX_DEPTH // 2 + 1
    text = f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    assert errors(text) == [f"f.yaml:2:{4 + half}: nested more than {MAX_DEPTH} levels deep"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "pod:\n  name: x\n - a\n",
            "f.yaml:3:2: not valid YAML: expected the end of an indented block, "
            "but found a list item ('- ')",
        ),
        (
            "pod:\n  name: [x\n",
            "f.yaml:3:1: not valid YAML: expected ',' or ']', but got the end of the file",
        ),
        (
            "pod:\n  name: x\x00y\n",
            "f.yaml:2:10: not valid YAML: a character U+0000 YAML does not allow",
        ),
    ],
)
def test_syntax_errors_are_in_the_editors_words_at_their_place(text: str, message: str) -> None:
    got = errors(text)
    assert got == [message]
    assert not any(token in got[0] for token in ("<block", "<stream", "position", "unicode string"))
