"""A throwaway Postgres server for tests: Debian's postgresql package, on a Unix socket, as the `postgres` user.

Used by the tests of the server backends (job board, table store); they skip where no server binaries exist.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    socket_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@/postgres?host={self.socket_dir}&port={self.port}"

    def new_database(self) -> str:
        """A fresh database per test, so tests cannot see each other's tables."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}&port={self.port}"


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a cluster in a temporary folder, yield it, stop it and remove the folder (skip the test if impossible)."""
    bindir = Path("/usr/lib/postgresql")
    versions = sorted(bindir.glob("*/bin/initdb")) if bindir.is_dir() else []
    if not versions or shutil.which("runuser") is None:
        pytest.skip("no Postgres server binaries (Debian: apt-get install postgresql)")
    bin_dir = versions[-1].parent
    root = Path(tempfile.mkdtemp(prefix="erag-pg-"))  # not under pytest's folder: the postgres user must reach it
    try:
        shutil.chown(root, "postgres")
    except (LookupError, PermissionError) as exc:
        pytest.skip(f"cannot run Postgres as its own user here: {exc}")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, sock, port = root / "data", root, _free_port()
    made = subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"initdb cannot create a Postgres cluster here: {made.stderr.strip()[-300:]}")
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                    f"-k {sock} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True)
    try:
        yield PostgresServer(sock, port)
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
