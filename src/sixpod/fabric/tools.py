"""Thin adapters: the real tools on a ToR (lldpcli, vtysh, frr-reload.py, nft).

Each runs one program (inside the ToR's network namespace when ``fabric.yaml`` names one)
and returns its output; :class:`~sixpod.fabric.errors.ToolError` is the only error that
leaves (``OSError`` and timeouts are translated here, once). No parsing happens here.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.fabric.config import FabricConfig
from sixpod.fabric.errors import ToolError
from sixpod.fabric.firewall import TABLE


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    stdout: str
    stderr: str


def _run(argv: Sequence[str], *, timeout: float) -> Result:
    failed: ExceptionMap = {
        (OSError, subprocess.TimeoutExpired): lambda e: ToolError(f"{' '.join(argv)}: {e}")
    }
    with map_exceptions(failed):
        res = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    return Result(res.returncode, res.stdout, res.stderr)


def _must(argv: Sequence[str], res: Result) -> str:
    if res.code != 0:
        why = (res.stderr or res.stdout).strip().splitlines()
        raise ToolError(f"{' '.join(argv)}: exit {res.code}: {' / '.join(why[-3:])}")
    return res.stdout


def check_frr_syntax(path: Path, *, vtysh: str = "vtysh", timeout: float = 60) -> list[str]:
    """``vtysh -C -f FILE``: FRR's own parser, no daemon needed. The lines it complains
    about (empty when the file parses). FRR 8.4 exits 0 for some unknown commands (a
    misspelt ``router bgpp`` and everything under it), so its ``%`` lines count too."""
    res = _run([vtysh, "-C", "-f", str(path)], timeout=timeout)
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if "% " in ln]
    if res.code != 0 and not lines:
        lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
        lines = lines or [f"vtysh -C: exit {res.code}"]
    return lines


def check_nft_syntax(
    path: Path, *, timeout: float = 60, where: Callable[[list[str]], list[str]] = list
) -> list[str]:
    """``nft -c -f FILE``: parse and check only, nothing is loaded; ``where`` wraps the
    command (a ToR's namespace)."""
    res = _run(where(["nft", "-c", "-f", str(path)]), timeout=timeout)
    if res.code == 0:
        return []
    if "Operation not permitted" in res.stderr:
        raise ToolError("nft -c needs CAP_NET_ADMIN to check a ruleset (run as root)")
    return [ln for ln in res.stderr.splitlines() if ln.strip()] or [f"nft -c: exit {res.code}"]


def reload_delta(running: Path, new: Path, *, frr_reload: str, timeout: float = 60) -> list[str]:
    """``frr-reload.py --test --input RUNNING NEW``: the lines a reload would delete and
    add, from two files (no daemon needed). Only call it on a file ``vtysh -C`` accepted:
    on a broken file it prints a delta that deletes the whole BGP instance."""
    with tempfile.TemporaryDirectory(prefix="sixpod-frr-reload-") as rundir:
        argv = [
            frr_reload, "--test", "--stdout", "--log-level", "error",
            "--rundir", rundir, "--input", str(running), str(new),
        ]  # fmt: skip
        out = _must(argv, _run(argv, timeout=timeout))
    return [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("20")]


class Tor:
    """One ToR's lldpd and FRR, as ``fabric.yaml`` says to reach them."""

    def __init__(self, name: str, cfg: FabricConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.access = cfg.access(name)

    def _argv(self, argv: Sequence[str]) -> list[str]:
        ns = self.access.netns
        return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)

    def run(self, argv: Sequence[str]) -> str:
        full = self._argv(argv)
        return _must(full, _run(full, timeout=self.cfg.timeout))

    # -- lldpd ------------------------------------------------------------------------------

    def lldp_neighbors(self) -> str:
        """``lldpcli -f json0 show neighbors`` (json0: lists stay lists)."""
        sock = self.access.lldp_socket
        argv = [self.cfg.lldpcli, *(["-u", sock] if sock else []), "-f", "json0"]
        return self.run([*argv, "show", "neighbors"])

    # -- FRR --------------------------------------------------------------------------------

    def _vtysh(self) -> list[str]:
        sock = self.access.vty_socket
        return [self.cfg.vtysh, *(["--vty_socket", sock] if sock else [])]

    def vtysh(self, *commands: str) -> str:
        argv = self._vtysh()
        for c in commands:
            argv += ["-c", c]
        return self.run(argv)

    def running_config(self) -> str:
        """What FRR runs, as a config file (``no-header``: as frr-reload.py reads it)."""
        return self.vtysh("show running-config no-header")

    def bgp_summary(self) -> Any:
        text = self.vtysh("show bgp vrf default summary json")
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError as e:
            raise ToolError(f"{self.name}: show bgp summary json: not JSON: {e}") from None

    def reload(self, config: Path) -> str:
        """``frr-reload.py --reload FILE``: apply the delta to the running daemons. It then
        saves the running config (``vtysh write``) as ``CONFDIR/frr.conf``: on the switch,
        ``/etc/frr`` (the change survives a restart); in the lab, a ToR's own folder."""
        with tempfile.TemporaryDirectory(prefix="sixpod-frr-reload-") as rundir:
            Path(rundir).chmod(0o755)
            argv = [self.cfg.frr_reload, "--reload", "--stdout", "--rundir", rundir]
            sock = self.access.vty_socket
            if sock:
                argv += ["--vty_socket", sock]
            if self.access.confdir:
                argv += ["--confdir", self.access.confdir]
            return self.run([*argv, str(config)])

    # -- nftables ---------------------------------------------------------------------------

    def firewall(self) -> str | None:
        """``nft list table inet sixpod_tor``: the ToR's own firewall as it runs now (a
        ruleset ``nft -f`` loads back), or None when it has none."""
        argv = self._argv(["nft", "list", "table", "inet", TABLE])
        res = _run(argv, timeout=self.cfg.timeout)
        # nft's own answer for a missing table (not a namespace or a program that is missing)
        if res.code != 0 and "Error: No such file or directory" in res.stderr:
            return None
        return _must(argv, res)

    def check_firewall(self, path: Path) -> list[str]:
        """``nft -c -f FILE`` where the ToR runs it: what nft says is wrong (empty if fine)."""
        return check_nft_syntax(path, timeout=self.cfg.timeout, where=self._argv)

    def load_firewall(self, path: Path) -> str:
        """``nft -f FILE``: one transaction (a file that fails changes nothing)."""
        return self.run(["nft", "-f", str(path)])
