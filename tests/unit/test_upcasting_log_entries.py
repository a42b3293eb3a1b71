"""A meeting's log entries stored before they named their actor load with ``actor`` None.

``ProposalLogged`` is at class version 2; version 1 had no ``actor`` and its stored state
carries no ``class_version``. Given such an entry in the store, when the meeting's log is
read and new proposals are drafted after it, then the old entry loads and the new ones
name their drafter.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import StoredEvent

from domain.application import PreparatoryMeetings, ProposalLogged
from tests.given import TECH, Given
from tests.unit.test_upcasting import any_local_app  # noqa: F401 (a fixture)


def logged_v1(app: PreparatoryMeetings, meeting: str, proposal_id: str) -> StoredEvent:
    """A first log entry of the meeting as version 1 of the code stored it."""
    log = app._proposal_log(meeting)
    event = log.trigger_event(
        next_originator_version=1, proposal_id=proposal_id, theme=TECH, actor="dropped"
    )
    stored = app.mapper.to_stored_event(event)
    state: dict[str, Any] = app.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    del state["actor"]
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=app.mapper.transcoder.encode(state),
    )


def test_a_log_entry_of_version_1_loads_without_an_actor_and_the_log_goes_on(
    any_local_app: PreparatoryMeetings,  # noqa: F811
) -> None:
    app = any_local_app
    g = Given(app).open()
    old = "8f0c6d1e-5b0a-4c56-9d0e-000000000001"
    app.recorder.insert_events([logged_v1(app, g.meeting, old)])

    drafted = app.draft_proposal(g.proposer, g.meeting, TECH, "Drones", "Use drones.")

    entries = list(app.proposal_ids(g.meeting))
    assert [type(e) for e in entries] == [ProposalLogged, ProposalLogged]
    assert (entries[0].proposal_id, entries[0].actor) == (old, None)
    assert (entries[1].proposal_id, entries[1].actor) == (
        str(drafted.state["id"]),
        g.proposer,
    )
    assert [e.originator_version for e in entries] == [1, 2]
