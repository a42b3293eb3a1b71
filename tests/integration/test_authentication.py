"""Authentication on a shared store: a token revoked by another process is refused at once."""

from __future__ import annotations

import pytest

from domain.application import SYSTEM, PreparatoryMeetings
from domain.errors import Unauthenticated


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
