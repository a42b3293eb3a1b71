"""Where the event store lives: a SQLite file by default, PostgreSQL when configured."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

EVENTS_FILE = "events.sqlite"


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
            PERSISTENCE_MODULE="eventsourcing.postgres",
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
        PERSISTENCE_MODULE="eventsourcing.sqlite",
        SQLITE_DBNAME=str(path),
        SQLITE_LOCK_TIMEOUT="10",
    )
    return env


def check_sqlite_durability(path: Path) -> None:
    """Put the file in WAL mode and refuse to run unless it commits with synchronous=FULL."""
    try:
        conn = sqlite3.connect(path, timeout=10)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StoreUnavailable(f"cannot open SQLite store {path}: {e}") from None
    if str(mode).lower() != "wal":
        raise StoreUnavailable(f"SQLite store {path} is in journal mode {mode}, not WAL")
    if int(sync) != 2:
        raise StoreUnavailable(
            f"SQLite store {path} runs with synchronous={sync}, not FULL (2): "
            "acknowledged writes would not survive a power loss"
        )
