"""A draft reads its meeting once, and a decision its meeting once and its proposal twice
(the check, then under the meeting's lock); a forwarding of the meeting by this process
between the read and the commit is still seen, and refuses the command."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.application import PreparatoryMeetings
from domain.errors import Forbidden, InvalidTransition
from domain.proposal import APPROVED, SUBMITTED, Proposal
from tests.given import TECH, Given, aggregate_reads, recorded_since


def test_a_draft_reads_its_meeting_once(
    app: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Given(app).open()
    reads = aggregate_reads(app, monkeypatch, given.meeting)
    app.draft_proposal(given.proposer, given.meeting, TECH, "Drones", "Use drones.", submit=True)
    assert len(reads) == 1


def test_a_forwarding_after_the_drafts_read_refuses_the_draft(
    app: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Given(app).open()
    real = app.get_meeting
    done: list[bool] = []

    def read_then_forward(actor: str, meeting_id: Any) -> Any:
        meeting = real(actor, meeting_id)
        if not done:  # the draft's read: the meeting is open; then it is closed and forwarded
            done.append(True)
            given.close().forward()
        return meeting

    monkeypatch.setattr(app, "get_meeting", read_then_forward)
    start = app.last_position()
    with pytest.raises(InvalidTransition, match="forwarded meeting"):
        app.draft_proposal(given.proposer, given.meeting, TECH, "Late", "Too late.")
    assert done
    assert not [e for e in recorded_since(app, start) if isinstance(e, Proposal.Drafted)]


def test_a_draft_retried_after_a_conflict_reads_its_meeting_again(
    app: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Given(app).open()
    reads = aggregate_reads(app, monkeypatch, given.meeting)
    real = app._save
    conflicts: list[bool] = []

    def conflict_once(*items: Any) -> int:
        if not conflicts:
            conflicts.append(True)
            raise IntegrityError("another process took this version")
        return real(*items)

    monkeypatch.setattr(app, "_save", conflict_once)
    result = app.draft_proposal(given.proposer, given.meeting, TECH, "Sensors", "Use sensors.")
    assert conflicts and result.created
    assert len(reads) == 2


def test_an_access_checked_for_someone_else_is_checked_again(
    app: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Given(app).open()
    access = app.check_draft(given.proposer, given.meeting)
    reads = aggregate_reads(app, monkeypatch, given.meeting)
    with pytest.raises(Forbidden):
        app.draft_proposal(
            given.observer, given.meeting, TECH, "Borrowed", "Not mine.", access=access
        )
    assert len(reads) == 1  # the observer's own check, which refuses them
    app.draft_proposal(given.proposer, given.meeting, TECH, "Own", "Mine.", access=access)
    assert len(reads) == 1  # the proposer's access is used as it was handed over


def test_a_decision_handed_its_check_reads_the_meeting_once_and_the_proposal_twice(
    app: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Given(app).open()
    pid = given.proposal(SUBMITTED)
    reads = aggregate_reads(app, monkeypatch, given.meeting, pid)
    access = app.check_proposal(given.chair, pid, "approve")
    app.approve_proposal(given.chair, pid, access=access)
    assert (reads.count(given.meeting), reads.count(pid)) == (1, 2)


def test_a_forwarding_after_a_decisions_check_refuses_the_decision(
    app: PreparatoryMeetings,
) -> None:
    given = Given(app).open()
    pid = given.proposal(SUBMITTED)
    access = app.check_proposal(given.chair, pid, "approve")
    given.close().forward()
    start = app.last_position()
    with pytest.raises(InvalidTransition, match="forwarded meeting"):
        app.approve_proposal(given.chair, pid, access=access)
    assert recorded_since(app, start) == []


def test_a_check_of_another_action_or_actor_is_made_again(app: PreparatoryMeetings) -> None:
    given = Given(app).open()
    pid = given.proposal(SUBMITTED)
    chair_approves = app.check_proposal(given.chair, pid, "approve")
    with pytest.raises(Forbidden):
        app.approve_proposal(given.observer, pid, access=chair_approves)
    with pytest.raises(Forbidden):
        app.withdraw_proposal(given.chair, pid, access=chair_approves)
    assert app.approve_proposal(given.chair, pid, access=chair_approves).state["status"] == APPROVED
