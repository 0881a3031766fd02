"""A throwaway PostgreSQL server for tests: initdb + pg_ctl on a free local port.

Uses the server binaries of Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``) or any ``initdb`` on PATH. initdb refuses to run
as root, so as root the server runs as the ``postgres`` user (which the package
creates). :func:`why_unavailable` says why no server can be had, for the skip reason;
once the binaries are there, a server that fails to start is an error, not a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_bin() -> Path | None:
    """The directory of initdb/pg_ctl (the newest Debian version first), if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _run_as() -> list[str]:
    """The prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    return [shutil.which("runuser") or "runuser", "-u", "postgres", "--"]


def why_unavailable() -> str | None:
    """None when a server can be started here, else the reason it cannot."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install '.[test]')"
    if server_bin() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a new cluster; yield the URL of its ``postgres`` database; remove it all."""
    bindir = server_bin()
    assert bindir is not None
    prefix = _run_as()
    base = Path(tempfile.mkdtemp(prefix="telediag-pg-"))
    if prefix:
        shutil.chown(base, user="postgres")
    data, log = base / "data", base / "server.log"
    port = _free_port()
    started = False
    try:
        init = subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "telediag", "-A", "trust"]
            + ["-E", "UTF8", "--no-sync"],
            capture_output=True,
            text=True,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {(init.stderr or init.stdout).strip()[-800:]}")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        result = subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w"]
            + ["-o", options, "start"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            detail = log.read_text() if log.exists() else result.stderr
            raise RuntimeError(f"PostgreSQL did not start: {detail.strip()[-800:]}")
        started = True
        yield f"postgresql://telediag@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
            )
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server, dropped afterwards; yields its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = server_url
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
