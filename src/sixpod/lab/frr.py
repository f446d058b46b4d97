"""FRR daemons inside a lab namespace, and vtysh with JSON output."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sixpod.lab.netns import LabError, Process, Sandbox, run, wait_for

FRR_LIB = Path("/usr/lib/frr")


class Frr:
    """zebra plus the given daemons, in the foreground (tracked by PID), in namespace ``ns``."""

    def __init__(
        self,
        box: Sandbox,
        ns: str,
        name: str,
        config: Path,
        daemons: tuple[str, ...],
        *,
        rundir: Path | None = None,
    ):
        self.box = box
        self.ns = ns
        self.name = name
        self.rundir = rundir or box.shared_dir(f"frr-{name}")
        self.config = config
        self.daemons = daemons
        self.procs: dict[str, Process] = {}

    def start(self) -> None:
        if not (FRR_LIB / "zebra").exists():
            raise LabError("FRR is not installed (Debian package frr)")
        shutil.chown(self.rundir, "frr", "frr")
        self.rundir.chmod(0o775)
        # Each daemon starts empty; vtysh then hands every command to the daemons that own it
        # (daemons reading an integrated config themselves stop at the first foreign block).
        conf = self.rundir / "empty.conf"
        conf.write_text("")
        shutil.chown(conf, "frr", "frr")
        zserv = self.rundir / "zserv.api"
        for daemon in ("zebra", *self.daemons):
            argv = [
                str(FRR_LIB / daemon),
                "-u", "frr", "-g", "frr",
                "-f", str(conf),
                "-i", str(self.rundir / f"{daemon}.pid"),
                "--vty_socket", str(self.rundir),
                "-z", str(zserv),
                "-A", "127.0.0.1",
                "--log", "stdout",
            ]  # fmt: skip
            if daemon == "zebra":
                argv += ["--v6-rr-semantics"]
            if daemon == "bfdd":
                argv += ["--bfdctl", str(self.rundir / "bfdd.sock")]
            self.procs[daemon] = self.box.spawn(f"{self.name}-{daemon}", self.ns, argv)
            wait_for(self._started(daemon), timeout=15, what=f"{self.name} {daemon} to start")
            if self._died(daemon):
                raise LabError(f"{self.name} {daemon} exited; see {self.procs[daemon].log}")
        self.apply(self.config)

    def apply(self, config: Path) -> None:
        """Load an integrated config into the running daemons."""
        out = run(["vtysh", "--vty_socket", str(self.rundir), "-f", str(config)], timeout=60)
        if "% " in out:
            raise LabError(f"{self.name}: {config} was not fully accepted: {out.strip()}")

    def _started(self, daemon: str) -> Callable[[], bool]:
        sock = self.rundir / f"{daemon}.vty"
        return lambda: sock.exists() or self._died(daemon)

    def _died(self, daemon: str) -> bool:
        return not self.procs[daemon].alive()

    def vtysh(self, *commands: str) -> str:
        argv = ["vtysh", "--vty_socket", str(self.rundir)]
        for c in commands:
            argv += ["-c", c]
        return run(argv, timeout=20)

    def json(self, command: str) -> Any:
        text = self.vtysh(command)
        try:
            return json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as e:
            raise LabError(f"vtysh {command!r}: not JSON: {e}") from None

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            self.box.stop(proc)
