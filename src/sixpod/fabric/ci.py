"""``sixpod ci``: what a pull request on an inventory repository must pass, as one report.

Steps, each with a result and a line of detail (a later step is skipped when it needs what
an earlier one could not give):

1. **check**: the inventory loads and passes every rule (warnings do not fail);
2. **allocate** (check mode, nothing is written): the lock is current (``sixpod allocate``
   would not change it), and against the last deployed render every node, ToR and VIP
   that stays keeps its numbers: the change only adds (or frees what it removes);
3. **render**: every device's files, with render's own semantic checks;
4. **syntax**: every device file through the real tool where there is one (``vtysh -C``
   for FRR configs, ``nft -c`` for firewalls) and sixpod's parsers for the rest
   (interfaces, device data, YAML/JSON configs, lldpd);
5. **plan**: each ToR's ``frr.conf`` against the last deployed render's, with the guard.

:func:`markdown` is the short summary a review bot posts.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sixpod import addr, devices
from sixpod.devices import NodeDevice, TorDevice
from sixpod.errors import SixpodError
from sixpod.fabric.config import FabricConfig
from sixpod.fabric.deploy import plan_one
from sixpod.fabric.errors import FabricError
from sixpod.fabric.interfaces import parse_interfaces
from sixpod.fabric.plan import Plan, Verdict
from sixpod.fabric.tools import check_frr_syntax, check_nft_syntax
from sixpod.inventory.allocate import allocate
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import Lock, parse_lock
from sixpod.inventory.render import device_documents, render
from sixpod.words import plural

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
CHECKED = ("frr.conf", "bfdd.conf", "nftables.conf", "interfaces", "device.json", "lldpd.conf")


@dataclass
class Step:
    name: str
    result: str
    detail: str
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "result": self.result,
            "detail": self.detail,
            "problems": self.problems,
        }


@dataclass
class Report:
    pod: str
    steps: list[Step] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.result == OK for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "ok": self.ok,
            "steps": [s.to_json() for s in self.steps],
            "plans": [p.to_json() for p in self.plans],
        }


def run_ci(pod: Path, lock_path: Path, deployed: Path | None, cfg: FabricConfig) -> Report:
    report = Report(str(pod))
    steps = report.steps
    # 1. check
    try:
        loaded = load_inventory(pod.read_text(encoding="utf-8"), str(pod))
    except (OSError, UnicodeDecodeError) as e:
        steps.append(Step("check", FAILED, f"cannot read {pod}: {e}"))
        return _skip(report, "allocate", "render", "syntax", "plan")
    except SixpodError as e:
        steps.append(Step("check", FAILED, "the inventory has errors", str(e).splitlines()))
        return _skip(report, "allocate", "render", "syntax", "plan")
    inv = loaded.inventory
    warnings = [str(w) for w in loaded.warnings if w.warning]
    steps.append(
        Step(
            "check",
            OK,
            f"{plural(len(inv.racks), 'rack')}, {plural(len(inv.nodes), 'node')}, "
            f"{plural(len(warnings), 'warning')}",
            warnings,
        )
    )
    # 2. allocate, in check mode
    lock = _allocate_check(report, inv, lock_path)
    if lock is None:
        return _skip(report, "render", "syntax", "plan")
    # 3. render
    try:
        files = render(inv, lock)
        docs = device_documents(inv, lock)
    except SixpodError as e:
        steps.append(Step("render", FAILED, "the render failed", str(e).splitlines()))
        return _skip(report, "syntax", "plan")
    old_docs = _deployed_docs(deployed) if deployed is not None else {}
    _only_adds(report, docs, old_docs, deployed)
    steps.append(Step("render", OK, f"{plural(len(docs), 'device')}, {plural(len(files), 'file')}"))
    # 4. syntax
    steps.append(_syntax(files, cfg))
    # 5. plan against the last deployed render
    _plan(report, files, docs, deployed, cfg)
    return report


def _skip(report: Report, *names: str) -> Report:
    report.steps += [Step(n, SKIPPED, "needs an earlier step") for n in names]
    return report


def _allocate_check(report: Report, inv: Any, lock_path: Path) -> Lock | None:
    if not lock_path.exists():
        report.steps.append(Step("allocate", FAILED, f"{lock_path}: no lock: run sixpod allocate"))
        return None
    try:
        old, _ = parse_lock(lock_path.read_text(encoding="utf-8"), str(lock_path))
        new = allocate(inv, old)
    except (OSError, SixpodError) as e:
        report.steps.append(Step("allocate", FAILED, "allocation failed", str(e).splitlines()))
        return None
    if old != new:
        added = sorted(set(new.nodes) - set(old.nodes))
        report.steps.append(
            Step(
                "allocate",
                FAILED,
                f"{lock_path} is out of date: run `sixpod allocate` and commit the lock",
                [f"would add {', '.join(added)}"] if added else [],
            )
        )
        return None
    report.steps.append(Step("allocate", OK, f"{lock_path} is current"))
    return new


def _deployed_docs(root: Path) -> dict[str, devices.Device]:
    out: dict[str, devices.Device] = {}
    for path in sorted(root.glob("*/*/device.json")):
        rel = path.relative_to(root).as_posix()
        out[rel] = devices.load(path.read_text(encoding="utf-8"), str(path))
    return out


def _only_adds(
    report: Report,
    docs: dict[str, devices.Device],
    old: dict[str, devices.Device],
    deployed: Path | None,
) -> None:
    """Fold into the allocate step: what the change adds and removes against the deployed
    render, and any number that moved (which fails it)."""
    step = report.steps[-1]
    if deployed is None:
        step.detail += "; no deployed render given (--deployed): additions not compared"
        return
    moved: list[str] = []
    for path, doc in docs.items():
        was = old.get(path)
        if isinstance(doc, NodeDevice) and isinstance(was, NodeDevice):
            pairs = (
                ("prefix", doc.prefix, was.prefix),
                ("uplink link", doc.uplink.link, was.uplink.link),
                ("uplink address", doc.uplink.address, was.uplink.address),
                ("ToR address", doc.uplink.peer.address, was.uplink.peer.address),
                ("ASN", doc.bgp.asn, was.bgp.asn),
            )
            for what, now, then in pairs:
                if now != then:
                    moved.append(f"node {doc.name}: {what} {_t(then)} -> {_t(now)}")
        elif isinstance(doc, TorDevice) and isinstance(was, TorDevice):
            if doc.asn != was.asn:
                moved.append(f"ToR {doc.name}: ASN {was.asn} -> {doc.asn}")
            lost = set(was.vips.all) - set(doc.vips.all)
            if lost:
                moved.append(f"ToR {doc.name}: {plural(len(lost), 'VIP')} no longer allocated")
    names = {p.split("/")[1] for p in docs}
    old_names = {p.split("/")[1] for p in old}
    added, removed = sorted(names - old_names), sorted(old_names - names)
    step.detail += (
        f"; against {deployed}: adds {', '.join(added) or 'nothing'}, "
        f"removes {', '.join(removed) or 'nothing'}"
    )
    if moved:
        step.result = FAILED
        step.detail += f"; {plural(len(moved), 'allocation')} changed"
        step.problems += moved


def _t(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    try:
        return addr.format_prefix(value) if "/" in str(value) else addr.format_ip(value)  # type: ignore[arg-type]
    except (addr.AddressError, TypeError, ValueError):
        return str(value)


def _syntax(files: dict[str, str], cfg: FabricConfig) -> Step:
    problems: list[str] = []
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="sixpod-ci-") as tmp:
        for rel, text in files.items():
            name = rel.rsplit("/", 1)[-1]
            kind = name if name in CHECKED else "other YAML/JSON"
            try:
                found = _check_one(rel, name, text, Path(tmp), cfg)
            except FabricError as e:
                found = [str(e)]
            if found is None:
                continue
            counts[kind] = counts.get(kind, 0) + 1
            problems += [f"{rel}: {p}" for p in found]
    detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return Step("syntax", FAILED if problems else OK, detail, problems)


def _check_one(rel: str, name: str, text: str, tmp: Path, cfg: FabricConfig) -> list[str] | None:
    """The file's problems; None for a file no check covers here (nginx.conf and
    exabgp.conf are run by their programs in the project's own tests)."""
    path = tmp / rel.replace("/", "__")
    if name in ("frr.conf", "bfdd.conf"):
        path.write_text(text)
        return check_frr_syntax(path, vtysh=cfg.vtysh, timeout=cfg.timeout)
    if name == "nftables.conf":
        path.write_text(text)
        return check_nft_syntax(path, timeout=cfg.timeout)
    if name == "interfaces":
        try:
            parse_interfaces(text, rel)
        except FabricError as e:
            return [str(e)]
        return []
    if name == "device.json":
        try:
            devices.load(text, rel)
        except SixpodError as e:
            return [str(e)]
        return []
    if name == "lldpd.conf":
        bad = [ln for ln in text.splitlines() if ln and not ln.startswith(("#", "configure "))]
        return [f"not an lldpcli command: {ln!r}" for ln in bad]
    if name.endswith((".yaml", ".yml", ".json")):
        try:
            (json.loads if name.endswith(".json") else yaml.safe_load)(text)
        except (ValueError, yaml.YAMLError) as e:
            return [f"does not parse: {e}"]
        return []
    return None


