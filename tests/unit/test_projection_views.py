"""The read model's queries refuse what they cannot answer, clearly."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.application import SYSTEM, PreparatoryMeetings
from domain.errors import InvalidInput, NotFound
from domain.store import store_env
from projections.projection import _dumps
from projections.runner import Projector
from projections.views import (
    PARAMETERS_PER_STATEMENT,
    USER_COLUMNS,
    ReadModel,
    encode_cursor,
    insert,
    open_read_side,
    upsert,
)


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


def scheduled(app: PreparatoryMeetings) -> tuple[str, str]:
    """A secretariat user and a meeting it scheduled (not open yet): their ids."""
    sec = app.create_user(SYSTEM, "Sec", "UN DPO", secretariat=True).state["id"]
    mid = app.schedule_meeting(
        sec, "Prep", "CIPS", "2025-04-15", "2025-04-16", ["Pakistan"], "berlin-2025",
        [{"key": "technology", "title": "Technology"}],
    ).state["id"]  # fmt: skip
    return sec, mid


def test_the_live_document_is_cached_by_meeting_and_position(
    model: tuple[PreparatoryMeetings, ReadModel],
) -> None:
    app, views = model
    sec, mid = scheduled(app)
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


def test_a_download_head_kept_between_reads_answers_a_change_made_elsewhere_at_once(
    model: tuple[PreparatoryMeetings, ReadModel], tmp_path: Path
) -> None:
    app, views = model
    sec, mid = scheduled(app)
    with Projector(app, views) as projector:
        projector.catch_up()
    stamp = views.change_stamp()
    assert stamp is not None
    head = views.download_head(mid, sec)
    assert head is not None and head[:2] == ("Prep", False)
    assert views.download_head(mid, sec) == head
    assert views.change_stamp() == stamp  # reads change nothing
    # as another process would: a connection of its own, outside the read model
    other = sqlite3.connect(tmp_path / "views.sqlite", isolation_level=None)
    try:
        other.execute("UPDATE pm_meetings SET title = 'Renamed' WHERE id = ?", (mid,))
        assert views.change_stamp() != stamp
        assert views.download_head(mid, sec) == ("Renamed", False, head[2])
        other.execute(
            "INSERT INTO pm_participants VALUES (?, ?, 'rapporteur', '[]', '2025-04-15')",
            (mid, sec),
        )
        assert views.download_head(mid, sec) == ("Renamed", True, head[2])
    finally:
        other.close()


def test_a_batch_of_more_rows_than_one_statement_holds_is_written_whole(
    model: tuple[PreparatoryMeetings, ReadModel],
) -> None:
    _, views = model
    width = len(USER_COLUMNS)
    count = 3 * (PARAMETERS_PER_STATEMENT // width) + 7
    rows = [(f"u{n:05}", f"Name {n}", "Ghana", n % 2 == 0, False) for n in range(count)]
    views.commit_batch(0, 1, [(insert("pm_users", USER_COLUMNS), rows)])
    again = [(f"u{n:05}", f"Renamed {n}", "Chile", True, True) for n in range(0, count, 2)]
    views.commit_batch(1, 2, [(upsert("pm_users", USER_COLUMNS, ("id",)), again)])
    stored = views.fetch(f"SELECT {', '.join(USER_COLUMNS)} FROM pm_users ORDER BY id")
    assert stored == [
        (uid, *((f"Renamed {n}", "Chile", 1, 1) if n % 2 == 0 else (name, place, 0, 0)))
        for n, (uid, name, place, _, _) in enumerate(rows)
    ]
    assert views.position() == 2


@pytest.mark.parametrize(
    "value",
    [{"a": [1, None, "ü\u2028"], "b": {"c": True}}, {1: "x"}, 2**70, "\ud800", [], "\x00\n"],
)
def test_a_view_value_is_written_as_the_standard_library_writes_it(value: object) -> None:
    assert _dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
