"""Run the node supervisor over two stand-in services (``python fake_services.py DIR``):
``sleeper`` sleeps; ``forker`` starts a child in a process group of its own, as ExaBGP starts
its API process, writes that child's pid to ``DIR/grandchild.pid`` and sleeps."""

from __future__ import annotations

import sys
from pathlib import Path

from sixpod.node.services import Plan, Runtime, Service
from sixpod.node.supervisor import Supervisor

SLEEP = "import time; time.sleep(600)"
FORK = (
    "import subprocess, sys, time; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
    "process_group=0); "
    "open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(600)"
)


def main(base: Path) -> int:
    rt = Runtime(
        run_dir=base / "run",
        state_dir=base / "state",
        log_dir=base / "logs",
        sixpod=Path("/nonexistent"),
        exabgp=Path("/nonexistent"),
    )
    for d in (rt.run_dir, rt.log_dir):
        d.mkdir(parents=True, exist_ok=True)
    plan = Plan(
        (
            Service("sleeper", (sys.executable, "-c", SLEEP)),
            Service("forker", (sys.executable, "-c", FORK, str(base / "grandchild.pid"))),
        )
    )
    return Supervisor(plan, rt).run()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