def _plan(
    report: Report,
    files: dict[str, str],
    docs: dict[str, devices.Device],
    deployed: Path | None,
    cfg: FabricConfig,
) -> None:
    tors = [d for d in docs.values() if isinstance(d, TorDevice)]
    try:
        for t in tors:
            old = deployed / "tors" / t.name / "frr.conf" if deployed else None
            running = old.read_text(encoding="utf-8") if old and old.exists() else ""
            report.plans.append(plan_one(t.name, running, files[f"tors/{t.name}/frr.conf"], cfg))
    except (FabricError, OSError) as e:
        report.steps.append(Step("plan", FAILED, f"the plan could not be made: {e}"))
        return
    bad = [p for p in report.plans if p.verdict in (Verdict.REFUSED, Verdict.INVALID)]
    changed = [p for p in report.plans if p.verdict is Verdict.CHANGES]
    detail = f"{plural(len(changed), 'ToR')} to change, {len(bad)} refused"
    if deployed is None:
        detail += " (no deployed render: planned from nothing)"
    report.steps.append(
        Step("plan", FAILED if bad else OK, detail, [f"{p.tor}: {p.summary}" for p in bad])
    )


def markdown(report: Report) -> str:
    """The summary a review bot posts on the pull request."""
    head = "passed" if report.ok else "FAILED"
    lines = [f"### sixpod ci: `{report.pod}` {head}", "", "| step | result | detail |"]
    lines.append("|---|---|---|")
    for s in report.steps:
        lines.append(f"| {s.name} | {s.result} | {_cell(s.detail)} |")
    problems = [(s.name, p) for s in report.steps for p in s.problems]
    if problems:
        lines += ["", "**Problems**", ""]
        lines += [f"- {name}: {_cell(p)}" for name, p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"- ... and {len(problems) - 50} more")
    for p in report.plans:
        if p.verdict is Verdict.UNCHANGED:
            continue
        lines += [
            "",
            f"<details><summary>{p.tor}: {p.verdict}: {_cell(p.summary)}</summary>",
            "",
            *(["```", *p.shown_delta, "```"] if p.shown_delta else [f"(no delta: {p.verdict})"]),
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
