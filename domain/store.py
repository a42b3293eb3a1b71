"""Where the event store lives: a SQLite file by default, PostgreSQL when configured."""

from __future__ import annotations

import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

EVENTS_FILE = "events.sqlite"
SQLITE_TOPIC = "domain.sqlite_store:Factory"
"""The ``PERSISTENCE_MODULE`` of the SQLite store (see :mod:`domain.sqlite_store`)."""
POSTGRES_TOPIC = "domain.postgres_store:Factory"
"""The ``PERSISTENCE_MODULE`` of the PostgreSQL store (see :mod:`domain.postgres_store`)."""


class StoreUnavailable(Exception):
    """The configured store cannot be used; the message is one line for the operator."""


@dataclass(frozen=True)
class PostgresParams:
    dbname: str
    host: str
    port: int
    user: str
    password: str
    schema: str


def parse_postgres_url(url: str) -> PostgresParams:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreUnavailable(f"database URL must start with postgresql://, got {parts.scheme}://")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise StoreUnavailable("database URL names no database (postgresql://host/DBNAME)")
    schema = "public"
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if name == "schema" and value:
            schema = unquote(value)
    return PostgresParams(
        dbname=dbname,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=schema,
    )


def store_env(
    data_dir: Path, database_url: str | None, *, create_table: bool = True
) -> dict[str, str]:
    """The eventsourcing settings for the configured store."""
    env = {"CREATE_TABLE": "y" if create_table else "n"}
    if database_url:
        p = parse_postgres_url(database_url)
        env.update(
            PERSISTENCE_MODULE=POSTGRES_TOPIC,
            POSTGRES_DBNAME=p.dbname,
            POSTGRES_HOST=p.host,
            POSTGRES_PORT=str(p.port),
            POSTGRES_USER=p.user,
            POSTGRES_PASSWORD=p.password,
            POSTGRES_SCHEMA=p.schema,
            POSTGRES_CONNECT_TIMEOUT="5",
            POSTGRES_POOL_SIZE="8",
            POSTGRES_MAX_OVERFLOW="8",
            POSTGRES_LOCK_TIMEOUT="5",
            POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT="10",
            POSTGRES_ENABLE_DB_FUNCTIONS="n",
        )
        return env
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / EVENTS_FILE
    check_sqlite_durability(path)
    env.update(
        PERSISTENCE_MODULE=SQLITE_TOPIC,
        SQLITE_DBNAME=str(path),
        SQLITE_LOCK_TIMEOUT="10",
    )
    return env


def check_sqlite_durability(path: Path) -> None:
    """Refuse to run unless the file is in WAL mode and commits with synchronous=FULL.

    A new (or empty) file is created in WAL mode. An existing file in another journal mode
    is refused, never converted behind the operator's back: they convert it themselves,
    with every process that uses it stopped.
    """
    new = not path.exists() or path.stat().st_size == 0
    try:
        conn = sqlite3.connect(path, timeout=10)
        try:
            pragma = "PRAGMA journal_mode=WAL" if new else "PRAGMA journal_mode"
            mode = conn.execute(pragma).fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StoreUnavailable(f"cannot open SQLite store {path}: {e}") from None
    if str(mode).lower() != "wal":
        if new:
            raise StoreUnavailable(
                f"SQLite store {path} could not be created in WAL mode (journal mode {mode})"
            )
        raise StoreUnavailable(
            f"SQLite store {path} is in journal mode {mode}, not WAL; stop every process "
            f"using it and convert it with: sqlite3 {shlex.quote(str(path))} "
            "'PRAGMA journal_mode=WAL'"
        )
    if int(sync) != 2:
        raise StoreUnavailable(
            f"SQLite store {path} runs with synchronous={sync}, not FULL (2): "
            "acknowledged writes would not survive a power loss"
        )


POSTGRES_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def show_postgres_settings(datastore: Any) -> dict[str, str]:
    """The server's answers to ``SHOW`` for each of :data:`POSTGRES_SETTINGS`."""
    found: dict[str, str] = {}
    with datastore.transaction(commit=False) as cursor:
        for name in POSTGRES_SETTINGS:
            cursor.execute(f"SHOW {name}")
            row = cursor.fetchone()
            found[name] = str(row[name] if isinstance(row, dict) else row[0])
    return found


def check_postgres_durability(datastore: Any) -> dict[str, str]:
    """Refuse a server that acknowledges commits it has not flushed; the settings relied on.

    ``synchronous_commit`` values other than ``off`` (``local``, ``remote_write``, ...) all
    flush the local WAL before a commit returns.
    """
    try:
        found = show_postgres_settings(datastore)
    except Exception as e:  # any failure to ask means the store is not usable
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreUnavailable(f"cannot read the PostgreSQL durability settings: {first}") from None
    if found["fsync"].lower() == "off":
        raise StoreUnavailable(
            "PostgreSQL runs with fsync=off: a crash could lose or corrupt acknowledged "
            "writes; set fsync = on in postgresql.conf and restart the server"
        )
    if found["synchronous_commit"].lower() == "off":
        raise StoreUnavailable(
            "PostgreSQL runs with synchronous_commit=off: a crash could lose acknowledged "
            "writes; set synchronous_commit = on (postgresql.conf, or ALTER DATABASE/ROLE ... "
            "SET synchronous_commit = on)"
        )
    return found
