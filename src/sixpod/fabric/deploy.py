"""Plan and deploy the ToRs' FRR configs, device by device, rolling a device back when its
sessions do not come back (NVUE's ``apply --confirm`` behaviour).

The orchestration between the pure cores (:mod:`.plan`, :mod:`.guard`, :mod:`.sessions`)
and the adapters (:mod:`.tools`): the clock and the sleep are arguments, so tests can drive
it; every deploy, good, rolled back or refused, is one JSON line in the log.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sixpod.fabric.config import FabricConfig
from sixpod.fabric.errors import FabricError, ToolError
from sixpod.fabric.firewall import TABLE
from sixpod.fabric.plan import Plan, Verdict, make_plan
from sixpod.fabric.sessions import Session, flapped, parse_summary, problems
from sixpod.fabric.tools import Tor, check_frr_syntax, reload_delta

POLL = 0.5


class Device(Protocol):
    """What a deploy needs of one ToR (:class:`sixpod.fabric.tools.Tor`)."""

    name: str

    def running_config(self) -> str: ...
    def bgp_summary(self) -> Any: ...
    def reload(self, config: Path) -> str: ...


@runtime_checkable
class FirewallDevice(Device, Protocol):
    """A ToR whose own firewall a deploy loads too (``deploy --firewall``)."""

    def firewall(self) -> str | None: ...
    def check_firewall(self, path: Path) -> list[str]: ...
    def load_firewall(self, path: Path) -> str: ...


def plan_one(name: str, running: str, new: str, cfg: FabricConfig, *, force: bool = False) -> Plan:
    """Check ``new`` with FRR's parser, then (only if it parses) its delta from ``running``."""
    with tempfile.TemporaryDirectory(prefix="sixpod-plan-") as tmp:
        new_path, old_path = Path(tmp) / "new.conf", Path(tmp) / "running.conf"
        new_path.write_text(new)
        old_path.write_text(running)
        syntax = check_frr_syntax(new_path, vtysh=cfg.vtysh, timeout=cfg.timeout)
        delta = None
        if not syntax:
            delta = reload_delta(old_path, new_path, frr_reload=cfg.frr_reload, timeout=cfg.timeout)
    return make_plan(
        name,
        running=running,
        new=new,
        syntax=syntax,
        delta=delta,
        max_removed_share=cfg.max_removed_share,
        force=force,
    )


@dataclass
class Outcome:
    tor: str
    result: str
    """``deployed``, ``unchanged``, ``rolled-back``, ``refused``, ``invalid``, ``skipped``
    (not tried: an earlier device failed) or ``failed`` (a tool failed; see ``detail``)."""
    plan: Plan | None = None
    detail: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "tor": self.tor,
            "result": self.result,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            "plan": self.plan.to_json() if self.plan else None,
        }


def who() -> str:
    """The operator: the user behind sudo if there is one."""
    import getpass

    return os.environ.get("SUDO_USER") or getpass.getuser()


