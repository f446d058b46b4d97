"""The announcer's asyncio adapter against a scripted ExaBGP on its stdin/stdout."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

from sixpod.routing.announcer import AnnouncerDaemon, read_line
from sixpod.routing.config import AnnouncerConfig
from sixpod.routing.exabgp import ExaBGPProtocolError

UP = (
    '{"exabgp": "5.0.0", "type": "state", "neighbor": {"address": {"local": "2001:db8:2ff::2",'
    ' "peer": "2001:db8:2ff::1"}, "state": "up"}}\n'
)


def negotiated(nexthop: str) -> str:
    return (
        '{"exabgp": "5.0.0", "type": "negotiated", "neighbor": {"address": {"local": '
        '"2001:db8:2ff::2", "peer": "2001:db8:2ff::1"}, "negotiated": {"families": '
        f'["ipv4 unicast", "ipv6 unicast"], "nexthop": {nexthop}}}}}}}\n'
    )


def config(tmp_path: Path, **extra: object) -> AnnouncerConfig:
    return AnnouncerConfig.model_validate(
        {
            "node": "edge1",
            "pod": "lab1",
            "next_hop": "2001:db8:2ff::2",
            "node_prefix": "2001:db8:200:1::/64",
            "vips": ["203.0.113.0", "2001:db8:2fe::1"],
            "manage_loopback": False,
            "state_dir": str(tmp_path),
            **extra,
        }
    )


class FakeExaBGP:
    """Records commands; acknowledges each with ``done`` like ExaBGP 5."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()
        self.commands: list[str] = []

    def write(self, data: bytes) -> None:
        if self.reader.at_eof() or self.reader._eof:
            raise BrokenPipeError("ExaBGP is gone")
        for line in data.decode().splitlines():
            self.commands.append(line)
            self.reader.feed_data(b"done\n")


async def settle(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_start_withdraws_stale_then_announces_and_exit_withdraws(tmp_path: Path) -> None:
    async def main() -> list[str]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        daemon._stopping.set()
        assert await task == 0
        return exa.commands

    commands = asyncio.run(main())
    assert commands[:3] == [  # no checks: healthy at once; IPv4 first, then by prefix
        "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
        "announce route 2001:db8:200:1::/64 next-hop 2001:db8:2ff::2",
        "announce route 2001:db8:2fe::1/128 next-hop 2001:db8:2ff::2",
    ]
    assert commands[-3:] == [
        "withdraw route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
        "withdraw route 2001:db8:200:1::/64 next-hop 2001:db8:2ff::2",
        "withdraw route 2001:db8:2fe::1/128 next-hop 2001:db8:2ff::2",
    ]


def test_status_and_ledger_are_readable_by_operators(tmp_path: Path) -> None:
    """`sixpod node status` runs as a non-root operator: status.json and announced.json are
    0644, not the 0600 of a temporary file."""

    async def main() -> None:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle((tmp_path / "status.json").exists)
        daemon._stopping.set()
        await task

    asyncio.run(main())
    for name in ("status.json", "announced.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_failing_broken_check_keeps_vips_withdrawn(tmp_path: Path) -> None:
    check = {"name": "never", "kind": "command", "argv": ["false"], "severity": "broken"}
    check |= {"interval": 0.05, "fast_interval": 0.01, "timeout": 1, "fall": 1}

    async def main() -> list[str]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path, checks=[check]), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.core.state.value == "down")
        daemon._stopping.set()
        await task
        return exa.commands

    commands = asyncio.run(main())
    assert not [c for c in commands if c.startswith("announce route 203.0.113.0/32")]
    # At start the VIPs a previous instance may have left in ExaBGP are withdrawn.
    assert "withdraw route 203.0.113.0/32 next-hop 2001:db8:2ff::2" in commands


def test_drain_flag_file_drives_the_core(tmp_path: Path) -> None:
    async def main() -> list[str]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path, drain_timeout=0.2), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.core.state.value == "up")
        (tmp_path / "drain").write_text("drain\n")
        await settle(lambda: daemon.core.state.value == "drained")
        daemon._stopping.set()
        await task
        return exa.commands

    commands = asyncio.run(main())
    assert (
        "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2 med 1000 community [ 65535:0 ]"
        in commands
    )


def test_exabgp_closing_the_pipe_stops_the_announcer(tmp_path: Path) -> None:
    async def main() -> int:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: bool(exa.commands))
        exa.reader.feed_eof()
        return await asyncio.wait_for(task, 10)

    assert asyncio.run(main()) == 0


