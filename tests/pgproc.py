"""Run a throwaway PostgreSQL (Debian's ``postgresql``) on loopback for a test session.

``initdb`` into a fresh directory owned by the ``postgres`` user, start ``postgres`` on
127.0.0.1 and a free port with trust authentication, yield a URL builder, stop by PID.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sixpod.lab.redisproc import free_port


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian package 'postgresql')")
    return Path(found[-1]).parent


@dataclass
class Postgres:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


POSTGRES_USER: dict[str, Any] = {"user": "postgres", "group": "postgres", "extra_groups": []}


@contextlib.contextmanager
def postgres_server(start_timeout: float = 30.0) -> Iterator[Postgres]:
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="sixpod-pg-", dir="/tmp"))
    data = root / "data"
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        shutil.chown(root, "postgres", "postgres")
        initdb = [str(bindir / "initdb"), "-D", str(data), "--auth=trust", "--no-sync"]
        subprocess.run(
            [*initdb, "--username=postgres", "-E", "UTF8"],
            check=True,
            capture_output=True,
            cwd=root,
            **POSTGRES_USER,
        )
        port = free_port()
        log_file = stack.enter_context(open(root / "postgres.log", "wb"))
        options = ["-k", str(root), "-c", "fsync=off", "-c", "max_connections=200"]
        process = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            cwd=root,
            **POSTGRES_USER,
        )
        stack.callback(_stop, process)
        server = Postgres(port, process, root)
        deadline = time.monotonic() + start_timeout
        while True:
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"postgres did not start:\n{log}")
            time.sleep(0.1)
        yield server


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the postmaster by PID: SIGINT is PostgreSQL's fast shutdown."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
