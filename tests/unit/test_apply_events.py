"""Rebuilding an aggregate from its events gives what the library's projector gives."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate

from domain.application import PreparatoryMeetings
from domain.base import apply_events
from domain.proposal import APPROVED
from tests.given import Given


def state(aggregate: Any) -> dict[str, Any]:
    return dict(vars(aggregate))


def test_apply_events_rebuilds_proposals_and_meetings_as_project_aggregate_does(
    app: PreparatoryMeetings,
) -> None:
    given = Given(app).open()
    pid = given.proposal(APPROVED)
    app.comment_on_proposal(given.chair, pid, "Which missions first?")
    app.reconsider_proposal(given.chair, pid, reason="New information")
    for aggregate_id in (UUID(pid), UUID(given.meeting)):
        events = list(app.events.get(aggregate_id))
        assert len(events) >= 4
        rebuilt = apply_events(None, events)
        expected = project_aggregate(None, list(app.events.get(aggregate_id)))
        assert type(rebuilt) is type(expected)
        assert state(rebuilt) == state(expected)
        assert rebuilt.version == len(events)
        # the application reads with it: a fresh read sees the same state
        assert state(app.repository.get(aggregate_id, projector_func=apply_events)) == state(
            rebuilt
        )


def test_apply_events_of_no_events_is_no_aggregate() -> None:
    assert apply_events(None, []) is None
