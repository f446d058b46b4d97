"""Fixtures of the node tests: the small example pod rendered, a fresh node namespace wired
to a ToR namespace (documentation prefixes only, removed at teardown with what runs there)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sixpod.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UPLINK = "up0"
"""The node end of the veth: not the machine's own eth0, so a bootstrap that ran in the root
namespace by mistake would find no such link and change nothing."""
IFA_F_NODAD = 0x02


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sixpod render examples/small.yaml`` with this environment's sixpod."""
    d = tmp_path_factory.mktemp("render")
    shutil.copy(EXAMPLES / "small.yaml", d / "pod.yaml")
    sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
    for args in (
        ["allocate", str(d / "pod.yaml")],
        ["render", str(d / "pod.yaml"), "--out", str(d / "out"), "--sixpod-bin", sixpod_bin],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return d / "out"


@dataclass
class Pair:
    node: str
    tor: str
    tor_address: str

    def run(self, *args: str, ns: str | None = None) -> subprocess.CompletedProcess[str]:
        """``sixpod ARGS`` inside the node namespace (never the root one)."""
        argv = [str(Path(sys.executable).with_name("sixpod")), *args]
        return subprocess.run(
            ["ip", "netns", "exec", ns or self.node, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def netns_pids(names: list[str]) -> list[int]:
    inodes = set()
    for ns in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry / "ns" / "net").st_ino in inodes:
                    pids.append(int(entry.name))
    return pids


def node_pair(tor_address: str, prefixlen: int = 64) -> Iterator[Pair]:
    from pyroute2 import IPRoute, netns

    tag = secrets.token_hex(3)
    pair = Pair(f"sxb{tag}-n", f"sxb{tag}-t", tor_address)
    made: list[str] = []
    try:
        for ns in (pair.node, pair.tor):
            netns.create(ns)
            made.append(ns)
        with IPRoute(netns=pair.tor) as ipr:
            ipr.link(
                "add", ifname="swp1", kind="veth", peer={"ifname": UPLINK, "net_ns_fd": pair.node}
            )
            idx = ipr.link_lookup(ifname="swp1")[0]
            ipr.link("set", index=idx, state="up", mtu=9216)
            ipr.addr("add", index=idx, address=tor_address, prefixlen=prefixlen, flags=IFA_F_NODAD)
        yield pair
    finally:
        for pid in netns_pids(made):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while netns_pids(made) and time.monotonic() < deadline:
            time.sleep(0.05)
        for ns in made:
            netns.remove(ns)
