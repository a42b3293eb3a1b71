"""Time travel at every position of the log, on a real SQLite file and a real PostgreSQL database.

A meeting is scripted through the application's commands. After every recorded event, of any
aggregate (users, meetings, proposals, the meetings' proposal logs, another meeting), the
projector is caught up to exactly that position and the live compiled document of the meeting
is captured as canonical JSON bytes. At the end the document is compiled ``as_of`` every one
of those positions, and ``as_of`` the time of every one of those events, by replaying the log
(projections/timetravel.py), and compared byte for byte with what the live views showed then.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.application import SYSTEM, Forwarding, PreparatoryMeetings
from domain.meeting import Meeting
from domain.store import store_env
from projections.compile import forwarded_form, rfc3339
from projections.decoding import EventDecoder, note_rows
from projections.documents.canonical import json_bytes
from projections.runner import Projector
from projections.timetravel import AsOfOutOfRange, compile_as_of, position_at_time
from projections.views import ReadModel, open_read_side
from tests.given import REGIONAL, SAFETY, TECH, THEMES

SIGNATURE = "c3RhbmQtaW4="


@dataclass
class Recorder:
    """Steps the projector one notification at a time and captures the live document."""

    app: PreparatoryMeetings
    model: ReadModel
    projector: Projector
    meeting: str | None = None
    captured: dict[int, bytes] = field(default_factory=dict)
    before_meeting: list[int] = field(default_factory=list)
    times: dict[int, str] = field(default_factory=dict)

    def advance(self) -> None:
        """Project every recorded event, one position at a time, capturing after each."""
        recorder = self.app.recorder
        while True:
            start = self.model.position()
            notes = recorder.select_notifications(start, 1, inclusive_of_start=False)
            if not notes:
                return
            position = self.projector.projection.process(note_rows(notes), start)
            assert position == notes[0].id == self.model.position()
            if self.meeting is None:
                self.before_meeting.append(position)
            else:
                self.captured[position] = json_bytes(self.model.document(self.meeting))

    def forwarding(self) -> Callable[[Meeting], Forwarding]:
        """Compile the outcome from the live views, as the API does, with a stand-in signature."""

        def compile_outcome(meeting: Meeting) -> Forwarding:
            self.advance()
            live = self.model.document(meeting.id)
            document = forwarded_form(live, len(meeting.outcome_versions) + 1)
            return Forwarding(
                document=json_bytes(document).decode(),
                sha256=document["sha256"],
                document_position=live["position"],
                signature=SIGNATURE,
            )

        return compile_outcome


@pytest.fixture(params=["sqlite", "postgres"])
def recorder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Recorder]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    data_dir = tmp_path / "data"
    app = PreparatoryMeetings(env=store_env(data_dir, url))
    model = open_read_side(data_dir, url)
    projector = Projector(app, model)
    assert model.acquire_writer(wait=True)
    try:
        yield Recorder(app, model, projector)
    finally:
        projector.stop()
        model.close()
        app.close()


def script(r: Recorder) -> None:
    """A meeting from scheduling to a second forwarding, with another meeting alongside."""
    app = r.app

    def do(result: Any = None) -> Any:
        r.advance()
        return result

    def user(name: str, delegation: str, **roles: bool) -> str:
        return str(do(app.create_user(SYSTEM, name, delegation, **roles)).state["id"])

    sec = user("Secretariat officer", "UN DPO", secretariat=True)
    user("Berlin team", "Germany", ministerial=True)
    chair = user("Chair of technology and safety", "Norway")
    chair_regional = user("Chair of regional cooperation", "Uruguay")
    rap = user("Rapporteur A — ‘Pakistan’", "Pakistan")
    rap2 = user("Rapporteur B", "Republic of Korea")
    ally = user("Rapporteur C", "Ghana")
    observer = user("Observer", "Indonesia")

    mid = str(
        app.schedule_meeting(
            sec,
            "Third Ministerial Preparatory Meeting — «séance»",
            "CIPS, NUST, Islamabad",
            "2025-04-15",
            "2025-04-16",
            ["Pakistan", "Republic of Korea"],
            "berlin-2025",
            THEMES,
        ).state["id"]
    )
    r.meeting = mid
    do()
    other = str(
        do(
            app.schedule_meeting(
                sec,
                "Another meeting",
                "Accra",
                "2025-05-01",
                "2025-05-02",
                ["Ghana"],
                "berlin-2025",
                THEMES[:2],
            )
        ).state["id"]
    )
    do(app.enrol_participant(sec, mid, chair, "chair", [TECH, SAFETY]))
    do(app.enrol_participant(sec, mid, chair_regional, "chair", [REGIONAL]))
    do(app.enrol_participant(sec, other, chair, "chair", [TECH, SAFETY]))
    do(app.enrol_participant(sec, mid, rap, "rapporteur", [TECH, SAFETY]))
    do(app.enrol_participant(sec, mid, rap2, "rapporteur", [TECH, REGIONAL]))
    do(app.enrol_participant(sec, other, rap, "rapporteur", [TECH]))
    late = user("A late rapporteur", "Rwanda")
    do(app.issue_token(sec, late))
    do(app.enrol_participant(sec, mid, late, "rapporteur", [SAFETY]))
    do(app.enrol_participant(sec, mid, ally, "rapporteur", [TECH]))
    do(app.enrol_participant(sec, mid, observer, "observer", []))
    do(app.open_meeting(sec, mid))
    do(app.open_meeting(sec, other))

    def draft(by: str, theme: str, title: str, submit: bool = True, meeting: str = mid) -> str:
        text = f"{title}: equip every mission with a common platform, ünïcode"
        result = app.draft_proposal(by, meeting, theme, title, text, submit=submit)
        return str(do(result).state["id"])

    a = draft(rap, TECH, "A")
    b = draft(rap, TECH, "B", submit=False)
    elsewhere = draft(rap, TECH, "Elsewhere", meeting=other)
    do(app.revise_proposal(rap, b, text="B, revised before submission"))
    do(app.submit_proposal(rap, b))
    c = draft(late, SAFETY, "C")
    d = draft(rap2, TECH, "D")
    e = draft(rap2, REGIONAL, "E")
    f = draft(ally, TECH, "F, a duplicate of A")
    g = draft(rap, TECH, "G")
    h = draft(rap, SAFETY, "H", submit=False)
    do(app.endorse_proposal(ally, a, "Ghana"))
    do(app.endorse_proposal(rap2, a, "Republic of Korea"))
    do(app.comment_on_proposal(chair, a, "Agreed in substance"))
    do(app.approve_proposal(chair, elsewhere))
    do(app.approve_proposal(chair, a))
    do(app.approve_proposal(chair, b, final_text="B as agreed in the room"))
    do(app.approve_proposal(chair, c, final_text="C as agreed"))
    do(app.reject_proposal(chair, d, "Outside the mandate of the meeting"))
    do(app.request_revision(chair_regional, e, "Say which organizations"))
    do(app.revise_proposal(rap2, e, text="E, naming the African Union"))
    do(app.submit_proposal(rap2, e))
    do(app.approve_proposal(chair_regional, e))
    do(app.merge_proposal(chair, f, a, "The same idea, better put in A"))
    do(app.withdraw_proposal(rap, h, None))
    do(app.order_theme(chair, mid, TECH, [b, a]))
    do(app.reconsider_proposal(chair, d, "New information"))
    do(app.approve_proposal(chair, d, final_text="D, narrowed"))
    do(app.reconsider_proposal(chair, a, "Wording"))
    do(app.approve_proposal(chair, a, final_text="A, final wording"))
    do(app.order_theme(chair, mid, TECH, [d, b, a]))
    do(app.comment_on_proposal(chair, g, "Pending"))
    do(app.close_meeting(sec, mid))
    do(app.forward_meeting(sec, mid, r.forwarding()))
    do(app.revoke_tokens(sec, late))
    do(app.reopen_meeting(sec, mid, "A correction arrived late"))
    do(app.approve_proposal(chair, g, final_text="G, agreed after reopening"))
    do(app.order_theme(chair, mid, TECH, [g, d, b, a]))
    do(app.close_meeting(sec, other))
    do(app.forward_meeting(sec, mid, r.forwarding()))
    user("A user registered after the outcome", "France")


def test_as_of_every_position_equals_the_live_document_captured_then(
    recorder: Recorder,
) -> None:
    r = recorder
    app, model = r.app, r.model
    script(r)
    r.advance()
    end = app.last_position()
    assert model.position() == end
    assert r.projector.catch_up() == end
    assert r.meeting is not None
    mid = r.meeting

    # Every position of the log was captured: before the meeting existed, or its document.
    assert sorted(r.before_meeting + list(r.captured)) == list(range(1, end + 1))
    assert min(r.captured) == max(r.before_meeting) + 1
    decode = EventDecoder(app.mapper).decode
    log = [(n.id, decode(n)[1]) for n in app.recorder.select_notifications(0, end + 1)]
    assert [p for p, _ in log] == list(range(1, end + 1))
    times = dict(log)

    def expected_at(at: str) -> int:
        """The last position whose event, and every event before it, is at or before ``at``."""
        answer = 0
        for position, moment in log:
            if moment > at:
                break
            answer = position
        return answer

    def document_at(position: int) -> bytes | None:
        """The document captured live at ``position`` (``None``: no meeting yet)."""
        return r.captured.get(position)

    mismatches: list[str] = []
    by_time_elsewhere = 0
    for position, live in sorted(r.captured.items()):
        replayed = json_bytes(compile_as_of(app, mid, position))
        if replayed != live:
            mismatches.append(f"position {position}:\n  live {live!r}\n  as_of {replayed!r}")
        assert model.time_of(position) == times[position]

        at = times[position]
        resolved = position_at_time(app, at)
        assert resolved == expected_at(at) >= position
        assert model.position_at_time(at) == resolved
        if resolved != position:
            by_time_elsewhere += 1
        by_time = json_bytes(compile_as_of(app, mid, resolved))
        if by_time != document_at(resolved):
            mismatches.append(f"time {at} (position {resolved}): as_of {by_time!r}")

        earlier = rfc3339(datetime.fromisoformat(at) - timedelta(microseconds=1))
        before = position_at_time(app, earlier)
        assert before == expected_at(earlier) < position
        assert model.position_at_time(earlier) == before
        if document_at(before) is None:
            with pytest.raises(AsOfOutOfRange):
                compile_as_of(app, mid, before)
        elif json_bytes(compile_as_of(app, mid, before)) != document_at(before):
            mismatches.append(f"time {earlier} (position {before}) differs")
    assert not mismatches, "\n".join(mismatches)

    for position in r.before_meeting:
        with pytest.raises(AsOfOutOfRange):
            compile_as_of(app, mid, position)
    with pytest.raises(AsOfOutOfRange):
        compile_as_of(app, mid, end + 1)

    # The comparison discriminates: the document changes along the script.
    ordered = [r.captured[p] for p in sorted(r.captured)]
    changes = sum(1 for x, y in itertools.pairwise(ordered) if x != y)
    assert changes >= 40
    assert len(set(ordered)) == changes + 1
    assert [v["version"] for v in model.outcome_versions(mid)] == [1, 2]
    print(
        f"\n[{model.kind}] as_of checked at {len(r.captured)} positions of the meeting "
        f"(of {end} in the log; {len(r.before_meeting)} before it was scheduled, "
        f"{len(r.captured) - changes - 1} leaving it unchanged), {changes + 1} distinct "
        f"documents; by time at the same {len(r.captured)} (resolving past the event "
        f"at {by_time_elsewhere})"
    )
