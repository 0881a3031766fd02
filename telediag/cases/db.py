"""The database under a case store: where it is, how to connect, one transaction.

SQLAlchemy Core reaches SQLite and PostgreSQL alike. On SQLite the file runs in WAL mode
(readers never wait for the writer), a write transaction takes the lock when it begins
(``BEGIN IMMEDIATE``) so it never has to upgrade a snapshot another writer has made
stale, and a transaction that finds the file busy is retried with backoff until
``busy_timeout``. On PostgreSQL, migrations run under an advisory lock and
serialization failures and deadlocks are retried. Opening a database brings its
schema to the current version (``schema.migrate``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import operator
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from telediag.cases import schema
from telediag.errors import CaseStoreError, InputError

T = TypeVar("T")

#: The environment variable naming the store when ``--db`` is not given.
DB_ENV = "TELEDIAG_DB"
_PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
#: Advisory lock id that serializes migrations of one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x7E1ED1A6


def default_db_path() -> Path:
    """The SQLite file used when neither ``--db`` nor ``TELEDIAG_DB`` is given."""
    import platformdirs

    return Path(platformdirs.user_data_dir("telediag")) / "cases.sqlite"


def resolve_db(db: str | os.PathLike[str] | None = None) -> sa.URL:
    """The store's database URL: ``db``, else ``$TELEDIAG_DB``, else the default file.

    A PostgreSQL URL (``postgresql://user@host/db``) is used as is, with psycopg; a
    ``sqlite:///`` URL or anything else is a SQLite file path.
    """
    value = str(db) if db is not None else os.environ.get(DB_ENV) or str(default_db_path())
    value = value.strip()
    if "://" in value:
        scheme, rest = value.split("://", 1)
        if scheme.lower() in _PG_SCHEMES:
            return sa.make_url(f"postgresql+psycopg://{rest}")
        if scheme.lower() == "sqlite":
            url = sa.make_url(value)
            if url.database in (None, "", ":memory:"):
                raise CaseStoreError(f"{value}: the case store must be a file, not in memory")
            return url
        raise CaseStoreError(
            f"{value}: unsupported database; use a SQLite file path or a postgresql:// URL"
        )
    path = Path(value).expanduser()
    if path.is_dir():
        raise CaseStoreError(f"{path}: is a directory; give the case store's file name")
    return sa.URL.create("sqlite", database=str(path.resolve()))


def utcnow() -> dt.datetime:
    """Now, as the store keeps times: naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def naive_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    """A time as the store keeps it (naive UTC); a naive input is taken as UTC already.
    ISO 8601 text is read too."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise CaseStoreError(
                f"cannot read time {value!r}: use ISO 8601, e.g. 2008-04-08T09:00+08:00"
            ) from None
    if not isinstance(value, dt.datetime):
        raise CaseStoreError(f"cannot read time {value!r}: give a datetime or ISO 8601 text")
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def aware_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive UTC) time as a tz-aware one."""
    return None if value is None else value.replace(tzinfo=dt.UTC)


def parse_day(value: str | dt.date | None, what: str = "date") -> dt.date:
    """A YYYY-MM-DD date; anything else is a one-line error naming ``what``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except (ValueError, TypeError):
        raise InputError(f"cannot read {what} {value!r}: use YYYY-MM-DD") from None


def case_number(value: object) -> int:
    """A case id as an int (numpy and pandas integers too); anything else is refused."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise CaseStoreError(f"case id must be a whole number, not {value!r}") from None


def plain_text(value: str | None, what: str) -> str | None:
    """Text to keep as given; NUL characters are refused (PostgreSQL cannot store them,
    and both back ends must behave alike)."""
    if value is not None and "\x00" in value:
        raise CaseStoreError(f"{what} contains a NUL character")
    return value


def default_by() -> str | None:
    """Who makes a change when ``--by`` is not given: the user name, where known."""
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment; history then shows none
        return None


class Database:
    """One case-store database: its URL, its engine, and transactions with retries."""

    def __init__(self, db: str | os.PathLike[str] | None = None, *, busy_timeout: float = 30.0):
        self.url = resolve_db(db)
        self.busy_timeout = busy_timeout
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.name = (
            str(self.url.database)
            if self.is_sqlite
            else self.url.render_as_string(hide_password=True)
        )
        self.engine = self._create_engine()
        try:
            if self.read(schema.stored_version) != schema.SCHEMA_VERSION:
                self.write(self._migrate)
        except BaseException:
            self.engine.dispose()
            raise

    # ------------------------------------------------------------------ connection
    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            folder = Path(str(self.url.database)).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CaseStoreError(
                    f"case store {self.name}: cannot create {folder}: {exc.strerror}"
                ) from None
            engine = sa.create_engine(
                self.url, connect_args={"timeout": self.busy_timeout}, poolclass=sa.NullPool
            )
            busy_ms = int(self.busy_timeout * 1000)

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Transactions are begun by the "begin" hook below, not by the driver.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                # WAL is a lasting property of the file: set it on a new file or a case
                # store, never on another application's database given by mistake.
                tables = {
                    row[0]
                    for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                }
                if not tables or schema.meta_table.name in tables:
                    cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = FULL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # A writer takes the write lock when it begins, so it never has to
                # upgrade a read snapshot that another writer has made stale.
                write = conn.get_execution_options().get("telediag_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise CaseStoreError(
                "a PostgreSQL case store needs psycopg: pip install 'telediag[postgresql]'"
            ) from None
        return sa.create_engine(self.url, pool_pre_ping=True)

    def dispose(self) -> None:
        """Close the connections."""
        self.engine.dispose()

    def _retryable(self, exc: sa.exc.DBAPIError) -> bool:
        orig = exc.orig
        if self.is_sqlite:
            text = str(orig).lower()
            return "locked" in text or "busy" in text
        return getattr(orig, "sqlstate", None) in ("40001", "40P01")

    def _run(self, fn: Callable[[Connection], T], write: bool) -> T:
        """Run ``fn`` in one transaction, retrying while the database is busy."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.02
        while True:
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(telediag_write=write)
                    with conn.begin():
                        return fn(conn)
            except sa.exc.DBAPIError as exc:
                if not self._retryable(exc) or time.monotonic() > deadline:
                    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                    raise CaseStoreError(f"case store {self.name}: {detail}") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a read transaction."""
        return self._run(fn, write=False)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` in a write transaction: all of it is kept, or none."""
        return self._run(fn, write=True)

    def _migrate(self, conn: Connection) -> tuple[int, int]:
        if not self.is_sqlite:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        try:
            return schema.migrate(conn)
        except CaseStoreError as exc:
            raise CaseStoreError(f"{self.name}: {exc}") from None
