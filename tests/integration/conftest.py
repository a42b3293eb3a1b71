"""Fixtures of the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.store import store_env


@pytest.fixture(params=["sqlite", "postgres"])
def disk_store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The settings of a store that commits to disk and can be shared by several
    application objects: a SQLite file, or a PostgreSQL database of the test's own."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return store_env(tmp_path / "data", url)
