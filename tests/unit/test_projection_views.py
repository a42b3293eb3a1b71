"""The read model's queries refuse what they cannot answer, clearly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.application import SYSTEM, PreparatoryMeetings
from domain.errors import InvalidInput, NotFound
from domain.store import store_env
from projections.runner import Projector
from projections.views import ReadModel, encode_cursor, open_read_side


@pytest.fixture
def model(tmp_path: Path) -> Iterator[tuple[PreparatoryMeetings, ReadModel]]:
    app = PreparatoryMeetings(env=store_env(tmp_path, None))
    read_model = open_read_side(tmp_path, None)
    try:
        yield app, read_model
    finally:
        read_model.close()
        app.close()


def test_the_views_live_in_a_sqlite_file_of_their_own_in_wal_mode(
    model: tuple[PreparatoryMeetings, ReadModel], tmp_path: Path
) -> None:
    _, views = model
    assert (tmp_path / "views.sqlite").exists()
    assert views.fetch("PRAGMA journal_mode") == [("wal",)]
    assert views.position() == 0


@pytest.mark.parametrize("limit", [0, 201, -1, True, "10"])
def test_a_limit_outside_1_to_200_is_refused(
    model: tuple[PreparatoryMeetings, ReadModel], limit: object
) -> None:
    _, views = model
    with pytest.raises(InvalidInput):
        views.list_meetings("someone", True, limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", encode_cursor(["a"]), encode_cursor([1])])
def test_a_cursor_the_list_did_not_give_out_is_refused(
    model: tuple[PreparatoryMeetings, ReadModel], cursor: str
) -> None:
    _, views = model
    with pytest.raises(InvalidInput):
        views.list_meetings("someone", True, cursor=cursor)


def test_an_unknown_status_filter_is_refused(
    model: tuple[PreparatoryMeetings, ReadModel],
) -> None:
    _, views = model
    with pytest.raises(InvalidInput):
        views.list_proposals("2b0c1c57-3a0e-4c57-9a57-8d5f2d0e2f11", status="pending")


def test_the_document_of_an_unknown_meeting_is_not_found(
    model: tuple[PreparatoryMeetings, ReadModel],
) -> None:
    _, views = model
    with pytest.raises(NotFound):
        views.document("2b0c1c57-3a0e-4c57-9a57-8d5f2d0e2f11")
    with pytest.raises(NotFound):
        views.document("not-a-uuid")


def test_the_live_document_is_cached_by_meeting_and_position(
    model: tuple[PreparatoryMeetings, ReadModel],
) -> None:
    app, views = model
    sec = app.create_user(SYSTEM, "Sec", "UN DPO", secretariat=True).state["id"]
    mid = app.schedule_meeting(
        sec, "Prep", "CIPS", "2025-04-15", "2025-04-16", ["Pakistan"], "berlin-2025",
        [{"key": "technology", "title": "Technology"}],
    ).state["id"]  # fmt: skip
    with Projector(app, views) as projector:
        projector.catch_up()
        first = views.document(mid)
        assert views.document(mid) is first
        app.open_meeting(sec, mid)
        projector.catch_up()
        opened = views.document(mid)
        assert opened is not first
        assert (first["status"], opened["status"]) == ("scheduled", "open")
        assert opened["position"] > first["position"]
        assert views.list_proposals(mid) == ([], None)
        assert views.outcome_versions(mid) == []
        assert views.forwarded_document(mid, 1) is None
        assert views.latest_forwarded("berlin-2025") == []
