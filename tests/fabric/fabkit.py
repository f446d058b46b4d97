"""Shared helpers of the fabric tests: rendered examples, a sandbox that is always removed."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from sixpod.devices import TorDevice, load
from sixpod.inventory.load import load_inventory
from sixpod.inventory.lock import parse_lock
from sixpod.inventory.render import render
from sixpod.lab import netns
from sixpod.lab.netns import Sandbox

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def rendered(name: str = "small") -> dict[str, str]:
    """Every file of ``examples/NAME.yaml``'s render, by relative path."""
    inv = load_inventory((EXAMPLES / f"{name}.yaml").read_text(), f"{name}.yaml").inventory
    lock, _ = parse_lock((EXAMPLES / f"{name}.lock").read_text(), f"{name}.lock")
    return render(inv, lock)


def tor(files: dict[str, str], name: str) -> TorDevice:
    doc = load(files[f"tors/{name}/device.json"])
    assert isinstance(doc, TorDevice)
    return doc


@contextlib.contextmanager
def sandbox(tmp_path: Path, tag: str = "sxk") -> Iterator[Sandbox]:
    """A sandbox removed at the end; fails the test if anything of it is left."""
    box = Sandbox(prefix=f"{tag}{secrets.token_hex(3)}-", workdir=tmp_path)
    try:
        yield box
    finally:
        problems = box.close()
        assert problems == []
        assert netns.existing_namespaces(box.prefix) == []


def in_ns(ns: str, code: str, *, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` inside namespace ``ns`` (the test's own, never the root one)."""
    assert ns in netns.existing_namespaces(ns)
    return subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


LLDPD_CHROOT = Path("/run/lldpd")  # lldpd's privilege-separation chroot (Debian's build)


def start_lldpd(box: Sandbox, ns: str, name: str, conf: str) -> Path:
    """lldpd in ``ns`` with its own control socket (``-u``), its config ``conf`` plus a 1 s
    transmit interval; returns the socket's path."""
    LLDPD_CHROOT.mkdir(exist_ok=True)
    folder = box.shared_dir(f"lldp-{name}")
    (folder / "lldpd.conf").write_text(conf + "configure lldp tx-interval 1\n")
    sock = folder / "lldpd.sock"
    argv = ["lldpd", "-d", "-u", str(sock), "-O", str(folder / "lldpd.conf")]
    box.spawn(f"lldpd-{name}", ns, argv)
    netns.wait_for(sock.exists, timeout=10, what=f"lldpd {name}'s socket")
    return sock