def test_refused_commands_are_retried_with_backoff_not_in_a_loop(tmp_path: Path) -> None:
    class Refusing(FakeExaBGP):
        def write(self, data: bytes) -> None:
            if self.reader._eof:
                raise BrokenPipeError("ExaBGP is gone")
            for line in data.decode().splitlines():
                self.commands.append(line)
                self.reader.feed_data(b"error\n")

    async def main() -> list[str]:
        exa = Refusing()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await asyncio.sleep(1.5)
        exa.reader.feed_eof()
        await task
        return exa.commands

    commands = asyncio.run(main())
    announces = [c for c in commands if c.startswith("announce")]
    assert 3 <= len(announces) <= 9  # first try, then one retry per second: not thousands


def test_a_dead_timer_task_withdraws_everything(tmp_path: Path) -> None:
    async def main() -> tuple[int, list[str]]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)

        def broken() -> None:
            raise PermissionError("state_dir unreadable")

        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        daemon.poll_control = broken  # type: ignore[method-assign]
        return await asyncio.wait_for(task, 10), exa.commands

    code, commands = asyncio.run(main())
    assert code == 1
    assert commands[-3:] == [
        "withdraw route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
        "withdraw route 2001:db8:200:1::/64 next-hop 2001:db8:2ff::2",
        "withdraw route 2001:db8:2fe::1/128 next-hop 2001:db8:2ff::2",
    ]


def test_acks_do_not_replan_so_a_burst_stays_linear(tmp_path: Path) -> None:
    vips = [f"203.0.113.{i}" for i in range(256)] + [f"2001:db8:2fe::{i:x}" for i in range(1, 257)]

    async def main() -> int:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path, vips=vips), write=exa.write)
        plans = 0
        plan = daemon.sync.plan

        def counting(desired: object) -> object:
            nonlocal plans
            plans += 1
            return plan(desired)  # type: ignore[arg-type]

        daemon.sync.plan = counting  # type: ignore[method-assign,assignment]
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()))
        daemon._stopping.set()
        await task
        assert len([c for c in exa.commands if c.startswith("announce")]) == 513
        return plans

    assert asyncio.run(main()) < 50  # not one plan per acknowledgement (513 of them)


def test_vips_removed_from_the_config_are_withdrawn_after_an_announcer_restart(
    tmp_path: Path,
) -> None:
    """Only the announcer restarts (ExaBGP respawns it, or it was killed): ExaBGP still holds
    what the previous instance announced, including VIPs the new config no longer has."""

    async def run_once(vips: list[str]) -> list[str]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path, vips=vips), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        daemon._stopping.set()
        await task
        return exa.commands

    asyncio.run(run_once(["203.0.113.0", "203.0.113.9", "2001:db8:2fe::1", "2001:db8:2fe::9"]))
    commands = asyncio.run(run_once(["203.0.113.0", "2001:db8:2fe::1"]))
    # The stale VIPs go with the first plan, before the exit withdraws the others.
    first = commands[: commands.index("withdraw route 203.0.113.0/32 next-hop 2001:db8:2ff::2")]
    assert "withdraw route 203.0.113.9/32 next-hop 2001:db8:2ff::2" in first
    assert "withdraw route 2001:db8:2fe::9/128 next-hop 2001:db8:2ff::2" in first
    # Once ExaBGP acknowledged those withdrawals they are forgotten: a third start sends none.
    commands = asyncio.run(run_once(["203.0.113.0", "2001:db8:2fe::1"]))
    assert not [c for c in commands if "203.0.113.9/32" in c or "2001:db8:2fe::9/128" in c]


def test_an_unreadable_ledger_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "announced.json").write_text('{"schema": "sixpod.announced/1", "routes": [')

    async def main() -> list[str]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        daemon._stopping.set()
        await task
        return exa.commands

    assert asyncio.run(main())[0] == "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2"
    assert "2001:db8:2fe::1/128" in (tmp_path / "announced.json").read_text()


