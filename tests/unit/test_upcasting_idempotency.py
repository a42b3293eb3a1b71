"""The events that record an ``Idempotency-Key`` on an existing object load in their old shape.

``Proposal.Commented``, ``Proposal.Endorsed``, ``Meeting.ParticipantEnrolled``,
``Meeting.OutcomeForwarded`` and ``User.TokenIssued`` are at class version 2: version 1
had no ``idempotency``, and its stored state carries no ``class_version``. Given a store
whose events of these classes are all in the version 1 shape, every object loads as it was,
the projection decodes them, and keys go on working on those objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain.application import SYSTEM, PreparatoryMeetings
from domain.meeting import Meeting
from domain.proposal import SUBMITTED, Proposal
from domain.store import store_env
from domain.users import User
from projections.decoding import EventDecoder
from tests.given import Given

VERSIONED = (
    Proposal.Commented,
    Proposal.Endorsed,
    Meeting.ParticipantEnrolled,
    Meeting.OutcomeForwarded,
    User.TokenIssued,
)
TOPICS = {f"{cls.__module__}:{cls.__qualname__}" for cls in VERSIONED}


@pytest.fixture(params=["popo", "sqlite"])
def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[PreparatoryMeetings, PreparatoryMeetings]]:
    """Two empty applications on one kind of store: the current one, and the old one."""
    apps = []
    for name in ("current", "old"):
        env = (
            {"PERSISTENCE_MODULE": "eventsourcing.popo"}
            if request.param == "popo"
            else store_env(tmp_path / name, None)
        )
        apps.append(PreparatoryMeetings(env=env))
    try:
        yield apps[0], apps[1]
    finally:
        for app in apps:
            app.close()


def history(app: PreparatoryMeetings) -> tuple[Given, str]:
    """One event of each versioned class, some of them with a key."""
    g = Given(app).open()
    pid = g.proposal(SUBMITTED)
    app.comment_on_proposal(g.chair, pid, "Which missions first?", idempotency_key="c")
    app.endorse_proposal(g.other_rapporteur, pid, "Republic of Korea", idempotency_key="e")
    app.issue_token(g.secretariat, g.observer, idempotency_key="t")
    g.close().forward()
    return g, pid


def as_version_1(app: PreparatoryMeetings, stored: StoredEvent) -> StoredEvent:
    state: dict[str, Any] = app.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    del state["idempotency"]
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=app.mapper.transcoder.encode(state),
    )


def copied_as_version_1(current: PreparatoryMeetings, old: PreparatoryMeetings) -> int:
    """Every event of ``current`` into ``old``, the versioned ones in their first shape."""
    notes = current.recorder.select_notifications(1, 100_000)
    rewritten = 0
    events = []
    for note in notes:
        stored = StoredEvent(note.originator_id, note.originator_version, note.topic, note.state)
        if note.topic in TOPICS:
            stored = as_version_1(current, stored)
            rewritten += 1
        events.append(stored)
    old.recorder.insert_events(events)
    return rewritten


def test_the_stored_shape_is_that_of_version_2_with_a_hashed_key(
    stores: tuple[PreparatoryMeetings, PreparatoryMeetings],
) -> None:
    app, _ = stores
    history(app)
    seen = set()
    for note in app.recorder.select_notifications(1, 100_000):
        if note.topic in TOPICS:
            state = app.mapper.transcoder.decode(note.state)
            assert state["class_version"] == 2
            mark = state["idempotency"]
            assert mark is None or (set(mark) == {"key", "request"} and len(mark["key"]) == 64)
            seen.add(note.topic)
    assert seen == TOPICS


def test_every_object_loads_from_version_1_events_as_it_was(
    stores: tuple[PreparatoryMeetings, PreparatoryMeetings],
) -> None:
    current, old = stores
    history(current)
    assert copied_as_version_1(current, old) >= len(VERSIONED)
    decoder = EventDecoder(old.mapper)
    for note in old.recorder.select_notifications(1, 100_000):
        if note.topic not in TOPICS:
            continue
        assert b"idempotency" not in note.state and b"class_version" not in note.state
        event = old.mapper.to_domain_event(note)
        assert event.idempotency is None  # type: ignore[attr-defined]
        decoded, _ = decoder.decode(note)
        assert vars(decoded) == vars(event)
        was: Any = current.repository.get(note.originator_id)
        now: Any = old.repository.get(note.originator_id)
        assert now.as_dict() == was.as_dict()
        assert now.__dict__.get("idempotency_keys") is None


def test_keys_go_on_working_on_objects_with_version_1_events(
    stores: tuple[PreparatoryMeetings, PreparatoryMeetings],
) -> None:
    current, old = stores
    g, pid = history(current)
    copied_as_version_1(current, old)
    old.reopen_meeting(SYSTEM, g.meeting, "A correction arrived late")

    # the key of the copied comment is no longer recorded: it makes a new comment
    first = old.comment_on_proposal(g.chair, pid, "Which missions first?", idempotency_key="c")
    again = old.comment_on_proposal(g.chair, pid, "Which missions first?", idempotency_key="c")
    assert first.created and not again.created
    assert again.extra["comment"] == first.extra["comment"]
    assert again.position == first.position
    proposal: Proposal = old.repository.get(UUID(pid))
    assert len(proposal.comments) == 2

    old.revoke_tokens(SYSTEM, g.observer)
    old.issue_token(SYSTEM, g.observer, idempotency_key="t2")
    user: User = old.repository.get(UUID(g.observer))
    assert len(user.token_hashes) == 1
