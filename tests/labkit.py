"""A lab pod (small example) for the routing integration tests; always torn down."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sixpod.lab.netns import existing_namespaces
from sixpod.lab.pod import LabPod

ROOT = Path(__file__).resolve().parents[1]
SIXPOD = str(Path(sys.executable).with_name("sixpod"))


def render_small(dest: Path, *, all_edge: bool = False) -> Path:
    """Render examples/small.yaml (with ``all_edge``, app1 becomes a third edge node)."""
    pod = dest / "small.yaml"
    text = (ROOT / "examples" / "small.yaml").read_text()
    pod.write_text(text.replace("role: internal", "role: edge") if all_edge else text)
    shutil.copy(ROOT / "examples" / "small.lock", dest / "small.lock")
    out = dest / "rendered"
    subprocess.run([SIXPOD, "render", str(pod), "--out", str(out)], check=True, capture_output=True)
    return out


@contextmanager
def lab_pod(workdir: Path, *, all_edge: bool = False, **options: object) -> Iterator[LabPod]:
    rendered = render_small(workdir, all_edge=all_edge)
    pod = LabPod(rendered=rendered, workdir=workdir / "lab", **options)  # type: ignore[arg-type]
    try:
        pod.up()
        yield pod
    finally:
        problems = pod.down()
        assert problems == []
        assert existing_namespaces(pod.prefix) == []
        for proc in pod.box.processes:
            assert not proc.alive()