def record(log: Path, entry: Mapping[str, Any]) -> None:
    """Append one JSON line to the deploy log (created with its folder)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def wait_healthy(
    dev: Device,
    before: Mapping[str, Session],
    *,
    removed: Sequence[str],
    settle: float,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> list[str]:
    """Poll the sessions until, ``settle`` seconds or more after the start, none is worse
    than ``before`` (returns []), or until ``deadline`` seconds pass (returns the last
    problems)."""
    start = clock()
    while True:
        found = problems(before, parse_summary(dev.bgp_summary()), removed=removed)
        elapsed = clock() - start
        if (not found and elapsed >= settle) or elapsed >= max(deadline, settle):
            return found
        sleep(POLL)


def deploy(
    devices: Sequence[Device],
    configs: Mapping[str, str],
    cfg: FabricConfig,
    *,
    force: bool = False,
    what: str = "",
    firewalls: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Plan every device first (any plan refused or invalid, or a firewall of ``firewalls``
    that ``nft -c`` rejects: nothing is applied); then apply one device at a time, its
    ``frr.conf`` then its firewall (if given), and stop at the first that does not come back
    healthy, after rolling back what broke it."""
    log = Path(cfg.log)
    base = {"who": who(), "what": what, "forced": force}
    outcomes: list[Outcome] = []
    plans: dict[str, tuple[Plan, str]] = {}
    bad_fw: dict[str, list[str]] = {}
    for dev in devices:
        running = dev.running_config()
        plan = plan_one(dev.name, running, configs[dev.name], cfg, force=force)
        plans[dev.name] = (plan, running)
        if firewalls is not None and dev.name in firewalls:
            problems = _check_firewall(_fw(dev), firewalls[dev.name])
            if problems:
                bad_fw[dev.name] = problems
    blocked = [p for p, _ in plans.values() if p.verdict is Verdict.INVALID]
    blocked += [p for p, _ in plans.values() if p.verdict is Verdict.REFUSED and not p.forced]
    if blocked or bad_fw:
        for dev in devices:
            plan = plans[dev.name][0]
            if plan in blocked:
                outcomes.append(Outcome(dev.name, str(plan.verdict), plan, [plan.summary]))
            elif dev.name in bad_fw:
                why = [f"the firewall does not parse (nft -c): {p}" for p in bad_fw[dev.name][:5]]
                outcomes.append(Outcome(dev.name, "invalid", plan, why))
            else:
                outcomes.append(Outcome(dev.name, "skipped", plan, [plan.summary]))
            _log(log, base, outcomes[-1])
        return outcomes

    failed = False
    for dev in devices:
        plan, running = plans[dev.name]
        if failed:
            outcomes.append(Outcome(dev.name, "skipped", plan))
            continue
        if plan.verdict is Verdict.UNCHANGED:
            outcome = Outcome(dev.name, "unchanged", plan)
        else:
            outcome = _apply(dev, plan, running, configs[dev.name], cfg, clock=clock, sleep=sleep)
        if outcome.result in _GOOD and firewalls is not None and dev.name in firewalls:
            outcome = _apply_firewall(
                _fw(dev), firewalls[dev.name], outcome, cfg, clock=clock, sleep=sleep
            )
        outcomes.append(outcome)
        if outcome.result != "unchanged":
            _log(log, base, outcome)
        failed = outcome.result not in _GOOD
    return outcomes


_GOOD = ("deployed", "unchanged")


def _fw(dev: Device) -> FirewallDevice:
    if not isinstance(dev, FirewallDevice):
        raise ToolError(f"{dev.name}: cannot load a firewall on this device")
    return dev


def _check_firewall(dev: FirewallDevice, text: str) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="sixpod-firewall-") as tmp:
        path = Path(tmp) / "nftables.conf"
        path.write_text(text)
        return dev.check_firewall(path)


