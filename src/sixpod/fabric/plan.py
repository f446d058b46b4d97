"""One ToR's plan: what a deploy would change against what it runs now, and the guard's
verdict (pure; the tools' outputs are its inputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sixpod.fabric.frrconf import FrrFacts, facts
from sixpod.fabric.guard import Violation, check


class Verdict(StrEnum):
    UNCHANGED = "unchanged"
    CHANGES = "changes"
    REFUSED = "refused"
    """The guard refuses it; ``--force`` deploys it anyway."""
    INVALID = "invalid"
    """The new config does not parse: never planned, never deployed, whatever ``--force``."""


@dataclass(frozen=True, slots=True)
class Plan:
    tor: str
    verdict: Verdict
    delta: tuple[str, ...] = ()
    """``frr-reload.py --test``'s lines to delete and to add (empty when invalid)."""
    syntax: tuple[str, ...] = ()
    """What ``vtysh -C`` said about the new config (empty when it parses)."""
    violations: tuple[Violation, ...] = ()
    old: FrrFacts | None = None
    new: FrrFacts | None = None
    forced: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def deployable(self) -> bool:
        return self.verdict is Verdict.CHANGES or (self.verdict is Verdict.REFUSED and self.forced)

    @property
    def shown_delta(self) -> tuple[str, ...]:
        """The delta as printed (``fabric plan``, ``ci``, JSON): none for a plan the guard
        refuses and nobody forced (a delta that deletes ``router bgp`` is not a diff to
        review but a reason to stop); the deploy log still records it."""
        if self.verdict is Verdict.REFUSED and not self.forced:
            return ()
        return self.delta

    @property
    def summary(self) -> str:
        if self.verdict is Verdict.INVALID:
            return "the new config does not parse: " + " / ".join(self.syntax[:3])
        if self.verdict is Verdict.UNCHANGED:
            return "nothing to change"
        assert self.old is not None
        assert self.new is not None
        parts = [
            f"neighbors +{len(self.new.neighbors - self.old.neighbors)}"
            f" -{len(self.old.neighbors - self.new.neighbors)}",
            f"VIPs +{len(self.new.vips - self.old.vips)} -{len(self.old.vips - self.new.vips)}",
            f"{len(self.delta)} delta lines",
        ]
        text = ", ".join(parts)
        if self.violations:
            text += "; " + ("forced past: " if self.forced else "refused: ")
            text += "; ".join(str(v) for v in self.violations)
        return text

    def to_json(self) -> dict[str, Any]:
        def f(x: FrrFacts | None) -> dict[str, Any] | None:
            if x is None:
                return None
            return {
                "hostname": x.hostname,
                "bgp_asn": x.bgp_asn,
                "neighbors": sorted(x.neighbors),
                "vips": len(x.vips),
            }

        return {
            "tor": self.tor,
            "verdict": str(self.verdict),
            "summary": self.summary,
            "forced": self.forced,
            "syntax": list(self.syntax),
            "violations": [{"rule": str(v.rule), "message": v.message} for v in self.violations],
            "delta": list(self.shown_delta),
            "running": f(self.old),
            "new": f(self.new),
            "added_neighbors": sorted(self.new.neighbors - self.old.neighbors)
            if self.new and self.old
            else [],
            "removed_neighbors": sorted(self.old.neighbors - self.new.neighbors)
            if self.new and self.old
            else [],
        }


def make_plan(
    tor: str,
    *,
    running: str,
    new: str,
    syntax: list[str],
    delta: list[str] | None,
    max_removed_share: float,
    force: bool = False,
) -> Plan:
    """The plan for ``tor``. ``delta`` is None when the syntax check failed (it was never
    computed: a delta from a config that failed to parse is never shown)."""
    if syntax or delta is None:
        return Plan(tor, Verdict.INVALID, syntax=tuple(syntax or ["not checked"]))
    old_f, new_f = facts(running), facts(new)
    changes = effective_delta(delta)
    if not changes:
        return Plan(tor, Verdict.UNCHANGED, old=old_f, new=new_f)
    violations = check(old_f, new_f, max_removed_share=max_removed_share)
    verdict = Verdict.REFUSED if violations else Verdict.CHANGES
    return Plan(
        tor,
        verdict,
        tuple(changes),
        (),
        violations,
        old_f,
        new_f,
        forced=force and bool(violations),
    )


# Lines a reload adds that FRR 8.4's ``show running-config`` never shows back, so every
# delta would list them again: forwarding (zebra shows it only when off) and BFD timers at
# their defaults (bfdd hides defaults). Re-applying them changes nothing; they are left out.
NOOP_ADDS = frozenset(
    {
        "ip forwarding",
        "ipv6 forwarding",
        "detect-multiplier 3",
        "receive-interval 300",
        "transmit-interval 300",
        "echo-interval 50",
    }
)
TITLES = ("Lines To Delete", "Lines To Add")


def effective_delta(delta: list[str]) -> list[str]:
    """frr-reload's delta without its no-op lines (:data:`NOOP_ADDS`) and without block
    headings left with nothing under them; its two titles kept when a section has lines."""
    sections: dict[str, list[tuple[str, bool]]] = {t: [] for t in TITLES}
    current = TITLES[1]
    for line in delta:
        s = line.strip()
        if s in TITLES:
            current = s
            continue
        if not s or set(s) == {"="}:
            continue
        sections[current].append((line.rstrip(), current == TITLES[1] and s in NOOP_ADDS))
    out: list[str] = []
    for title in TITLES:
        kept = _compact(_prune(sections[title]))
        if kept:
            out += [title, *kept]
    return out


def _compact(lines: list[str]) -> list[str]:
    """frr-reload.py repeats a block's headings before each of its lines; a heading is kept
    only where it is not already the block open at its depth."""
    out: list[str] = []
    last: dict[int, str] = {}  # depth -> the line open there
    for i, line in enumerate(lines):
        d = _depth(line)
        is_head = i + 1 < len(lines) and _depth(lines[i + 1]) > d
        if (is_head or (i + 1 < len(lines) and lines[i + 1] == line)) and last.get(d) == line:
            continue
        out.append(line)
        last = {k: v for k, v in last.items() if k < d}
        last[d] = line
    return out


def _depth(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _prune(marked: list[tuple[str, bool]]) -> list[str]:
    """The lines not marked no-op, less the headings (a line followed by deeper ones in
    frr-reload's output) left with no deeper line under them."""
    lines = [line for line, _ in marked]
    heads = {i for i in range(len(lines) - 1) if _depth(lines[i + 1]) > _depth(lines[i])}
    keep = [i for i, (_, noop) in enumerate(marked) if not noop]
    changed = True
    while changed:
        changed = False
        for pos, i in enumerate(keep):
            nxt = keep[pos + 1] if pos + 1 < len(keep) else None
            if i in heads and (nxt is None or _depth(lines[nxt]) <= _depth(lines[i])):
                keep.remove(i)
                changed = True
                break
    return [lines[i] for i in keep]
