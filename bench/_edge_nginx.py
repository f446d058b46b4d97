"""nginx configs of the edge benchmark's peers, wrk runs, and process figures from /proc.

- the backend: Debian nginx answering ``200`` with the endpoint address it was reached on
  (``$server_addr``, so a probe knows which endpoint served it), for every address of the
  namespace's local /64s; ``stub_status`` counts the connections the proxies opened;
- the plain anchor: nginx ``proxy_pass`` to one ``upstream`` with ``keepalive``; the same
  access log format (JSON, ``app`` is ``-``), header rewriting and keep-alive limits as the
  edge's generated config, so the difference is what the Lua routing and balancing cost;
- the reference design's config: one ``upstream`` block per app (all its endpoints) and a
  ``map`` from Host to the upstream name, re-rendered whole and reloaded on every change.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
CLK_TCK = os.sysconf("SC_CLK_TCK")

_HEADERS = """\
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header Forwarded "for=$fwd_for;host=$host;proto=$scheme";
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header Proxy-Connection "";
            proxy_set_header Keep-Alive "";
"""

_LOG = (
    '{"time":"$time_iso8601","client":"$remote_addr","host":"$host","app":"-",'
    '"method":"$request_method","uri":"$request_uri","status":$status,'
    '"bytes":$bytes_sent,"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
    '"request_time":$request_time,"upstream_time":"$upstream_response_time",'
    '"request_id":"$request_id"}'
)


def _head(run: Path, workers: int, connections: int = 16384) -> str:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    return f"""\
worker_processes {workers};
worker_rlimit_nofile 262144;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
daemon off;
master_process on;
events {{ worker_connections {connections}; }}
"""


def _temp(run: Path) -> str:
    return f"""\
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
"""


def backend_conf(run: Path, port: int, status_port: int) -> str:
    return (
        _head(run, 1, 65536)
        + "http {\n"
        + _temp(run)
        + f"""\
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
    server {{
        listen [::]:{port} ipv6only=on backlog=65535;
        location / {{ return 200 "$server_addr\\n"; }}
    }}
    server {{
        listen [::1]:{status_port};
        location / {{ stub_status; }}
    }}
}}
"""
    )


def _common_http(run: Path, access_log: Path) -> str:
    return (
        _temp(run)
        + f"""\
    log_format bench_json escape=json '{_LOG}';
    access_log {access_log} bench_json;
    server_tokens off;
    keepalive_timeout 60s;
    keepalive_requests 10000;
    map_hash_max_size 1048576;
    map_hash_bucket_size 128;
    map $remote_addr $fwd_for {{
        "~:" "\\"[$remote_addr]\\"";
        default $remote_addr;
    }}
"""
    )


def plain_conf(run: Path, listen: str, upstream: str, access_log: Path) -> str:
    """nginx ``proxy_pass`` to one upstream with keep-alive (``listen``/``upstream``: [v6]:p)."""
    return (
        _head(run, 1)
        + "http {\n"
        + _common_http(run, access_log)
        + f"""\
    upstream backend {{
        server {upstream};
        keepalive 256;
        keepalive_requests 10000;
        keepalive_timeout 60s;
    }}
    server {{
        listen {listen} ipv6only=on;
        server_name _;
        location / {{
            proxy_pass http://backend;
{_HEADERS}        }}
    }}
}}
"""
    )


def anchor_conf(
    run: Path,
    listen: str,
    access_log: Path,
    apps: Iterable[tuple[str, Sequence[str], Sequence[str]]],
) -> str:
    """The reference design's rendering: ``(app, hosts, "[v6]:port weight=w" servers)``.

    Upstream names start with the app's position (``17_app17``): nginx compares every new
    upstream name with all earlier ones (quadratic in the number of upstreams), and names
    that differ in their first characters make that ~6x cheaper than ``u_app17`` (40k
    upstreams: 16 s against 96 s for ``nginx -t`` here). This favours the anchor.
    """
    ups: list[str] = []
    hosts: list[str] = []
    for i, (app, names, servers) in enumerate(apps):
        ups.append(f"    upstream {i}_{app} {{\n")
        ups.extend(f"        server {s};\n" for s in servers)
        ups.append("        keepalive 2;\n    }\n")
        hosts.extend(f"        {h} {i}_{app};\n" for h in names)
    return (
        _head(run, 1)
        + "http {\n"
        + _common_http(run, access_log)
        + "    map $host $app_upstream {\n        default u_none;\n"
        + "".join(hosts)
        + "    }\n"
        + "    upstream u_none { server [::1]:9; }\n"
        + "".join(ups)
        + f"""\
    server {{
        listen {listen} ipv6only=on;
        server_name _;
        location / {{
            proxy_pass http://$app_upstream;
{_HEADERS}        }}
    }}
}}
"""
    )


def check_conf(argv_prefix: Sequence[str], conf: Path) -> None:
    r = subprocess.run(
        [*argv_prefix, NGINX, "-t", "-q", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"nginx -t {conf}: {r.stderr.strip()[-2000:]}")


# -- /proc --------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def workers(master: int, want: int, timeout: float = 30) -> list[int]:
    """The worker PIDs of an nginx master (waits until ``want`` of them run)."""
    deadline = time.monotonic() + timeout
    while True:
        kids = [k for k in children(master) if "worker process" in _cmdline(k)]
        if len(kids) >= want or time.monotonic() > deadline:
            return kids
        time.sleep(0.05)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def memory(pid: int) -> dict[str, int]:
    """``rss`` and ``pss`` in bytes (smaps_rollup)."""
    out = {"rss": 0, "pss": 0}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            out[key.lower()] = int(rest.split()[0]) * 1024
    return out


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def hup(pid: int) -> None:
    os.kill(pid, signal.SIGHUP)


# -- wrk ----------------------------------------------------------------------------------

WRK_LUA = r"""
-- Host cycled over the lines of a file. With SIXPOD_RATE set (req/s), requests follow a
-- fixed schedule: each request takes the next slot (1/RATE apart) and waits for it (delay()
-- has whole milliseconds); a late slot is sent at once, so a stall is caught up, not lost.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } sixpod_timespec;
int clock_gettime(int clk_id, sixpod_timespec *tp);
]]
local ts = ffi.new("sixpod_timespec")
local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local reqs, n, i = {}, 0, 0
local rate = tonumber(os.getenv("SIXPOD_RATE") or "")