def test_ipv4_is_refused_over_a_session_without_extended_next_hop(tmp_path: Path) -> None:
    def read_status() -> Any:
        return json.loads((tmp_path / "status.json").read_text())

    async def main() -> tuple[list[str], dict[str, object], dict[str, object]]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        exa.reader.feed_data((negotiated("[]") + UP).encode())
        await settle(lambda: daemon.core.session_established)
        await settle(lambda: daemon.sync.converged(daemon.core.desired()))
        await settle((tmp_path / "status.json").exists)
        await settle(lambda: read_status()["routes"]["announced"] == {"ipv4": 0, "ipv6": 2})
        refused = read_status()
        samples = {
            (m.name, tuple(sorted(s.labels.items()))): s.value
            for m in daemon.metrics.registry.collect()
            for s in m.samples
        }
        exa.reader.feed_data((negotiated('["ipv4 unicast ipv6"]') + UP).encode())
        await settle(lambda: daemon.sync.converged(daemon.core.desired()))
        await settle(lambda: json.loads((tmp_path / "status.json").read_text())["problems"] == [])
        daemon._stopping.set()
        await task
        return exa.commands, refused, samples

    commands, status, samples = asyncio.run(main())
    v4 = [c for c in commands if "203.0.113.0/32" in c]
    # Announced at start (nothing is known yet), withdrawn once the session said it cannot
    # carry IPv4 (again after the session's resync), announced again over a session that can,
    # withdrawn at exit.
    assert [c for i, c in enumerate(v4) if i == 0 or v4[i - 1] != c] == [
        "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
        "withdraw route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
        "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
        "withdraw route 203.0.113.0/32 next-hop 2001:db8:2ff::2",
    ]
    assert samples[("sixpod_announcer_session_family", (("family", "ipv4"),))] == 0
    assert samples[("sixpod_announcer_session_family", (("family", "ipv6"),))] == 1
    assert samples[("sixpod_announcer_routes_refused", (("family", "ipv4"),))] == 1
    assert samples[("sixpod_announcer_routes_announced", (("family", "ipv4"),))] == 0
    assert samples[("sixpod_announcer_routes_announced", (("family", "ipv6"),))] == 2
    session = status["session"]
    assert isinstance(session, dict)
    assert session["since"].endswith("Z")  # when the session came up, on the wall clock
    assert {k: v for k, v in session.items() if k != "since"} == {
        "up": True,
        "peer": "2001:db8:2ff::1",
        "families": {"ipv4": False, "ipv6": True},
        "negotiated": {
            "families": ["ipv4 unicast", "ipv6 unicast"],
            "nexthop": [],
            "hold_time": None,
            "asn4": None,
            "refresh": None,
            "message_size": None,
        },
    }
    groups = status["route_groups"]
    assert isinstance(groups, list)
    assert [(g["kind"], g["family"], g["state"], g["cause"]) for g in groups] == [
        ("node", "ipv6", "announced", "node-prefix"),
        ("vip", "ipv4", "refused", "family"),
        ("vip", "ipv6", "announced", "healthy"),
    ]
    changes = status["changes"]
    assert isinstance(changes, list)
    whats = [c["what"] for c in changes]
    assert "state init -> up: start; no checks" in whats
    assert "BGP session with 2001:db8:2ff::1 up" in whats
    assert any(w.startswith("refused 1 IPv4 routes: the session with") for w in whats)
    assert status["routes"] == {
        "announced": {"ipv4": 0, "ipv6": 2},
        "refused": {"ipv4": 1, "ipv6": 0},
    }
    assert status["problems"] == [
        "1 ipv4 routes not announced: the BGP session did not negotiate IPv4 unicast with an"
        " IPv6 next hop (RFC 8950 extended next hop)"
    ]


def test_a_session_that_reports_no_capabilities_keeps_both_families(tmp_path: Path) -> None:
    """An exabgp.conf without `api { negotiated; }` (rendered before): IPv4 is still sent, and
    the status says it could not be checked."""

    async def main() -> dict[str, object]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.core.session_established)
        await settle(lambda: daemon.sync.converged(daemon.core.desired()))
        await settle((tmp_path / "status.json").exists)
        await settle(lambda: json.loads((tmp_path / "status.json").read_text())["session"]["up"])
        daemon._stopping.set()
        await task
        assert "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2" in exa.commands
        return json.loads((tmp_path / "status.json").read_text())  # type: ignore[no-any-return]

    status = asyncio.run(main())
    assert status["session"]["families"] == {"ipv4": None, "ipv6": None}  # type: ignore[index]
    assert status["problems"] == [
        "ExaBGP did not report the negotiated capabilities (api negotiated)"
    ]


DOWN = UP.replace('"state": "up"', '"state": "down", "reason": "peer reset"')


