"""Events stored in an older shape load with the current code.

``Proposal.Drafted`` is at class version 2: version 1 had no ``request_hash``, and its
stored state carries no ``class_version`` (the library writes it only from version 2 on).
``upcast_v1_v2`` adds ``request_hash = None``. Given a v1 event written into the store
beside v2 events, when the proposal is loaded, then it is whole, and the application goes
on acting on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain.application import SYSTEM, PreparatoryMeetings
from domain.proposal import APPROVED, DRAFT, Proposal
from domain.store import store_env
from tests.given import TECH, Given


@pytest.fixture(params=["popo", "sqlite"])
def any_local_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PreparatoryMeetings]:
    env = (
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if request.param == "popo"
        else store_env(tmp_path, None)
    )
    app = PreparatoryMeetings(env=env)
    try:
        yield app
    finally:
        app.close()


def drafted_v1(app: PreparatoryMeetings, g: Given, proposal_id: UUID) -> StoredEvent:
    """A ``Proposal.Drafted`` event as the first version of the code stored it."""
    current = Proposal._create(
        Proposal.Drafted,
        id=proposal_id,
        actor=g.proposer,
        meeting_id=g.meeting,
        theme=TECH,
        title="Drones",
        text="Use drones for patrols.",
        rationale="They see further.",
        request_hash="not in version 1",
    )
    [event] = current.collect_events()
    stored = app.mapper.to_stored_event(event)
    state: dict[str, Any] = app.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    del state["request_hash"]
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=app.mapper.transcoder.encode(state),
    )


def test_the_stored_shape_of_a_draft_is_that_of_version_2(app: PreparatoryMeetings) -> None:
    g = Given(app).open()
    pid = g.proposal(DRAFT)
    [stored] = app.recorder.select_events(UUID(pid), lte=1)
    state = app.mapper.transcoder.decode(stored.state)
    assert stored.topic == "domain.proposal:Proposal.Drafted"
    assert (state["class_version"], state["request_hash"]) == (2, None)


def test_a_draft_stored_in_version_1_loads_with_no_request_hash_and_all_else_intact(
    any_local_app: PreparatoryMeetings,
) -> None:
    app = any_local_app
    g = Given(app).open()
    pid = uuid4()
    v1 = drafted_v1(app, g, pid)
    assert b"request_hash" not in v1.state and b"class_version" not in v1.state

    app.recorder.insert_events([v1])

    proposal: Proposal = app.repository.get(pid)
    assert proposal.request_hash is None
    assert (proposal.meeting_id, proposal.theme, proposal.proposer_id) == (
        g.meeting,
        TECH,
        g.proposer,
    )
    assert (proposal.title, proposal.text, proposal.rationale) == (
        "Drones",
        "Use drones for patrols.",
        "They see further.",
    )
    assert (proposal.status, proposal.revision, proposal.version) == (DRAFT, 1, 1)
    [event] = app.events.get(pid)
    assert isinstance(event, Proposal.Drafted)
    assert event.request_hash is None


def test_a_proposal_with_a_version_1_draft_goes_on_through_its_lifecycle(
    any_local_app: PreparatoryMeetings,
) -> None:
    app = any_local_app
    g = Given(app).open()
    pid = uuid4()
    app.recorder.insert_events([drafted_v1(app, g, pid)])

    app.revise_proposal(g.proposer, pid, text="Use drones and satellites.")
    app.submit_proposal(g.proposer, pid)
    app.approve_proposal(g.chair, pid, final_text="Use drones and satellites.")

    proposal, _ = app.get_proposal(SYSTEM, pid)
    assert (proposal.status, proposal.revision, proposal.version) == (APPROVED, 2, 4)
    assert [h["type"] for h in app.history(g.chair, pid)] == [
        "ProposalDrafted",
        "ProposalRevised",
        "ProposalSubmitted",
        "ProposalApproved",
    ]
    assert app.history(g.chair, pid)[0]["data"]["request_hash"] is None


def test_every_upcaster_of_a_versioned_event_is_declared() -> None:
    from domain.meeting import Meeting
    from domain.users import ApiToken, User

    aggregates = [Proposal, Meeting, User, ApiToken]
    for aggregate in aggregates:
        for name in dir(aggregate):
            cls = getattr(aggregate, name)
            version = getattr(cls, "class_version", 1) if isinstance(cls, type) else 1
            for v in range(1, version):
                assert callable(getattr(cls, f"upcast_v{v}_v{v + 1}", None)), (cls, v)