function init(args)
    for line in io.lines(args[1]) do
        n = n + 1
        reqs[n] = "GET / HTTP/1.1\r\nHost: " .. line .. "\r\n\r\n"
    end
end

function request()
    i = i % n + 1
    return reqs[i]
end

if rate then
    local gap, due = 1000 / rate, nil
    function delay()
        local t = now_ms()
        if due == nil or due < t - 1000 then due = t end  -- never a burst of over 1 s
        due = due + gap
        local d = due - t
        if d < 1 then return 0 end
        return math.floor(d)
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRK {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
        '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
        '"p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    status_errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def parse_wrk(text: str) -> WrkResult:
    m = re.search(r"^WRK (\{.*\})$", text, re.M)
    if m is None:
        raise RuntimeError(f"wrk printed no result:\n{text[-2000:]}")
    d: dict[str, Any] = json.loads(m.group(1))
    return WrkResult(
        requests=int(d["requests"]),
        seconds=d["duration_us"] / 1e6,
        errors=int(d["connect"] + d["read"] + d["write"] + d["timeout"]),
        status_errors=int(d["status"]),
        p50_ms=d["p50_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        p999_ms=d["p999_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        mean_ms=d["mean_us"] / 1000,
    )


def wrk_argv(
    ns_prefix: Sequence[str],
    cpu: int,
    url: str,
    script: Path,
    hosts: Path,
    *,
    seconds: float,
    connections: int,
) -> list[str]:
    return [
        *ns_prefix,
        "taskset",
        "-c",
        str(cpu),
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(hosts),
    ]


def wrk_env(rate: float | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SIXPOD_RATE", None)
    if rate is not None:
        env["SIXPOD_RATE"] = f"{rate:.1f}"
    return env


def run_wrk(argv: Sequence[str], rate: float | None, seconds: float) -> WrkResult:
    """wrk to completion; ``rate`` (req/s) makes it a fixed schedule, else a closed loop."""
    r = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=wrk_env(rate),
        timeout=seconds + 60,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}):\n{(r.stdout + r.stderr)[-2000:]}")
    return parse_wrk(r.stdout)


class Background:
    """wrk running in the background (bounded by its own -d); :meth:`finish` stops it."""

    def __init__(self, argv: Sequence[str], rate: float | None, log: Path) -> None:
        self.log = log
        self.out = log.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env=wrk_env(rate),
            start_new_session=True,
        )

    def finish(self) -> WrkResult | None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGINT)  # wrk stops and prints its summary
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.out.close()
        try:
            return parse_wrk(self.log.read_text())
        except RuntimeError:
            return None

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.out.close()


def stub_accepts(text: str) -> int:
    """``accepts`` from nginx's stub_status page."""
    m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", text, re.M)
    if m is None:
        raise RuntimeError(f"not a stub_status page: {text!r}")
    return int(m.group(1))