def test_an_unreported_or_malformed_report_sends_both_families_not_the_last_sessions(
    tmp_path: Path,
) -> None:
    """A session without IPv4 (no extended next hop), then one whose report is malformed
    (``nexthop`` a string, not a list), then one that reports nothing: each unknown session
    gets both families, as the log says, not the previous session's; the status says which."""

    def read_status() -> Any:
        return json.loads((tmp_path / "status.json").read_text())

    v4 = "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2"

    async def main() -> list[tuple[frozenset[int], list[str]]]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        seen = []
        for report in (negotiated("[]"), negotiated('"ipv4 unicast ipv6"'), ""):
            exa.commands.clear()
            exa.reader.feed_data((DOWN + report + UP).encode())
            await settle(lambda: daemon._peer is not None and daemon.core.session_established)
            await settle(lambda: daemon.sync.converged(daemon.core.desired()))
            if report != negotiated("[]"):
                await settle(lambda: v4 in exa.commands)
            await settle(lambda: read_status()["session"]["up"])
            daemon.write_status(force=True)
            seen.append((daemon.core.carries, read_status()["problems"]))
        daemon._stopping.set()
        await task
        return seen

    (first, refused), (second, malformed), (third, unreported) = asyncio.run(main())
    assert first == {6}
    assert refused[0].startswith("1 ipv4 routes not announced")
    assert second == third == {4, 6}
    assert malformed == [
        "ExaBGP's report of the negotiated capabilities was malformed (negotiated nexthop: not"
        " a list of names: 'ipv4 unicast ipv6'); routes of both families are sent unchecked"
    ]
    assert unreported == ["ExaBGP did not report the negotiated capabilities (api negotiated)"]


def test_an_oversized_line_is_skipped_not_a_crash(tmp_path: Path) -> None:
    """A line over the reader's limit (here the default 64 KiB) is a protocol error: skipped
    to its newline, the lines after it are read, and the exit withdrawals are acknowledged."""

    async def main() -> tuple[int, AnnouncerDaemon, list[str]]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        exa.reader.feed_data(b'{"type": "state", "x": "' + b"x" * 200_000 + b'"}\n')
        exa.reader.feed_data(b"[" * 60_000 + b"\n")  # under the limit, too deep for json
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.core.session_established)
        assert not task.done()
        daemon._stopping.set()
        return await task, daemon, exa.commands

    code, daemon, commands = asyncio.run(main())
    assert code == 0
    assert commands[-1] == "withdraw route 2001:db8:2fe::1/128 next-hop 2001:db8:2ff::2"
    assert daemon.sync.pending_count == 0  # the withdrawals were acknowledged


def test_read_line_skips_long_lines_to_their_newline() -> None:
    async def main() -> list[bytes | str]:
        reader = asyncio.StreamReader(limit=16)
        reader.feed_data(b"done\n" + b"y" * 40 + b"done\n" + b"z" * 17 + b"\nerror\n")
        reader.feed_data(b"w" * 50)
        reader.feed_eof()
        out: list[bytes | str] = []
        while True:
            try:
                line = await read_line(reader)
            except ExaBGPProtocolError as e:
                out.append(str(e))
                continue
            out.append(line)
            if not line:
                return out

    assert asyncio.run(main()) == [
        b"done\n",
        "a line from ExaBGP of 45 bytes is too long; skipped",  # its tail is no "done"
        "a line from ExaBGP of 18 bytes is too long; skipped",
        b"error\n",
        "a line from ExaBGP of 50 bytes is too long; skipped",
        b"",
    ]