def _apply_firewall(
    dev: FirewallDevice,
    text: str,
    outcome: Outcome,
    cfg: FabricConfig,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Outcome:
    """Load the ToR's firewall (``nft -f``, after its FRR change went well), watch the
    sessions ``firewall_settle`` seconds (a dropped session shows at its hold time), and
    load back the ruleset it ran before if any gets worse; ``frr.conf`` stays deployed."""
    start = clock()
    settle = max(cfg.settle, cfg.firewall_settle)
    deadline = max(cfg.deadline, settle)
    plan, done = outcome.plan, list(outcome.detail)
    try:
        before = parse_summary(dev.bgp_summary())
        previous = dev.firewall()
    except FabricError as e:
        return Outcome(dev.name, "failed", plan, [*done, f"firewall not loaded: {e}"])
    with tempfile.TemporaryDirectory(prefix="sixpod-firewall-") as tmp:
        new_path, old_path = Path(tmp) / "nftables.conf", Path(tmp) / "previous.nft"
        new_path.write_text(text)
        try:
            dev.load_firewall(new_path)
            found = wait_healthy(
                dev, before, removed=(), settle=settle, deadline=deadline, clock=clock, sleep=sleep
            )
        except FabricError as e:
            found = [f"loading the firewall failed: {e}"]
        if not found:
            took = outcome.seconds + clock() - start
            return Outcome(dev.name, "deployed", plan, [*done, "firewall loaded"], took)
        detail = [*done, *(f"with the new firewall: {p}" for p in found)]
        detail.append("firewall rolled back to the ruleset it ran before (frr.conf stays)")
        # the table replaced whole, as the rendered file does; none before: none after
        old_path.write_text(f"table inet {TABLE}\ndelete table inet {TABLE}\n" + (previous or ""))
        try:
            dev.load_firewall(old_path)
            after = wait_healthy(
                dev, before, removed=(), settle=cfg.settle, deadline=deadline, clock=clock,
                sleep=sleep,
            )  # fmt: skip
            detail += [f"after the rollback: {p}" for p in after]
        except FabricError as e:
            detail.append(f"the firewall rollback failed: {e}")
            return Outcome(dev.name, "failed", plan, detail, outcome.seconds + clock() - start)
    result = "failed" if after else "rolled-back"  # a rollback that did not heal it failed
    return Outcome(dev.name, result, plan, detail, outcome.seconds + clock() - start)


def _apply(
    dev: Device,
    plan: Plan,
    running: str,
    new: str,
    cfg: FabricConfig,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Outcome:
    start = clock()
    old, new_facts = plan.old, plan.new
    removed = sorted(old.neighbors - new_facts.neighbors) if old and new_facts else []
    with tempfile.TemporaryDirectory(prefix="sixpod-deploy-") as tmp:
        new_path, old_path = Path(tmp) / "frr.conf", Path(tmp) / "previous.conf"
        new_path.write_text(new)
        old_path.write_text(running)
        for p in (Path(tmp), new_path, old_path):
            p.chmod(0o755 if p.is_dir() else 0o644)  # vtysh may read them as frr
        try:
            before = parse_summary(dev.bgp_summary())
            dev.reload(new_path)
            found = wait_healthy(
                dev,
                before,
                removed=removed,
                settle=cfg.settle,
                deadline=cfg.deadline,
                clock=clock,
                sleep=sleep,
            )
        except FabricError as e:
            found = [f"deploy failed: {e}"]
        if not found:
            took = clock() - start
            flaps = flapped(before, parse_summary(dev.bgp_summary()), elapsed_ms=int(took * 1000))
            detail = [f"flapped (down and back during the deploy): {', '.join(flaps)}"]
            return Outcome(dev.name, "deployed", plan, detail if flaps else [], took)
        detail = [*found, "rolled back to the config it ran before"]
        try:
            dev.reload(old_path)
            after = wait_healthy(
                dev,
                before,
                removed=(),
                settle=cfg.settle,
                deadline=cfg.deadline,
                clock=clock,
                sleep=sleep,
            )
            detail += [f"after the rollback: {p}" for p in after]
        except FabricError as e:
            detail.append(f"the rollback failed: {e}")
            return Outcome(dev.name, "failed", plan, detail, clock() - start)
    result = "failed" if after else "rolled-back"  # a rollback that did not heal it failed
    return Outcome(dev.name, result, plan, detail, clock() - start)


def _log(log: Path, base: Mapping[str, Any], outcome: Outcome) -> None:
    plan = outcome.plan
    record(
        log,
        {
            **base,
            "when": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "tor": outcome.tor,
            "result": outcome.result,
            "detail": outcome.detail,
            "summary": plan.summary if plan else None,
            "diff": list(plan.delta) if plan else [],
            "violations": [str(v) for v in plan.violations] if plan else [],
        },
    )


def devices_for(names: Sequence[str], cfg: FabricConfig) -> list[Tor]:
    return [Tor(n, cfg) for n in names]
