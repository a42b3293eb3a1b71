"""The compiled recommendations: one fold over a meeting's events, numbered and attributed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from domain.application import SYSTEM, PreparatoryMeetings
from projections.compile import RecommendationsFold, compile_document, forwarded_form
from projections.decoding import EventDecoder
from projections.documents.canonical import digest, json_bytes
from projections.timetravel import (
    AsOfOutOfRange,
    compile_as_of,
    last_position,
    position_at_time,
    replay,
)

THEMES = [
    {"key": "technology", "title": "Use of technology in peacekeeping"},
    {"key": "safety-security", "title": "Safety and security of peacekeepers"},
    {"key": "regional-cooperation", "title": "Cooperation between regional organizations"},
]


@dataclass
class Meeting:
    app: PreparatoryMeetings
    id: str
    secretariat: str
    chair: str
    rapporteur: str
    other: str

    def propose(self, theme: str = "technology", title: str = "A proposal", **kw: Any) -> str:
        text = kw.pop("text", f"The text of {title}.")
        by = kw.pop("by", self.rapporteur)
        result = self.app.draft_proposal(by, self.id, theme, title, text, submit=True, **kw)
        return str(result.state["id"])

    def approve(self, pid: str, final_text: str | None = None) -> int:
        return self.app.approve_proposal(self.chair, pid, final_text=final_text).position

    def document(self) -> dict[str, Any]:
        return compile_as_of(self.app, self.id, last_position(self.app))

    def numbers(self, theme_index: int = 0) -> list[tuple[str, str]]:
        recs = self.document()["themes"][theme_index]["recommendations"]
        return [(r["number"], r["proposal_id"]) for r in recs]


def _meeting(app: PreparatoryMeetings, title: str = "Islamabad preparatory meeting") -> Meeting:
    sec = app.create_user(SYSTEM, "Secretariat", "UN DPO", secretariat=True).state["id"]
    chair = app.create_user(sec, "Amina Chair", "Pakistan").state["id"]
    rap = app.create_user(sec, "Min-jun Rapporteur", "Republic of Korea").state["id"]
    other = app.create_user(sec, "Kwame Rapporteur", "Ghana").state["id"]
    mid = app.schedule_meeting(
        sec,
        title,
        "CIPS, NUST",
        "2025-04-15",
        "2025-04-16",
        ["Pakistan", "Republic of Korea"],
        "berlin-2025",
        THEMES,
    ).state["id"]
    keys = [t["key"] for t in THEMES]
    app.enrol_participant(sec, mid, chair, "chair", keys)
    app.enrol_participant(sec, mid, rap, "rapporteur", keys)
    app.enrol_participant(sec, mid, other, "rapporteur", keys)
    app.open_meeting(sec, mid)
    return Meeting(app, str(mid), str(sec), str(chair), str(rap), str(other))


@pytest.fixture
def meeting(app: PreparatoryMeetings) -> Meeting:
    return _meeting(app)


def test_without_an_order_recommendations_are_numbered_in_order_of_approval(
    meeting: Meeting,
) -> None:
    a, b, c = (meeting.propose(title=t) for t in "ABC")
    for pid in (c, a, b):
        meeting.approve(pid)
    assert meeting.numbers() == [("1.1", c), ("1.2", a), ("1.3", b)]


def test_the_chair_order_comes_first_then_later_approvals_in_approval_order(
    meeting: Meeting,
) -> None:
    a, b, c, d = (meeting.propose(title=t) for t in "ABCD")
    meeting.approve(a)
    meeting.approve(b)
    meeting.app.order_theme(meeting.chair, meeting.id, "technology", [b, a])
    meeting.approve(d)
    meeting.approve(c)
    assert meeting.numbers() == [("1.1", b), ("1.2", a), ("1.3", d), ("1.4", c)]


def test_a_reconsidered_proposal_drops_out_and_the_others_close_up(meeting: Meeting) -> None:
    a, b, c = (meeting.propose(title=t) for t in "ABC")
    for pid in (a, b, c):
        meeting.approve(pid)
    meeting.app.order_theme(meeting.chair, meeting.id, "technology", [c, b, a])
    meeting.app.reconsider_proposal(meeting.chair, b, "needs more work")
    assert meeting.numbers() == [("1.1", c), ("1.2", a)]


def test_a_proposal_approved_again_after_the_order_comes_after_the_ordered_ones(
    meeting: Meeting,
) -> None:
    a, b, c = (meeting.propose(title=t) for t in "ABC")
    for pid in (a, b, c):
        meeting.approve(pid)
    meeting.app.order_theme(meeting.chair, meeting.id, "technology", [b, a, c])
    meeting.app.reconsider_proposal(meeting.chair, b, "check the figures")
    meeting.approve(b)
    assert meeting.numbers() == [("1.1", a), ("1.2", c), ("1.3", b)]


def test_the_chairs_final_wording_wins_over_the_proposal_text(meeting: Meeting) -> None:
    pid = meeting.propose(title="Drones", text="Use drones.")
    meeting.approve(pid, final_text="Use unmanned aerial systems where mandated.")
    [rec] = meeting.document()["themes"][0]["recommendations"]
    assert rec["text"] == "Use unmanned aerial systems where mandated."
    assert rec["title"] == "Drones"


def test_without_final_wording_the_text_as_last_revised_is_used(meeting: Meeting) -> None:
    app = meeting.app
    pid = str(
        app.draft_proposal(meeting.rapporteur, meeting.id, "technology", "T", "First.").state["id"]
    )
    app.revise_proposal(meeting.rapporteur, pid, text="Second.")
    app.submit_proposal(meeting.rapporteur, pid)
    app.request_revision(meeting.chair, pid, "shorter")
    app.revise_proposal(meeting.rapporteur, pid, title="T2", text="Third.")
    app.submit_proposal(meeting.rapporteur, pid)
    meeting.approve(pid)
    [rec] = meeting.document()["themes"][0]["recommendations"]
    assert (rec["title"], rec["text"]) == ("T2", "Third.")


def test_merged_from_lists_the_proposals_merged_into_it_in_merge_order(meeting: Meeting) -> None:
    app = meeting.app
    target, x, y, z = (meeting.propose(title=t) for t in ("Target", "X", "Y", "Z"))
    app.merge_proposal(meeting.chair, y, target, "same idea")
    app.merge_proposal(meeting.chair, x, target, "same idea")
    app.merge_proposal(meeting.chair, z, target, "same idea")
    app.reconsider_proposal(meeting.chair, z, "not the same after all")
    meeting.approve(target)
    [rec] = meeting.document()["themes"][0]["recommendations"]
    assert rec["merged_from"] == [y, x]


def test_recommendations_carry_their_provenance(meeting: Meeting) -> None:
    app = meeting.app
    pid = meeting.propose(title="Medevac")
    app.endorse_proposal(meeting.other, pid, "Ghana")
    position = meeting.approve(pid)
    [rec] = meeting.document()["themes"][0]["recommendations"]
    state = app.proposal_state(app.get_proposal(SYSTEM, pid)[0])
    assert rec["proposal_id"] == pid
    assert rec["proposer"] == {"name": "Min-jun Rapporteur", "delegation": "Republic of Korea"}
    assert rec["endorsements"] == ["Ghana"]
    assert rec["approved_by"] == "Amina Chair"
    assert rec["approved_at"] == state["decision"]["at"]
    assert rec["approved_at"].endswith("Z")
    assert compile_as_of(app, meeting.id, position) == meeting.document()


def test_themes_keep_the_meeting_order_and_an_empty_theme_is_listed(meeting: Meeting) -> None:
    pid = meeting.propose(theme="regional-cooperation", title="AU")
    meeting.approve(pid)
    doc = meeting.document()
    assert [(t["number"], t["key"]) for t in doc["themes"]] == [
        (1, "technology"),
        (2, "safety-security"),
        (3, "regional-cooperation"),
    ]
    assert doc["themes"][0]["recommendations"] == []
    assert doc["themes"][1]["recommendations"] == []
    assert doc["themes"][2]["recommendations"][0]["number"] == "3.1"


def test_the_document_carries_the_meeting_and_a_seal_of_its_canonical_form(
    meeting: Meeting,
) -> None:
    doc = meeting.document()
    assert doc["meeting"] == {
        "id": meeting.id,
        "title": "Islamabad preparatory meeting",
        "venue": "CIPS, NUST",
        "starts_on": "2025-04-15",
        "ends_on": "2025-04-16",
        "hosts": ["Pakistan", "Republic of Korea"],
        "ministerial": "berlin-2025",
    }
    assert doc["status"] == "open"
    assert doc["outcome_version"] is None
    assert doc["sha256"] == digest(doc)
    assert doc["position_at"].endswith("Z")


def test_position_is_the_last_event_that_changed_this_meetings_document(
    meeting: Meeting,
) -> None:
    app = meeting.app
    pid = meeting.propose(title="A")
    approved_at = meeting.approve(pid)
    before = meeting.document()
    assert before["position"] == approved_at
    app.comment_on_proposal(meeting.chair, pid, "well argued")
    other = _meeting(app, "Another meeting")
    other.approve(other.propose(title="elsewhere"))
    after = meeting.document()
    assert after == before
    assert json_bytes(compile_as_of(app, meeting.id, before["position"])) == json_bytes(before)
    assert compile_as_of(app, meeting.id, before["position"] - 1)["position"] < approved_at


def test_every_position_gives_the_same_bytes_every_time(meeting: Meeting) -> None:
    app = meeting.app
    a = meeting.propose(title="A")
    meeting.approve(a)
    for position in range(1, last_position(app) + 1):
        try:
            first = compile_as_of(app, meeting.id, position)
        except AsOfOutOfRange:
            continue
        assert json_bytes(compile_as_of(app, meeting.id, position)) == json_bytes(first)
        assert first["position"] <= position


def test_as_of_past_the_end_of_the_log_or_before_the_meeting_is_refused(
    meeting: Meeting,
) -> None:
    end = last_position(meeting.app)
    with pytest.raises(AsOfOutOfRange):
        compile_as_of(meeting.app, meeting.id, end + 1)
    with pytest.raises(AsOfOutOfRange):
        compile_as_of(meeting.app, meeting.id, 1)


def test_a_time_resolves_to_the_last_position_at_or_before_it(meeting: Meeting) -> None:
    app = meeting.app
    pid = meeting.propose(title="A")
    position = meeting.approve(pid)
    at = compile_as_of(app, meeting.id, position)["position_at"]
    assert position_at_time(app, at) == position
    assert position_at_time(app, "2000-01-01T00:00:00Z") == 0
    assert position_at_time(app, "2999-01-01T00:00:00+02:00") == last_position(app)


def test_the_fold_resumes_from_its_state_as_stored_in_json(meeting: Meeting) -> None:
    app = meeting.app
    a, b = meeting.propose(title="A"), meeting.propose(title="B")
    meeting.approve(a)
    middle = last_position(app)
    meeting.approve(b)
    app.order_theme(meeting.chair, meeting.id, "technology", [b, a])
    stored = json.loads(json.dumps(replay(app, meeting.id, middle).state))
    resumed = RecommendationsFold(stored)
    decoder = EventDecoder(app.mapper)
    users = {
        uid: (app.get_user(uid).name, app.get_user(uid).delegation)
        for uid in (meeting.chair, meeting.rapporteur)
    }
    for note in app.recorder.select_notifications(middle, 100, inclusive_of_start=False):
        event, at = decoder.decode(note)
        if str(event.originator_id) in (meeting.id, a, b):
            resumed.apply(event, note.id, at, users.get)
    assert compile_document(resumed.state) == meeting.document()


def test_the_forwarded_form_is_sealed_anew_with_its_version(meeting: Meeting) -> None:
    live = meeting.document()
    forwarded = forwarded_form(live, 2)
    assert forwarded["status"] == "forwarded"
    assert forwarded["outcome_version"] == 2
    assert forwarded["position"] == live["position"]
    assert forwarded["sha256"] == digest(forwarded) != live["sha256"]
