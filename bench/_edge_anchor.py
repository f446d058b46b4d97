"""The edge benchmark's anchor: the reference design's static nginx config, reloaded per change.

Every app becomes an ``upstream`` block with all its endpoints and a ``map`` line from each
of its hosts; a change re-renders the whole file, writes it and HUPs nginx. nginx needs
minutes to parse 100k upstream blocks here (it checks each new upstream name against all
earlier ones), so the anchor is started at the very beginning of the run, parsing on
whichever CPU the setup leaves free, and its reload is timed with no other load (which
favours the anchor: sixpod's changes are timed under load).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import _edge_nginx as ng
from bench._edge_ns import HttpProbe, Netns, Proc
from bench._edge_pod import PORT, Tenants, host_of, log, wait_for
from bench.publish import PER_APP


class Anchor:
    def __init__(
        self,
        work: Path,
        ns: Netns,
        vip: str,
        t: Tenants,
        proc: Callable[[int | None, Path, Path], Proc],
        same_ip: Callable[[str, str], bool],
    ) -> None:
        self.run = work / "anchor"
        self.run.mkdir()
        self.conf = self.run / "nginx.conf"
        self.vip, self.t, self.same_ip = vip, t, same_ip
        self.probe = HttpProbe(ns, vip, 80)
        # what the store holds, by the same rules as the bulk load (no read-back)
        self.servers: dict[str, list[str]] = {
            f"app{a}": [
                f"[{t.pod.address(i)}]:{PORT} weight=100"
                for i in range(a * PER_APP, (a + 1) * PER_APP)
            ]
            for a in range(t.apps)
        }
        text = self.render()
        self.conf.write_text(text)
        self.figures: dict[str, Any] = {
            "upstreams": len(self.servers) + len(t.movers),
            "config_mib": round(len(text) / 2**20, 1),
        }
        self.t0 = time.monotonic()
        self.proc = proc(None, self.conf, self.run)
        self.started: float | None = None

    def render(self) -> str:
        t = self.t
        servers = dict(self.servers)
        for m in t.movers:
            servers[m] = [f"[{t.mover_addr[m]}]:{PORT} weight=100"]
        apps = [(a, [host_of(a), *t.extra_domains.get(a, [])], s) for a, s in servers.items()]
        return ng.anchor_conf(self.run, f"[{self.vip}]:80", self.run / "access.log", apps)

    def _answers(self, host: str, want: str | None = None) -> bool:
        if not self.proc.alive():
            err = self.proc.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"anchor nginx exited: {err}")
        status, body = self.probe.get(host)
        self.probe.close()  # a kept connection may still be on an old worker
        return status == 200 and (want is None or self.same_ip(body, want))

    def wait_serving(self, timeout: float = 1500) -> None:
        """Until the last app answers; the anchor's start time is from its spawn."""
        if self.started is not None:
            return
        last = f"app{self.t.apps - 1}"
        wait_for(lambda: self._answers(host_of(last)), timeout, "the anchor nginx", 0.1)
        self.started = time.monotonic() - self.t0
        worker = ng.workers(self.proc.pid, 1)
        # the worker is forked once the config is parsed: exact even if nobody was polling
        ticks = ng.start_ticks(worker[0]) - ng.start_ticks(self.proc.pid)
        self.figures["start_seconds"] = round(ticks / ng.CLK_TCK, 1)
        mem = [ng.memory(x) for x in [self.proc.pid, *worker]]
        self.figures["pss_mib"] = round(sum(m["pss"] for m in mem) / 2**20, 1)
        log(
            f"anchor: {self.figures['upstreams']} upstreams, {self.figures['config_mib']} MiB "
            f"config, parsed and started in {self.figures['start_seconds']} s"
        )

    def reload_change(self, timeout: float = 1500) -> dict[str, Any]:
        """One change (a new app, domain and endpoint): render, write, HUP, until it answers."""
        self.wait_serving()
        name = "anchornew"
        new = self.t.new_address()
        t0 = time.perf_counter()
        self.servers[name] = [f"[{new}]:{PORT} weight=100"]
        text = self.render()
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.conf)
        t_written = time.perf_counter()
        ng.hup(self.proc.pid)
        wait_for(lambda: self._answers(host_of(name), new), timeout, "the anchor's change", 0.001)
        live = time.perf_counter() - t0
        self.figures["render_write_ms"] = round((t_written - t0) * 1000, 1)
        self.figures["reload_live_ms"] = round(live * 1000, 1)
        log(f"anchor: change live after {live:.1f} s (render + write {t_written - t0:.2f} s)")
        self.proc.stop()
        return self.figures
