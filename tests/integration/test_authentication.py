"""Authentication on a shared store: a token revoked by another process is refused at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.application import SYSTEM, PreparatoryMeetings
from domain.errors import Unauthenticated
from domain.store import store_env


def test_a_token_revoked_through_another_application_is_refused_at_once(
    disk_store: dict[str, str],
) -> None:
    server = PreparatoryMeetings(env=disk_store)
    operator = PreparatoryMeetings(env={**disk_store, "CREATE_TABLE": "n"})
    try:
        created = server.create_user(SYSTEM, "Aisha Khan", "Pakistan")
        token = created.extra["token"]
        user_id = created.state["id"]
        for _ in range(3):
            assert str(server.authenticate(token).id) == user_id
        operator.revoke_tokens(SYSTEM, user_id)
        with pytest.raises(Unauthenticated):
            server.authenticate(token)
        fresh = operator.issue_token(SYSTEM, user_id).extra["token"]
        assert str(server.authenticate(fresh).id) == user_id
        with pytest.raises(Unauthenticated):
            server.authenticate(token)
    finally:
        operator.close()
        server.close()


def test_a_token_revoked_by_the_command_line_is_refused_at_once(tmp_path: Path) -> None:
    """The server keeps what it read while the store's change stamp stands; a revocation
    recorded by another process moves the stamp, so the next request reads it."""
    data = tmp_path / "data"
    server = PreparatoryMeetings(env=store_env(data, None))
    try:
        created = server.create_user(SYSTEM, "Aisha Khan", "Pakistan")
        token, user_id = created.extra["token"], created.state["id"]
        for _ in range(3):
            assert str(server.authenticate(token).id) == user_id
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
        env["PREPMEET_DATA_DIR"] = str(data)
        subprocess.run(
            [sys.executable, "-m", "api.cli", "users", "revoke", user_id],
            env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with pytest.raises(Unauthenticated):
            server.authenticate(token)
    finally:
        server.close()
