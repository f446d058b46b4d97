"""The node's BFD session with its ToR, through FRR bfdd's vtysh (the announcer's adapter).

While ExaBGP is hung the announcer shuts the session down administratively: bfdd then sends
AdminDown, and the ToR's FRR takes the BGP session down at once (``Cease/BFD Down``), as for a
dead node. Any answer from ExaBGP brings the session back (``no shutdown``). Only the session
named in the announcer's ``bfd`` configuration (``peer ... local-address ...``, as in the
rendered ``bfdd.conf``) is touched.
"""

from __future__ import annotations

import asyncio
import contextlib

from sixpod import addr
from sixpod.errors import map_exceptions
from sixpod.routing.config import BfdConfig
from sixpod.routing.errors import Unavailable

__all__ = ["BfdError", "set_shutdown", "vtysh_argv"]

TIMEOUT = 3.0  # seconds for one vtysh call


class BfdError(Unavailable):
    """vtysh could not change the BFD session (bfdd down, socket unreachable, no such peer)."""


def vtysh_argv(cfg: BfdConfig, *, shutdown: bool) -> list[str]:
    """The vtysh command line that shuts the session down (or brings it back)."""
    argv = [cfg.vtysh, "-d", "bfdd"]  # bfdd alone: no round trip through zebra's vty
    if cfg.vty_socket is not None:
        argv += ["--vty_socket", cfg.vty_socket]
    peer = f"peer {addr.format_ip(cfg.peer)} local-address {addr.format_ip(cfg.local_address)}"
    for line in ("configure terminal", "bfd", peer, "shutdown" if shutdown else "no shutdown"):
        argv += ["-c", line]
    return argv


async def set_shutdown(cfg: BfdConfig, *, shutdown: bool) -> None:
    """Apply ``shutdown`` to the session; :class:`BfdError` if vtysh did not."""
    argv = vtysh_argv(cfg, shutdown=shutdown)
    with map_exceptions({OSError: lambda e: BfdError(f"{argv[0]}: {e.strerror or e}")}):
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        await _kill(proc)
        raise BfdError(f"vtysh did not finish within {TIMEOUT:g} s") from None
    except asyncio.CancelledError:  # the announcer exits: no `shutdown` applied after it
        await _kill(proc)
        raise
    text = out.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or "% " in text:
        raise BfdError(f"vtysh exit {proc.returncode}: {text[:200] or 'no output'}")


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill vtysh and reap it; shielded, so that a second cancellation cannot leave it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await asyncio.shield(proc.wait())
