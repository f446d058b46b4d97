"""The plan's guard: changes to a running switch that are refused unless forced (pure).

A config that FRR's parser rejects is never planned at all (``frr-reload.py --test`` on such
a file prints a delta that deletes the whole BGP instance); that is not a rule here, because
``--force`` cannot override it. The rules, each with its reason:

- ``bgp-removed``: the BGP instance disappears, or changes its ASN (a new ASN is a
  delete and re-create: every session of the switch drops);
- ``hostname-removed``: the hostname disappears (monitoring, logs and LLDP name the switch
  by it);
- ``neighbors-removed``: more than ``max_removed_share`` of the running neighbors go
  (a rack's worth of nodes leaving in one change is more likely a broken inventory);
- ``vips-dropped``: the running config permits VIPs and the new one permits none (every
  node's VIPs would be refused: the pod would stop serving through this switch).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sixpod.fabric.frrconf import FrrFacts


class Rule(StrEnum):
    BGP_REMOVED = "bgp-removed"
    HOSTNAME_REMOVED = "hostname-removed"
    NEIGHBORS_REMOVED = "neighbors-removed"
    VIPS_DROPPED = "vips-dropped"


@dataclass(frozen=True, slots=True)
class Violation:
    rule: Rule
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def check(old: FrrFacts, new: FrrFacts, *, max_removed_share: float) -> tuple[Violation, ...]:
    """Every rule ``new`` breaks, replacing ``old`` (what the switch runs)."""
    out: list[Violation] = []
    if old.bgp_asn is not None and new.bgp_asn != old.bgp_asn:
        what = f"removes router bgp {old.bgp_asn}"
        if new.bgp_asn is not None:
            what = f"replaces router bgp {old.bgp_asn} with router bgp {new.bgp_asn}"
        out.append(Violation(Rule.BGP_REMOVED, what))
    if old.hostname is not None and new.hostname is None:
        out.append(Violation(Rule.HOSTNAME_REMOVED, f"removes hostname {old.hostname}"))
    if old.neighbors:
        gone = old.neighbors - new.neighbors
        share = len(gone) / len(old.neighbors)
        if share > max_removed_share:
            out.append(
                Violation(
                    Rule.NEIGHBORS_REMOVED,
                    f"removes {len(gone)} of {len(old.neighbors)} BGP neighbors "
                    f"({share:.0%} > {max_removed_share:.0%}): {', '.join(sorted(gone))}",
                )
            )
    if old.vips and not new.vips:
        out.append(Violation(Rule.VIPS_DROPPED, f"drops every VIP ({len(old.vips)} permitted now)"))
    return tuple(out)