def test_a_hung_exabgp_takes_bfd_down_until_it_answers_again(tmp_path: Path) -> None:
    """ExaBGP stops answering (SIGSTOP): the announcer shuts the BFD session down through
    vtysh (here a script that records its arguments), and brings it back on the next answer."""
    calls = tmp_path / "vtysh.calls"
    vtysh = tmp_path / "vtysh"
    vtysh.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    vtysh.chmod(0o755)
    bfd = {
        "peer": "2001:db8:2ff::1",
        "local_address": "2001:db8:2ff::2",
        "vty_socket": "/run/x",
        "vtysh": str(vtysh),
    }

    class Hangable(FakeExaBGP):
        hung = False
        unanswered = 0

        def write(self, data: bytes) -> None:
            for line in data.decode().splitlines():
                self.commands.append(line)
                if self.hung:
                    self.unanswered += 1
                else:
                    self.reader.feed_data(b"done\n")

        def resume(self) -> None:
            self.hung = False
            self.reader.feed_data(b"done\n" * self.unanswered)
            self.unanswered = 0

    def lines() -> list[str]:
        return calls.read_text().splitlines() if calls.exists() else []

    async def main() -> tuple[float, list[str]]:
        exa = Hangable()
        daemon = AnnouncerDaemon(config(tmp_path, bfd=bfd), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: len(lines()) == 1)  # the first answer: BFD enabled
        assert daemon.watch.state.value == "alive"
        loop = asyncio.get_running_loop()
        exa.hung = True
        start = loop.time()
        await settle(lambda: len(lines()) == 2)
        took = loop.time() - start
        assert daemon.watch.state.value == "hung"
        await settle(lambda: daemon.bfd_shutdown is True)
        daemon.write_status()
        await asyncio.sleep(0.3)
        daemon.write_status()
        status = json.loads((tmp_path / "status.json").read_text())
        assert status["speaker"] == "hung"
        assert status["bfd"] == "shutdown"
        assert any("ExaBGP does not answer" in p for p in status["problems"])
        exa.resume()
        await settle(lambda: len(lines()) == 3)
        daemon._stopping.set()
        await task
        return took, exa.commands

    took, commands = asyncio.run(main())
    prefix = "-d bfdd --vty_socket /run/x -c configure terminal -c bfd -c peer 2001:db8:2ff::1 "
    prefix += "local-address 2001:db8:2ff::2 -c "
    assert lines() == [prefix + "no shutdown", prefix + "shutdown", prefix + "no shutdown"]
    assert took < 2.0  # probe every 0.05 s, hung after 0.25 s of silence (generous bound)
    assert "# sixpod liveness probe" in commands


def test_probes_do_not_make_the_full_tick_run_at_their_rate(tmp_path: Path) -> None:
    """Probes go out every 50 ms; the look at every route (plan, metrics, status) stays at
    the control poll (0.2 s): with 1,024 VIPs it is the expensive part."""

    async def main() -> tuple[int, int]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path), write=exa.write)
        plans = 0
        plan = daemon.sync.plan

        def counting(desired: object) -> object:
            nonlocal plans
            plans += 1
            return plan(desired)  # type: ignore[arg-type]

        task = asyncio.create_task(daemon.run(exa.reader))
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        await asyncio.sleep(0.3)
        daemon.sync.plan = counting  # type: ignore[method-assign,assignment]
        before = exa.commands.count("# sixpod liveness probe")
        await asyncio.sleep(1.0)
        probes = exa.commands.count("# sixpod liveness probe") - before
        daemon._stopping.set()
        await task
        return probes, plans

    probes, plans = asyncio.run(main())
    assert probes >= 8  # about 20 in a second
    assert plans <= 8  # about 5 in a second


def test_vip_states_unreadable_keep_the_last_blackholed_set_and_never_stop_the_announcer(
    tmp_path: Path,
) -> None:
    """A password file missing (or a replica down) is logged and retried: the VIPs last seen
    blackholed (state_dir/blackholed.json) stay withdrawn, the rest is announced."""
    (tmp_path / "blackholed.json").write_text('{"203.0.113.0": "DDoS"}\n')
    states = {"redis": "[::1]:1", "password_file": str(tmp_path / "missing")}

    async def main() -> list[str]:
        exa = FakeExaBGP()
        daemon = AnnouncerDaemon(config(tmp_path, vip_states=states), write=exa.write)
        task = asyncio.create_task(daemon.run(exa.reader))
        exa.reader.feed_data(UP.encode())
        await settle(lambda: daemon.sync.converged(daemon.core.desired()) and exa.commands)
        await asyncio.sleep(0.3)  # the reader's first attempt has failed by now
        assert not task.done()
        daemon._stopping.set()
        assert await task == 0
        return exa.commands

    commands = asyncio.run(main())
    assert "announce route 2001:db8:2fe::1/128 next-hop 2001:db8:2ff::2" in commands
    assert not any(c.startswith("announce route 203.0.113.0/32") for c in commands)
    # an unreadable file: nothing taken as blackholed, nothing stops
    (tmp_path / "blackholed.json").write_text("{not json")
    commands = asyncio.run(main())
    assert "announce route 203.0.113.0/32 next-hop 2001:db8:2ff::2" in commands
