"""The PostgreSQL recorder's reads, each shape of statement rendered once, answer exactly as
the library's own, which composes the statement on every call."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.application import SYSTEM, PreparatoryMeetings
from domain.postgres_store import Recorder
from domain.store import store_env
from tests.given import TECH, Given


@pytest.fixture
def pg_app(postgres_url: str, tmp_path: Path) -> Iterator[PreparatoryMeetings]:
    app = PreparatoryMeetings(env=store_env(tmp_path / "data", postgres_url))
    try:
        yield app
    finally:
        app.close()


def library(method: str, recorder: Recorder, *args: Any, **kwargs: Any) -> Any:
    """The library's implementation of ``method``, on the same recorder."""
    return getattr(PostgresApplicationRecorder, method).__wrapped__(recorder, *args, **kwargs)


def test_the_store_of_a_postgresql_url_is_this_recorder(pg_app: PreparatoryMeetings) -> None:
    assert type(pg_app.recorder) is Recorder


def with_proposals(app: PreparatoryMeetings, count: int) -> tuple[Given, Recorder]:
    """An open meeting with ``count`` proposals, and the store's recorder."""
    given = Given(app).open()
    for i in range(count):
        given.proposal(theme=TECH, text=f"Drones for mission {i}")
    assert isinstance(app.recorder, Recorder)
    return given, app.recorder


def test_every_shape_of_an_aggregate_read_answers_as_the_library(
    pg_app: PreparatoryMeetings,
) -> None:
    given, recorder = with_proposals(pg_app, 4)
    meeting = UUID(given.meeting)
    versions = len(recorder.select_events(meeting))
    assert versions > 3
    shapes = 0
    for gt, lte, desc, limit in itertools.product(
        (None, 0, 2, versions), (None, 1, 3, versions + 5), (False, True), (None, 1, 2, 50)
    ):
        kwargs = {"gt": gt, "lte": lte, "desc": desc, "limit": limit}
        ours = recorder.select_events(meeting, **kwargs)
        theirs = library("select_events", recorder, meeting, **kwargs)
        assert ours == theirs, kwargs
        shapes += 1
    assert shapes == 128
    assert recorder.select_events(UUID(int=7)) == []


def test_every_shape_of_a_notification_read_answers_as_the_library(
    pg_app: PreparatoryMeetings,
) -> None:
    _, recorder = with_proposals(pg_app, 3)
    last = recorder.max_notification_id()
    assert last is not None and last > 5
    topics = sorted({n.topic for n in recorder.select_notifications(None, 1000)})
    for start, stop, chosen, inclusive, limit in itertools.product(
        (None, 1, 4, last),
        (None, 3, last),
        ((), topics[:1], topics[1:3], ("no:such",)),
        (True, False),
        (1, 5, 1000),
    ):
        kwargs = {"stop": stop, "topics": chosen, "inclusive_of_start": inclusive}
        ours = recorder.select_notifications(start, limit, **kwargs)
        theirs = library("select_notifications", recorder, start, limit, **kwargs)
        assert ours == theirs, (start, limit, kwargs)
    assert recorder.max_notification_id() == library("max_notification_id", recorder)


def test_statements_are_rendered_once_and_commands_still_record(
    pg_app: PreparatoryMeetings,
) -> None:
    given, recorder = with_proposals(pg_app, 1)
    rendered = dict(recorder._rendered)
    assert ("lock", 0) in rendered and "notify" in rendered and "numbered" in rendered
    before = recorder.max_notification_id() or 0
    result = pg_app.create_user(SYSTEM, "Lt. Col. Ahmed", "Pakistan")
    given.proposal(theme=TECH, text="Camp protection")
    assert result.position > before
    # the same shapes again: nothing new rendered, the same bytes reused
    assert {k: v for k, v in recorder._rendered.items() if k in rendered} == rendered
    assert all(isinstance(v, bytes) for v in recorder._rendered.values())
