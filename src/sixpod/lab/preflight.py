"""What ``sixpod lab up`` needs from this machine, checked before anything is created."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from sixpod.lab.frr import FRR_LIB
from sixpod.lab.monitoring import PROGRAMS as MONITORING

PROGRAMS: tuple[tuple[str, str], ...] = (
    ("ip", "Debian package iproute2"),
    ("sysctl", "Debian package procps"),
    (str(FRR_LIB / "zebra"), "Debian package frr"),
    (str(FRR_LIB / "bgpd"), "Debian package frr"),
    (str(FRR_LIB / "bfdd"), "Debian package frr"),
    ("vtysh", "Debian package frr"),
    ("redis-server", "Debian package redis-server"),
    ("redis-cli", "Debian package redis-tools"),
    ("nginx", "Debian packages nginx, libnginx-mod-http-lua and lua-resty-core"),
    (str(Path(sys.executable).with_name("exabgp")), "PyPI exabgp, in sixpod's environment"),
    ("nft", "Debian package nftables"),
    ("curl", "Debian package curl"),
    ("lldpd", "Debian package lldpd"),
    ("lldpcli", "Debian package lldpd"),
    *((program, f"Debian package {package}") for program, package in MONITORING.items()),
)
"""Each program the lab runs, and what installs it (``scripts/setup`` installs them all)."""


def missing(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """One line per program that is not installed, naming what installs it."""
    out = []
    for program, package in PROGRAMS:
        found = (
            os.access(program, os.X_OK) if os.path.isabs(program) else which(program) is not None
        )
        if not found:
            out.append(f"{program} is not installed ({package})")
    return out


def problems(
    euid: int | None = None, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """Why a lab cannot come up on this machine (empty: it can): root, programs, namespaces."""
    if (os.geteuid() if euid is None else euid) != 0:
        return ["the lab needs root (it creates network namespaces, veth pairs and routes)"]
    out = missing(which)
    if not out:
        out += _namespaces()
    return out


def _namespaces() -> list[str]:
    """Network namespaces work: one is made and removed (a container without CAP_SYS_ADMIN
    or a kernel without CONFIG_NET_NS fails here, before the lab builds anything)."""
    from pyroute2 import netns

    name = f"sxprobe-{secrets.token_hex(3)}"
    try:
        netns.create(name)
    except OSError as e:
        return [f"network namespaces are not available here: {e.strerror or e}"]
    try:
        netns.remove(name)
    except OSError as e:
        return [f"network namespace {name} could not be removed: {e.strerror or e}"]
    return []
