"""The projection reads events exactly as the application's mapper would."""

from __future__ import annotations

from domain.application import SYSTEM, PreparatoryMeetings
from domain.proposal import Proposal
from projections.compile import rfc3339
from projections.decoding import EventDecoder, note_rows, read_notes


def test_decoded_events_equal_the_mappers_events_and_times(app: PreparatoryMeetings) -> None:
    sec = app.create_user(SYSTEM, "Sec", "UN DPO", secretariat=True).state["id"]
    rap = app.create_user(sec, "Rapporteur Ü", "Côte d'Ivoire").state["id"]
    mid = app.schedule_meeting(
        sec, "Prep", "CIPS", "2025-04-15", "2025-04-16", ["Pakistan"], "berlin-2025",
        [{"key": "technology", "title": "Technology"}],
    ).state["id"]  # fmt: skip
    app.enrol_participant(sec, mid, rap, "rapporteur", ["technology"])
    app.open_meeting(sec, mid)
    pid = app.draft_proposal(rap, mid, "technology", "T", 'A "_type_" text', submit=True)
    app.comment_on_proposal(rap, pid.state["id"], "note")
    decoder = EventDecoder(app.mapper)
    notes = app.recorder.select_notifications(0, 1000)
    assert decoder.fast
    assert len(notes) > 10
    for note in notes:
        event, at = decoder.decode(note)
        expected = app.mapper.to_domain_event(note)
        assert type(event) is type(expected)
        assert vars(event) == vars(expected)
        assert at == rfc3339(expected.timestamp)  # type: ignore[attr-defined]
        assert decoder.time_of(note) in (None, at)
    rows = read_notes(app.recorder, 0, 1000)
    assert rows == note_rows(notes)
    for row, note in zip(rows, notes, strict=True):
        event, at = decoder.decode_row(row, type(app.mapper.to_domain_event(note)))
        assert vars(event) == {**vars(app.mapper.to_domain_event(note)), "originator_id": row[1]}
        assert at == decoder.decode(note)[1]


def test_an_old_shape_of_an_event_is_upcast_when_decoded(app: PreparatoryMeetings) -> None:
    sec = app.create_user(SYSTEM, "Sec", "UN DPO", secretariat=True).state["id"]
    rap = app.create_user(sec, "Rap", "Ghana").state["id"]
    mid = app.schedule_meeting(
        sec, "Prep", "CIPS", "2025-04-15", "2025-04-16", ["Pakistan"], "berlin-2025",
        [{"key": "technology", "title": "Technology"}],
    ).state["id"]  # fmt: skip
    app.enrol_participant(sec, mid, rap, "rapporteur", ["technology"])
    app.open_meeting(sec, mid)
    app.draft_proposal(rap, mid, "technology", "T", "Text")
    decoder = EventDecoder(app.mapper)
    [note] = [n for n in app.recorder.select_notifications(0, 1000) if n.topic.endswith("Drafted")]
    old_state = note.state.replace(b',"class_version":2', b"").replace(b',"request_hash":null', b"")
    assert b"class_version" not in old_state
    old = type(note)(
        id=note.id,
        originator_id=note.originator_id,
        originator_version=note.originator_version,
        topic=note.topic,
        state=old_state,
    )
    event, _ = decoder.decode(old)
    assert isinstance(event, Proposal.Drafted)
    assert event.request_hash is None
    assert vars(event) == vars(app.mapper.to_domain_event(old))
