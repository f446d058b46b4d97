"""Routing convergence and flow stability on a lab pod, against their anchors, in one run.

One pod (examples/small.yaml with all three nodes as edge nodes, ``sixpod render``, the
production check timing: interval 0.5 s, fast 0.1 s, rise 3, fall 2) in network namespaces:
FRR on the ToR, ExaBGP + ``sixpod announcer`` and bfdd on each node, ``sixpod tor-resilient`` on
the ToR. Times run from the fault being in place to the node's address leaving the VIP's ECMP
set in the ToR's zebra RIB (looked at every ~2 ms over a vty socket), rotating over the nodes,
each fault at a random (stratified) phase of the timer that must catch it:

1. health-driven withdraw (sixpod announcer), phase over the 0.5 s check interval;
2. flows: each node in turn leaves (its health fails) and re-joins, 150 flows per family to
   an IPv4 and an IPv6 VIP. The leave is judged on flows opened with every node in, the
   re-join on flows opened while the node was out (older survivors are reported apart: with
   plain hash-threshold groups they cannot move on a re-join, whatever the group does).
   Resilient groups (the helper) with active flows (a message every 0.25 s, as a busy flow),
   then with idle flows (silent 2.5 s, under the groups' 120 s idle timer), then FRR's plain
   groups (helper stopped, active flows);
3. a silent node (nftables drops its uplink traffic both ways) caught by BFD (100 ms x 3);
4. a hung ExaBGP (SIGSTOP of ExaBGP alone): the announcer sees its commands unanswered and
   shuts the node's BFD session down; anchor: ExaBGP and its announcer both stopped, so only
   the 9 s hold timer can catch it;
5. anchor: ExaBGP's own healthcheck at its defaults on every node (interval 5 s, fast 1 s,
   rise 3, fall 3, MED 100 -> 1000 on failure), phase over the 5 s interval. It runs last:
   it replaces the announcers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

from bench.__main__ import target_met
from bench._routing_lab import (
    RACK,
    SILENCE,
    UNSILENCE,
    FlowCount,
    Trials,
    ZebraView,
    bgp_meds,
    check_command,
    check_cost,
    flow_cycle,
    log,
    render_small,
    run_trials,
    summary,
    switch_to_healthcheck,
    wait,
)
from sixpod.lab.netns import LabError
from sixpod.lab.pod import LabNode, LabPod

VIP = "203.0.113.1"
FLOW_VIPS = ("203.0.113.1", "2001:db8:2fe::2")
FAMILIES = {"203.0.113.1": "ipv4", "2001:db8:2fe::2": "ipv6"}
HEALTH_TRIALS = 10
ANCHOR_TRIALS = 4
BFD_TRIALS = 5
HUNG_TRIALS = 5
HOLD_TRIALS = 3
FLOWS = 150
PACE = 0.25  # an active flow exchanges a message at least this often
SETTLE = 1.5  # active flows keep going this long after the change
IDLE = 2.5  # idle flows: nothing sent this long (a short keepalive pause)
HEALTH_UP_MED = 100  # exabgp healthcheck --up-metric default
HEALTH_DOWN_MED = 1000  # --down-metric default


def run() -> dict[str, object]:
    started = time.monotonic()
    rng = random.Random(6)
    load_start = round(os.getloadavg()[0], 2)  # other work on this 2-core machine blurs timings
    work = Path(tempfile.mkdtemp(prefix="sixpod-bench-routing-"))
    log(f"rendering examples/small.yaml (all edge) in {work}")
    pod = LabPod(
        rendered=render_small(work),
        workdir=work / "lab",
        check_interval=None,
        lock=work / "small.lock",  # the controller: the edges serve once its state is loaded
        monitoring=False,  # what is timed is routing, on a quiet machine
    )
    view: ZebraView | None = None
    clean = False
    try:
        pod.up()
        pod.wait_ready(RACK, timeout=60)
        view = ZebraView(pod.tors[RACK].frr.rundir)
        result = _measure(pod, view, rng)
        result["figures"]["load_avg_1m_start_end"] = [load_start, round(os.getloadavg()[0], 2)]
        clean = True
    finally:
        if view is not None:
            view.close()
        problems = pod.down()
        for problem in problems:
            log(f"teardown: {problem}")
        if clean and not problems:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"lab files and logs kept in {work}")
    result["figures"]["run_s"] = round(time.monotonic() - started, 1)
    log(f"done in {time.monotonic() - started:.0f} s")
    return dict(result)


Result = dict[str, dict[str, object]]


def _measure(pod: LabPod, view: ZebraView, rng: random.Random) -> Result:
    nodes = list(pod.nodes.values())
    everyone = {n.address for n in nodes}
    tor = pod.tors[RACK]
    vips = [str(v) for v in tor.doc.vips.all]
    for vip in vips:
        wait(view.via(vip, everyone), 60, f"{vip} via every node")
    if view.routes(VIP) != pod.routes(RACK, VIP):
        raise LabError("the vty view and LabPod.routes disagree")
    wait(
        lambda: all(pod.resilient_paths(RACK, v) == 3 for v in FLOW_VIPS),
        20,
        "the resilient groups of the flow VIPs",
    )
    resolution = _poll_cost(view)
    log(f"pod up: {len(nodes)} edge nodes, {len(vips)} VIPs; RIB look {resolution * 1e3:.2f} ms")

    # 1. Health-driven withdraw by the sixpod announcer.
    log(f"health-driven withdraw, sixpod announcer: {HEALTH_TRIALS} trials")
    health = Trials("health", timeout=10)
    run_trials(
        pod,
        view,
        VIP,
        health,
        HEALTH_TRIALS,
        fault=lambda n: n.healthy(False),
        repair=lambda n: n.healthy(True),
        jitter=0.5,
        back_timeout=20,
        rng=rng,
    )

    # 2. Flows: resilient groups (active and idle flows), then FRR's plain groups.
    counts: dict[str, dict[str, FlowCount]] = {}  # mode -> family -> counts over len(nodes) cycles
    counts["resilient"] = _flow_cycles(pod, view, "resilient", resilient=True, pace=PACE)
    counts["resilient_idle"] = _flow_cycles(pod, view, "resilient_idle", resilient=True, pace=None)
    assert tor.resilient is not None
    pod.box.stop(tor.resilient)  # on SIGTERM it removes its rules, routes and groups
    wait(
        lambda: all(pod.resilient_paths(RACK, v) == 0 for v in FLOW_VIPS),
        10,
        "the resilient helper's routes to go",
    )
    counts["plain"] = _flow_cycles(pod, view, "plain", resilient=False, pace=PACE)

    # 3. A silent node, caught by BFD.
    def bfd_ready() -> None:
        wait(lambda: pod.bfd_up(RACK) >= everyone, 30, "BFD up with every node")

    log(f"silent node (nftables), BFD 100 ms x 3: {BFD_TRIALS} trials")
    bfd = Trials("bfd", timeout=5)
    run_trials(
        pod,
        view,
        VIP,
        bfd,
        BFD_TRIALS,
        fault=lambda n: _nft(pod, n, SILENCE),
        repair=lambda n: _nft(pod, n, UNSILENCE),
        jitter=0.1,
        back_timeout=60,
        rng=rng,
        before=bfd_ready,
    )

    # 4. A hung ExaBGP: the announcer takes BFD down. Anchor: nothing watches it (the
    # announcer stopped too), only the hold timer (9 s) can catch it.
    log(f"hung ExaBGP (SIGSTOP), the announcer takes BFD down: {HUNG_TRIALS} trials")
    hung = Trials("hung", timeout=15)
    run_trials(
        pod,
        view,
        VIP,
        hung,
        HUNG_TRIALS,
        fault=lambda n: _signal(n, signal.SIGSTOP),
        repair=lambda n: _signal(n, signal.SIGCONT),
        jitter=0.1,
        back_timeout=60,
        rng=rng,
        before=bfd_ready,
    )
    log(f"hung ExaBGP and announcer (SIGSTOP), hold timer 9 s: {HOLD_TRIALS} trials")
    hold = Trials("hold", timeout=15)
    run_trials(
        pod,
        view,
        VIP,
        hold,
        HOLD_TRIALS,
        fault=lambda n: _signal(n, signal.SIGSTOP, announcer=True),
        repair=lambda n: _signal(n, signal.SIGCONT, announcer=True),
        jitter=3.0,  # ExaBGP's keepalive period (hold time / 3)
        back_timeout=60,
        rng=rng,
        before=bfd_ready,
    )

    # 5. Anchor: ExaBGP's healthcheck at its defaults, on every node.
    check, _ = check_command()
    check_s = check_cost(pod, nodes[0])
    log(
        f"ExaBGP healthcheck at its defaults on every node, check by {check} "
        f"({check_s * 1e3:.0f} ms): {ANCHOR_TRIALS} trials"
    )
    for node in nodes:
        switch_to_healthcheck(pod, node, VIP)
    wait(view.via(VIP, everyone), 40, f"{VIP} via every healthcheck")
    meds = bgp_meds(pod, VIP)
    if set(meds.values()) != {HEALTH_UP_MED} or set(meds) != everyone:
        raise LabError(f"healthcheck paths for {VIP}: MEDs {meds}, expected {HEALTH_UP_MED}")
    down_meds: list[int | None] = []

    def repair_anchor(node: LabNode) -> None:
        down_meds.append(bgp_meds(pod, VIP).get(node.address))  # still announced?
        node.healthy(True)

    anchor = Trials("exabgp-healthcheck", timeout=20)
    run_trials(
        pod,
        view,
        VIP,
        anchor,
        ANCHOR_TRIALS,
        fault=lambda n: n.healthy(False),
        repair=repair_anchor,
        jitter=5.0,  # the healthcheck's interval
        back_timeout=40,
        rng=rng,
    )
    if any(m != HEALTH_DOWN_MED for m in down_meds):
        log(f"warning: failed healthcheck paths had MEDs {down_meds}, not {HEALTH_DOWN_MED}")

    result = _result(health, bfd, hung, hold, anchor, counts, resolution, down_meds)
    result["anchors"]["exabgp_healthcheck_check"] = check
    result["anchors"]["exabgp_healthcheck_check_cmd_s"] = round(check_s, 3)
    return result


def _flow_cycles(
    pod: LabPod, view: ZebraView, mode: str, *, resilient: bool, pace: float | None
) -> dict[str, FlowCount]:
    what = "active" if pace is not None else "idle"
    log(f"flows, {mode} groups, {what} flows: {FLOWS} per VIP, each node leaves and re-joins")
    total = {fam: FlowCount() for fam in (*FAMILIES.values(), "all")}
    for node in pod.nodes.values():
        res = flow_cycle(
            pod,
            view,
            FLOW_VIPS,
            node,
            count=FLOWS,
            resilient=resilient,
            pace=pace,
            settle=SETTLE,
            idle=IDLE,
        )
        for vip, c in res.items():
            total[FAMILIES[vip]].add(c)
            total["all"].add(c)
            log(
                f"  {mode} {node.name} leaves, {FAMILIES[vip]}: "
                f"{c.on_leaving}/{c.flows} on it; others moved on leave "
                f"{c.leave_other_moved}/{c.leave_other}; on re-join, flows opened while out "
                f"{c.rejoin_other_moved}/{c.rejoin_other}, older "
                f"{c.rejoin_prior_moved}/{c.rejoin_prior}"
                + (f"; its buckets {c.rejoined_buckets}/{c.buckets}" if c.buckets else "")
            )
    return total


def _nft(pod: LabPod, node: LabNode, rules: str) -> None:
    pod.exec(node.ns, "nft", rules)


def _signal(node: LabNode, sig: int, *, announcer: bool = False) -> None:
    """Signal the node's ExaBGP (and with ``announcer``, its API process too, first): the
    one its bootstrap supervises, or the one the bench started itself."""
    pid = node.exabgp.pid if node.exabgp is not None else node.service_pid("exabgp")
    assert pid is not None
    if announcer:
        for task in (Path("/proc") / str(pid) / "task").glob("*/children"):
            for child in task.read_text().split():
                os.kill(int(child), sig)
    os.kill(pid, sig)


def _poll_cost(view: ZebraView, n: int = 200) -> float:
    start = time.monotonic()
    for _ in range(n):
        view.routes(VIP)
    return (time.monotonic() - start) / n


def _frac(moved: int, total: int) -> float | None:
    return round(moved / total, 4) if total else None


def _flow_figures(prefix: str, counts: dict[str, FlowCount]) -> dict[str, object]:
    out: dict[str, object] = {}
    for fam, c in counts.items():
        out[f"{prefix}_leave_other_moved_frac_{fam}"] = _frac(c.leave_other_moved, c.leave_other)
        out[f"{prefix}_rejoin_other_moved_frac_{fam}"] = _frac(c.rejoin_other_moved, c.rejoin_other)
        out[f"{prefix}_leave_all_moved_frac_{fam}"] = _frac(c.leave_moved_all, c.flows)
        out[f"{prefix}_leaving_node_share_{fam}"] = _frac(c.on_leaving, c.flows)
    c = counts["all"]
    out[f"{prefix}_rejoin_prior_moved_frac_all"] = _frac(c.rejoin_prior_moved, c.rejoin_prior)
    if c.buckets:
        out[f"{prefix}_rejoined_node_bucket_share"] = _frac(c.rejoined_buckets, c.buckets)
    out[f"{prefix}_leave_other_moved"] = c.leave_other_moved
    out[f"{prefix}_leave_other_flows"] = c.leave_other
    out[f"{prefix}_rejoin_other_moved"] = c.rejoin_other_moved
    out[f"{prefix}_rejoin_other_flows"] = c.rejoin_other
    return out


def _times(prefix: str, trials: Trials) -> dict[str, object]:
    s = summary(trials.out)
    return {
        f"{prefix}_n": len(trials.out),
        f"{prefix}_p50_s": s["p50"],
        f"{prefix}_p90_s": s["p90"],
        f"{prefix}_max_s": s["max"],
        f"{prefix}_samples_s": [round(x, 3) for x in trials.out],
        f"{prefix}_timeouts": trials.timeouts,  # counted at the bound
        f"{prefix}_back_p50_s": summary(trials.back)["p50"],  # repair to back in ECMP
    }


def _target(value: float, target: str) -> dict[str, object]:
    return {"value": value, "target": target, "met": target_met(value, target)}


def _result(
    health: Trials,
    bfd: Trials,
    hung: Trials,
    hold: Trials,
    anchor: Trials,
    counts: dict[str, dict[str, FlowCount]],
    resolution: float,
    down_meds: list[int | None],
) -> Result:
    health_p50 = summary(health.out)["p50"]
    bfd_p50 = summary(bfd.out)["p50"]
    hung_p50 = summary(hung.out)["p50"]
    hold_p50 = summary(hold.out)["p50"]
    anchor_p50 = summary(anchor.out)["p50"]
    figures: dict[str, object] = {
        "rib_look_ms": round(resolution * 1e3, 3),
        **_times("health_withdraw", health),
        **_times("bfd_out_of_ecmp", bfd),
        **_times("hung_exabgp_out_of_ecmp", hung),
        "flows_per_vip_per_cycle": FLOWS,
        **_flow_figures("resilient", counts["resilient"]),
        **_flow_figures("resilient_idle", counts["resilient_idle"]),
    }
    anchors: dict[str, object] = {
        **_times("exabgp_healthcheck_withdraw", anchor),
        "exabgp_healthcheck_down_meds": down_meds,
        **_times("hold_timer_out_of_ecmp", hold),
        **_flow_figures("plain", counts["plain"]),
    }
    ratios: dict[str, object] = {
        "health_withdraw_speedup_vs_exabgp_healthcheck": round(anchor_p50 / health_p50, 2),
        "bfd_speedup_vs_hold_timer": round(hold_p50 / bfd_p50, 2),
        "hung_exabgp_speedup_vs_hold_timer": round(hold_p50 / hung_p50, 2),
    }
    resilient = counts["resilient"]["all"]
    targets: dict[str, object] = {
        "health_withdraw_p50_s": _target(health_p50, "< 1.0"),
        "bfd_out_of_ecmp_p50_s": _target(bfd_p50, "< 0.5"),
        "hung_exabgp_out_of_ecmp_p50_s": _target(hung_p50, "< 0.5"),
        "resilient_leave_other_flows_broken": _target(resilient.leave_other_moved, "== 0"),
        "resilient_rejoin_other_flows_broken": _target(resilient.rejoin_other_moved, "== 0"),
    }
    return {"figures": figures, "anchors": anchors, "ratios": ratios, "targets": targets}


if __name__ == "__main__":
    print(json.dumps(run()))
