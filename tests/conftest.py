"""Fixtures shared by every layer of tests: stores and a fresh application on each."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.application import PreparatoryMeetings
from domain.store import store_env

PG_ADMIN_URL = os.environ.get("PREPMEET_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


def _admin_connect() -> object:
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The admin URL of a reachable PostgreSQL server; a skip without one, a failure in CI."""
    try:
        conn = _admin_connect()
    except Exception as e:  # any failure to connect means no server
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required when CI is set: {e}")
        pytest.skip(f"no PostgreSQL server: {e}")
    conn.close()  # type: ignore[attr-defined]
    yield PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database of its own for one test, dropped after it."""
    name = f"prepmeet_test_{uuid.uuid4().hex[:12]}"
    conn = _admin_connect()
    conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        conn.execute(  # type: ignore[attr-defined]
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["popo", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The eventsourcing settings of each kind of store: in memory, SQLite file, PostgreSQL."""
    if request.param == "popo":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if request.param == "sqlite":
        return store_env(tmp_path / "data", None)
    url = request.getfixturevalue("postgres_url")
    return store_env(tmp_path / "data", url)


@pytest.fixture
def any_app(store: dict[str, str]) -> Iterator[PreparatoryMeetings]:
    app = PreparatoryMeetings(env=store)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def app() -> Iterator[PreparatoryMeetings]:
    """An application on the in-memory store, for unit tests."""
    application = PreparatoryMeetings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        yield application
    finally:
        application.close()
