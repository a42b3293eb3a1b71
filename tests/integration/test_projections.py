"""The read model on a real SQLite file and a real PostgreSQL database.

Views built event by event equal views rebuilt from the log; documents compiled ``as_of``
equal the live documents of that time; reads never load aggregates.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import Repository
from eventsourcing.persistence import EventStore

from domain.application import SYSTEM, Forwarding, PreparatoryMeetings, new
from domain.errors import DomainError
from domain.meeting import Meeting
from domain.store import store_env
from domain.users import User
from projections.compile import forwarded_form, rfc3339
from projections.decoding import EventDecoder, note_rows
from projections.documents.canonical import digest, json_bytes
from projections.runner import (
    COLLECT_EVERY,
    REBUILD_SWITCH_INTERVAL,
    Projector,
    collector_paced,
    switching_often,
)
from projections.timetravel import AsOfOutOfRange, compile_as_of
from projections.timetravel import position_at_time as log_position_at_time
from projections.views import TABLES, ReadModel, TrackingMoved, open_read_side
from tests.given import TECH, Given

KEYS = {
    "pm_tracking": "id",
    "pm_users": "id",
    "pm_meetings": "id",
    "pm_participants": "meeting_id, user_id",
    "pm_proposals": "id",
    "pm_recommendations": "meeting_id",
    "pm_fold_proposals": "meeting_id, proposal_id",
    "pm_outcomes": "meeting_id, version",
    "pm_comments": "proposal_id, position",
    "pm_positions": "chunk",
}


@dataclass
class Side:
    """An application, its read model and its projector, on one kind of store."""

    app: PreparatoryMeetings
    model: ReadModel
    projector: Projector
    data_dir: Path
    url: str | None

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        return {t: self.model.fetch(f"SELECT * FROM {t} ORDER BY {KEYS[t]}") for t in TABLES}


@pytest.fixture(params=["sqlite", "postgres"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    data_dir = tmp_path / "data"
    app = PreparatoryMeetings(env=store_env(data_dir, url))
    model = open_read_side(data_dir, url)
    projector = Projector(app, model, batch_size=7)
    try:
        yield Side(app, model, projector, data_dir, url)
    finally:
        projector.stop()
        model.close()
        app.close()


def stub_forwarding(side: Side) -> Callable[[Meeting], Forwarding]:
    """Compile the outcome from the views, as the API does, with a stand-in signature."""

    def compile_outcome(meeting: Meeting) -> Forwarding:
        side.projector.catch_up()
        live = side.model.document(meeting.id)
        document = forwarded_form(live, len(meeting.outcome_versions) + 1)
        return Forwarding(
            document=json_bytes(document).decode(),
            sha256=document["sha256"],
            document_position=live["position"],
            signature="c3RhbmQtaW4=",
        )

    return compile_outcome


def indexed(rows: dict[str, list[tuple[Any, ...]]]) -> int:
    """How many positions the position index holds."""
    return sum(len(json.loads(row[3])) for row in rows["pm_positions"])


# --- a seeded random workload ---------------------------------------------------------


@dataclass
class World:
    app: PreparatoryMeetings
    secretariat: str
    chairs: list[str]
    rapporteurs: list[str]
    delegations: dict[str, str]
    meetings: list[str] = field(default_factory=list)
    proposals: dict[str, tuple[str, str]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    theme: dict[str, str] = field(default_factory=dict)
    themes: dict[str, list[str]] = field(default_factory=dict)
    rapporteur_themes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    meeting_status: dict[str, str] = field(default_factory=dict)


def build_world(app: PreparatoryMeetings, rng: random.Random) -> World:
    sec = app.create_user(SYSTEM, "Secretariat", "UN DPO", secretariat=True).state["id"]
    app.create_user(sec, "Berlin team", "Germany", ministerial=True)
    nations = ["Pakistan", "Republic of Korea", "Ghana", "Uruguay", "Indonesia", "Rwanda"]
    chairs = [app.create_user(sec, f"Chair {n}", n).state["id"] for n in nations[:2]]
    raps = [app.create_user(sec, f"Rapporteur {n}", n).state["id"] for n in nations]
    world = World(app, sec, chairs, raps, {r: n for r, n in zip(raps, nations, strict=True)})
    themes = [
        {"key": "technology", "title": "Technology"},
        {"key": "safety-security", "title": "Safety and security"},
        {"key": "regional-cooperation", "title": "Regional cooperation"},
    ]
    for i, starts in enumerate(["2025-04-15", "2025-03-02", "2025-04-15"]):
        mid = app.schedule_meeting(
            sec,
            f"Preparatory meeting {i + 1} — ‘séance’",
            "Islamabad",
            starts,
            starts,
            ["Pakistan"],
            "berlin-2025" if i < 2 else "other-2026",
            themes[: 3 - i % 2],
        ).state["id"]
        keys = [t["key"] for t in themes[: 3 - i % 2]]
        for chair in chairs:
            app.enrol_participant(sec, mid, chair, "chair", keys)
        for rap in raps:
            chosen = rng.sample(keys, 2)
            world.rapporteur_themes[(mid, rap)] = chosen
            app.enrol_participant(sec, mid, rap, "rapporteur", chosen)
        app.open_meeting(sec, mid)
        world.meetings.append(mid)
        world.themes[mid] = keys
    return world


ACTIONS = {
    "revise": ("draft", "revision_requested"),
    "submit": ("draft", "revision_requested"),
    "withdraw": ("draft", "submitted", "revision_requested"),
    "approve": ("submitted",),
    "reject": ("submitted",),
    "request": ("submitted",),
    "merge": ("submitted",),
    "reconsider": ("approved", "rejected", "merged"),
    "comment": ("draft", "submitted", "revision_requested", "approved", "rejected", "merged"),
    "endorse": ("draft", "submitted", "revision_requested", "approved", "rejected", "merged"),
}
WEIGHTS = {"approve": 4, "submit": 2, "endorse": 2}


def random_command(
    world: World, rng: random.Random, forward: Callable[..., Any], late: bool
) -> None:
    app = world.app
    mid = rng.choice(world.meetings)
    ours = [p for p, (m, _) in world.proposals.items() if m == mid]
    meeting_status = world.meeting_status.get(mid, "open")
    roll = rng.random()
    if roll < (0.08 if late else 0.0):
        if meeting_status == "open" and rng.random() < 0.4:
            result = app.close_meeting(world.secretariat, mid)
        elif meeting_status == "closed":
            result = app.forward_meeting(world.secretariat, mid, forward)
        elif meeting_status == "forwarded":
            result = app.reopen_meeting(world.secretariat, mid, "one more decision")
        else:
            return
        world.meeting_status[mid] = result.state["status"]
        return
    if roll < 0.12:
        theme = rng.choice(world.themes[mid])
        approved = [p for p in ours if world.status[p] == "approved" and world.theme[p] == theme]
        rng.shuffle(approved)
        app.order_theme(rng.choice(world.chairs), mid, theme, approved)
        return
    if (roll < 0.3 or not ours) and meeting_status == "open":
        rap = rng.choice(world.rapporteurs)
        result = app.draft_proposal(
            rap,
            mid,
            rng.choice(world.rapporteur_themes[(mid, rap)]),
            f"Proposal {len(world.proposals)} «{rng.randint(0, 99)}»",
            f"Text {rng.random()} with ünïcode",
            rationale=rng.choice([None, "because"]),
            submit=rng.random() < 0.6,
        )
        pid = result.state["id"]
        world.proposals[pid] = (mid, rap)
        world.status[pid] = result.state["status"]
        world.theme[pid] = result.state["theme"]
        return
    if not ours:
        return
    pid = rng.choice(ours)
    _, proposer = world.proposals[pid]
    chair = rng.choice(world.chairs)
    allowed = [a for a, froms in ACTIONS.items() if world.status[pid] in froms]
    if not allowed:
        return
    action = rng.choices(allowed, [WEIGHTS.get(a, 1) for a in allowed])[0]
    if action == "revise":
        result = app.revise_proposal(proposer, pid, text=f"Revised {rng.random()}")
    elif action == "submit":
        result = app.submit_proposal(proposer, pid)
    elif action == "approve":
        result = app.approve_proposal(chair, pid, final_text=rng.choice([None, "Final."]))
    elif action == "reject":
        result = app.reject_proposal(chair, pid, "no")
    elif action == "request":
        result = app.request_revision(chair, pid, "redo")
    elif action == "merge":
        into = [p for p in ours if world.theme[p] == world.theme[pid] and p != pid]
        if not into:
            return
        result = app.merge_proposal(chair, pid, rng.choice(into), "same")
    elif action == "reconsider":
        result = app.reconsider_proposal(chair, pid, "again")
    elif action == "comment":
        result = app.comment_on_proposal(chair, pid, "a comment")
    elif action == "endorse":
        rap = rng.choice([r for r in world.rapporteurs if r != proposer])
        result = app.endorse_proposal(rap, pid, world.delegations[rap])
    else:
        result = app.withdraw_proposal(proposer, pid, None)
    world.status[pid] = result.state["status"]


def run_workload(side: Side, commands: int, seed: int) -> World:
    rng = random.Random(seed)
    world = build_world(side.app, rng)
    forward = stub_forwarding(side)
    done = 0
    while done < commands:
        try:
            random_command(world, rng, forward, late=done > commands * 0.6)
        except DomainError:
            continue
        done += 1
        if rng.random() < 0.3:
            side.projector.catch_up()
    return world


# --- the tests ------------------------------------------------------------------------------


def test_views_built_event_by_event_equal_views_rebuilt_from_the_log(side: Side) -> None:
    world = run_workload(side, commands=300, seed=20250415)
    end = side.app.last_position()
    assert side.projector.catch_up() == end
    assert side.model.position() == end
    incremental = side.dump()

    assert side.projector.rebuild() == end
    assert side.dump() == incremental
    assert indexed(incremental) == len(side.app.recorder.select_notifications(0, end))
    assert len(incremental["pm_proposals"]) == len(world.proposals)
    assert any(row[8] != "[]" for row in incremental["pm_meetings"])

    app, model = side.app, side.model
    for pid in world.proposals:
        assert model.proposal(pid) == app.proposal_state(app.get_proposal(SYSTEM, pid)[0])
    forwarded = 0
    for mid in world.meetings:
        meeting = app.get_meeting(SYSTEM, mid)
        expected = meeting.as_dict()
        expected["outcome_versions"] = [app.version_record(v) for v in meeting.outcome_versions]
        assert model.meeting(mid) == expected
        assert model.participants(mid) == meeting.participants
        live = model.document(mid)
        assert json_bytes(compile_as_of(app, mid, live["position"])) == json_bytes(live)
        assert model.document_as_of(app, mid, end) is live
        for record in model.outcome_versions(mid):
            text, signature = model.forwarded_document(mid, record["version"]) or ("", "")
            assert digest(json.loads(text)) == record["sha256"]
            assert signature == "c3RhbmQtaW4="
            as_of = compile_as_of(app, mid, record["document_position"])
            assert forwarded_form(as_of, record["version"])["sha256"] == record["sha256"]
            forwarded += 1
    assert forwarded > 0


def test_a_download_head_agrees_with_the_views_it_stands_for(side: Side) -> None:
    world = run_workload(side, commands=120, seed=20250417)
    side.projector.catch_up()
    model = side.model
    users = {str(row[0]) for row in model.fetch("SELECT id FROM pm_users")}
    answers: set[bool] = set()
    for mid in world.meetings:
        meeting, cast = model.meeting(mid), model.participants(mid)
        assert meeting is not None
        for uid in sorted(users):
            head = model.download_head(mid, uid)
            assert head == (meeting["title"], uid in cast, model.document(mid)["position"])
            answers.add(head[1])
    assert answers == {True, False}
    assert model.download_head("9a1f3b52-5d0e-4c41-9f7a-3c2b1d0e6f01", sorted(users)[0]) is None


def test_views_are_the_same_whatever_the_working_set_keeps(tmp_path: Path) -> None:
    """A projector that keeps almost nothing in memory between batches (so that it drops its
    working set after nearly every batch, keeping only the meetings the batch touched)
    builds the same views as one that keeps everything, event by event and from scratch."""
    app = PreparatoryMeetings(env=store_env(tmp_path / "data", None))
    roomy = open_read_side(tmp_path / "roomy", None)
    tight = open_read_side(tmp_path / "tight", None)
    projectors = [Projector(app, model, batch_size=5) for model in (roomy, tight)]
    projectors[0].projection.cache_limit = 1_000_000
    projectors[1].projection.cache_limit = 3
    sides = [Side(app, model, projector, tmp_path, None) for model, projector in
             zip((roomy, tight), projectors, strict=True)]  # fmt: skip
    try:
        tight_projection = projectors[1].projection
        trims: list[int] = []
        trim = tight_projection._trim

        def counted(events: Any) -> None:
            trims.append(len(events))
            trim(events)

        tight_projection._trim = counted  # type: ignore[method-assign]
        run_workload(sides[0], commands=250, seed=20250416)
        end = app.last_position()
        assert projectors[1].catch_up() == end
        assert projectors[0].catch_up() == end
        assert sides[1].dump() == sides[0].dump()
        assert len(trims) > 20
        assert len(tight_projection._proposals) <= 5  # what the last batch left, if anything
        assert projectors[1].rebuild() == end
        assert sides[1].dump() == sides[0].dump()
    finally:
        for projector in projectors:
            projector.stop()
        roomy.close()
        tight.close()
        app.close()


def indexes(side: Side) -> set[str]:
    """The secondary indexes the views have now."""
    if side.url is None:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    else:
        sql = (
            "SELECT indexname FROM pg_indexes "
            "WHERE left(indexname, 3) = 'pm_' AND indexname NOT LIKE '%pkey'"
        )
    return {str(row[0]) for row in side.model.fetch(sql)}


def test_a_rebuild_that_commits_behind_its_batches_builds_the_same_views(side: Side) -> None:
    """A rebuild commits each batch in a thread while the next is applied; in small batches,
    and with a working set that is dropped after nearly every batch (so that batches read
    the views the batch before has just committed), it builds what catching up does."""
    run_workload(side, commands=200, seed=20250418)
    end = side.app.last_position()
    assert side.projector.catch_up() == end
    incremental = side.dump()
    rebuilding = Projector(side.app, side.model, rebuild_batch_size=7)
    rebuilding.projection.cache_limit = 3
    commits: list[int] = []
    commit = side.model.commit_batch
    built = indexes(side)
    assert built == {name for name, _ in side.model.secondary_indexes()}
    during: list[set[str]] = []
    paces: list[int] = []
    switches: list[float] = []
    before = gc.get_threshold()
    switch_before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default, whatever an earlier test left

    def counted(expected: int, position: int, statements: Any) -> None:
        commits.append(position)
        during.append(indexes(side))
        paces.append(gc.get_threshold()[0])
        switches.append(sys.getswitchinterval())
        commit(expected, position, statements)

    side.model.commit_batch = counted  # type: ignore[method-assign]
    try:
        assert rebuilding.rebuild() == end
        after = sys.getswitchinterval()
    finally:
        rebuilding.stop()
        sys.setswitchinterval(switch_before)
    assert side.dump() == incremental
    assert len(commits) == -(-end // 7)
    assert commits == sorted(commits)
    assert during[0] == set() and during[-1] == set()  # built once, after the batches
    assert indexes(side) == built
    assert min(paces) >= COLLECT_EVERY, "the collector ran less often throughout"
    assert gc.get_threshold() == before, "and as before once the rebuild was done"
    assert max(switches) == pytest.approx(REBUILD_SWITCH_INTERVAL, abs=2e-6), "switched often"
    assert after == pytest.approx(0.005, abs=2e-6), "and as before once it was done"


def test_a_rebuild_whose_commit_fails_stops_at_the_last_batch_committed(side: Side) -> None:
    run_workload(side, commands=80, seed=20250419)
    end = side.app.last_position()
    side.projector.catch_up()
    incremental = side.dump()
    rebuilding = Projector(side.app, side.model, rebuild_batch_size=10)
    commit = side.model.commit_batch
    calls: list[int] = []

    def failing(expected: int, position: int, statements: Any) -> None:
        calls.append(position)
        if len(calls) == 3:
            raise OSError("disk full")
        commit(expected, position, statements)

    side.model.commit_batch = failing  # type: ignore[method-assign]
    before = gc.get_threshold()
    try:
        with pytest.raises(OSError, match="disk full"):
            rebuilding.rebuild()
        assert gc.get_threshold() == before
        assert side.model.position() == calls[1] == 20
        assert len(calls) == 3  # no batch is committed after the one that failed
        assert indexes(side) == {name for name, _ in side.model.secondary_indexes()}
        side.model.commit_batch = commit  # type: ignore[method-assign]
        assert rebuilding.catch_up() == end
    finally:
        rebuilding.stop()
    assert side.dump() == incremental


def test_lists_page_through_everything_in_order(side: Side) -> None:
    world = run_workload(side, commands=120, seed=7)
    side.projector.catch_up()
    model = side.model
    for mid in world.meetings:
        expected = [p for p, (m, _) in world.proposals.items() if m == mid]
        seen: list[str] = []
        cursor = None
        while True:
            items, cursor = model.list_proposals(mid, limit=4, cursor=cursor)
            seen.extend(item["id"] for item in items)
            if cursor is None:
                break
        assert seen == expected
        approved, _ = model.list_proposals(mid, status="approved", limit=200)
        assert all(item["status"] == "approved" for item in approved)
        rap = world.rapporteurs[0]
        mine, _ = model.list_proposals(mid, proposer=rap, theme="technology", limit=200)
        assert all(i["proposer"]["id"] == rap and i["theme"] == "technology" for i in mine)
    page, cursor = model.list_meetings(world.secretariat, True, limit=2)
    rest, last = model.list_meetings(world.secretariat, True, limit=2, cursor=cursor)
    starts = [(m["starts_on"], m["id"]) for m in page + rest]
    assert starts == sorted(starts) and len(starts) == 3 and last is None
    assert model.list_meetings(world.rapporteurs[0], False, limit=10)[0] == page + rest
    outsider = side.app.create_user(SYSTEM, "Outsider", "Nowhere").state["id"]
    side.projector.catch_up()
    assert model.list_meetings(outsider, False)[0] == []
    assert model.roles_of(outsider) == []
    roles = model.roles_of(world.chairs[0])
    assert {r["meeting_id"] for r in roles} == set(world.meetings)
    assert all(r["role"] == "chair" for r in roles)


def test_as_of_every_position_of_a_meeting_equals_its_live_document_then(side: Side) -> None:
    app, model, projector = side.app, side.model, side.projector
    sec = app.create_user(SYSTEM, "Sec", "UN DPO", secretariat=True).state["id"]
    chair = app.create_user(sec, "Chair", "Pakistan").state["id"]
    rap = app.create_user(sec, "Rap", "Republic of Korea").state["id"]
    ally = app.create_user(sec, "Ally", "Ghana").state["id"]
    themes = [{"key": "technology", "title": "T"}, {"key": "safety-security", "title": "S"}]
    mid = app.schedule_meeting(
        sec, "Islamabad", "CIPS", "2025-04-15", "2025-04-16", ["Pakistan"], "berlin-2025", themes
    ).state["id"]
    captured: dict[int, bytes] = {}
    positions: list[int] = []

    def step(result: Any) -> None:
        position = result.position
        projector.catch_up()
        assert model.wait_for(position, 1.0)
        live = model.document(mid)
        captured[live["position"]] = json_bytes(live)
        positions.append(position)
        assert json_bytes(model.document_as_of(app, mid, position)) == json_bytes(live)

    step(app.enrol_participant(sec, mid, chair, "chair", ["technology", "safety-security"]))
    step(app.enrol_participant(sec, mid, rap, "rapporteur", ["technology", "safety-security"]))
    step(app.enrol_participant(sec, mid, ally, "rapporteur", ["technology"]))
    step(app.open_meeting(sec, mid))
    ids = []
    for theme, title in [("technology", "A"), ("technology", "B"), ("safety-security", "C")]:
        result = app.draft_proposal(rap, mid, theme, title, f"{title} text", submit=True)
        ids.append(result.state["id"])
        step(result)
    a, b, c = ids
    step(app.endorse_proposal(ally, a, "Ghana"))
    step(app.comment_on_proposal(chair, a, "ok"))
    step(app.approve_proposal(chair, a))
    step(app.approve_proposal(chair, b, final_text="B as agreed"))
    step(app.order_theme(chair, mid, "technology", [b, a]))
    step(app.approve_proposal(chair, c))
    step(app.reconsider_proposal(chair, a, "wording"))
    step(app.approve_proposal(chair, a))
    first = app.draft_proposal(rap, mid, "technology", "Dup 1", "Same", submit=True)
    step(first)
    second = app.draft_proposal(rap, mid, "technology", "Dup 2", "Same", submit=True)
    step(second)
    step(app.approve_proposal(chair, first.state["id"]))
    step(app.close_meeting(sec, mid))
    step(app.forward_meeting(sec, mid, stub_forwarding(side)))
    step(app.reopen_meeting(sec, mid, "late change"))
    step(app.merge_proposal(chair, second.state["id"], first.state["id"], "dup"))
    step(app.forward_meeting(sec, mid, stub_forwarding(side)))

    for position, expected in captured.items():
        assert json_bytes(compile_as_of(app, mid, position)) == expected
    assert len(captured) >= len(positions) - 1
    with pytest.raises(AsOfOutOfRange):
        model.document_as_of(app, mid, app.last_position() + 1)
    versions = model.outcome_versions(mid)
    assert [v["version"] for v in versions] == [1, 2]
    assert model.latest_forwarded("berlin-2025")[0][1]["outcome_version"] == 2
    assert model.latest_forwarded("berlin-2025")[0][1]["signature"] == "c3RhbmQtaW4="
    time_of_first = json.loads(captured[min(captured)])["position_at"]
    assert model.position_at_time(time_of_first) == min(captured)


def test_lists_and_documents_are_read_without_loading_any_aggregate(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = run_workload(side, commands=80, seed=3)
    side.projector.catch_up()
    model = side.model

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a read loaded an aggregate")

    monkeypatch.setattr(Repository, "get", refuse)
    monkeypatch.setattr(side.app.repository, "get", refuse)
    monkeypatch.setattr(EventStore, "get", refuse)
    for mid in world.meetings:
        assert model.list_proposals(mid, limit=200)[0]
        assert model.document(mid)["meeting"]["id"] == mid
        model.outcome_versions(mid)
        model.forwarded_document(mid, 1)
    assert len(model.list_meetings(world.secretariat, True)[0]) == 3
    assert model.roles_of(world.rapporteurs[0])
    model.latest_forwarded("berlin-2025")
    with pytest.raises(AssertionError):
        side.app.get_meeting(SYSTEM, world.meetings[0])


def test_a_reader_waits_for_a_position_and_is_woken_by_the_projector(side: Side) -> None:
    side.projector.poll_interval = 30.0
    side.projector.start()
    app, model = side.app, side.model
    for i in range(20):
        result = app.create_user(SYSTEM, f"User {i}", "Somewhere")
        side.projector.poke()
        assert model.wait_for(result.position, 5.0)
        assert model.user(result.state["id"]) is not None
    assert not model.wait_for(app.last_position() + 10, 0.05)
    status = side.projector.status()
    assert status == {
        "position": app.last_position(),
        "store_position": app.last_position(),
        "lag": 0,
    }


def test_a_second_writer_that_bypasses_the_lock_cannot_apply_a_batch_twice(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_workload(side, commands=60, seed=11)
    app = side.app
    side.model.reset()
    other_model = open_read_side(side.data_dir, side.url)
    for model in (side.model, other_model):
        monkeypatch.setattr(model, "acquire_writer", lambda wait, stop=None: True)
    first = Projector(app, side.model, batch_size=5)
    second = Projector(app, other_model, batch_size=5)
    notes = note_rows(app.recorder.select_notifications(0, 10))
    assert first.projection.process(notes, 0) == notes[-1][0]
    with pytest.raises(TrackingMoved):
        second.projection.process(notes, 0)
    assert side.model.position() == notes[-1][0]
    assert indexed(side.dump()) == len(notes)

    errors: list[BaseException] = []

    def run(projector: Projector) -> None:
        try:
            for _ in range(50):
                projector.catch_up()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    end = app.last_position()
    assert side.model.position() == end
    both = side.dump()
    first.rebuild()
    assert side.dump() == both
    other_model.close()
    assert indexed(both) == len(app.recorder.select_notifications(0, end))


def test_the_position_index_answers_as_the_log_does_across_its_chunks(side: Side) -> None:
    app, model, projector = side.app, side.model, side.projector
    rng = random.Random(5)
    for i in range(30):
        users = [
            new(
                User,
                User.Registered,
                None,
                actor=SYSTEM,
                name=f"Person {i}.{j}",
                delegation="Somewhere",
                secretariat=False,
                ministerial=False,
                request_hash=None,
            )
            for j in range(rng.randint(30, 120))
        ]
        app.save(*users)
        projector.batch_size = rng.randint(1, 700)
        projector.catch_up()
    end = app.last_position()
    assert end > 2 * 1024
    incremental = side.dump()
    projector.rebuild()
    assert side.dump() == incremental
    decoder = EventDecoder(app.mapper)
    times = [(n.id, decoder.decode(n)[1]) for n in app.recorder.select_notifications(0, end)]

    def expected(at: str) -> int:
        answer = 0
        for position, moment in times:
            if moment > at:
                break
            answer = position
        return answer

    by_position = dict(times)
    for position in [1, 1023, 1024, 1025, 2047, 2048, end, *rng.sample(range(1, end), 40)]:
        at = by_position[position]
        assert model.time_of(position) == at
        assert model.position_at_time(at) == expected(at)
        earlier = datetime.fromisoformat(at) - timedelta(microseconds=1)
        assert model.position_at_time(earlier.isoformat()) == expected(rfc3339(earlier))
    middle = by_position[end // 2]
    assert model.position_at_time(middle) == log_position_at_time(app, middle)
    assert model.position_at_time("1999-01-01T00:00:00Z") == 0
    assert model.position_at_time("2999-01-01T00:00:00Z") == end


def test_views_of_another_schema_version_are_projected_anew(side: Side) -> None:
    run_workload(side, commands=40, seed=13)
    side.projector.catch_up()
    before = side.dump()
    with side.model._writing(None) as cur:
        cur.execute("UPDATE pm_tracking SET schema_version = 1 WHERE id = 1")
    side.model.close()
    reopened = open_read_side(side.data_dir, side.url)
    side.model = reopened
    assert reopened.position() == 0
    assert reopened.fetch("SELECT COUNT(*) FROM pm_proposals") == [(0,)]
    projector = Projector(side.app, reopened)
    try:
        assert projector.catch_up() == side.app.last_position()
        assert side.dump() == before
    finally:
        projector.stop()
        reopened.close()


def test_a_projector_thread_sees_the_writes_of_another_process(side: Side) -> None:
    side.projector.poll_interval = 30.0 if side.url else 0.05
    side.model.waker = None
    side.projector.start()
    other = PreparatoryMeetings(env=store_env(side.data_dir, side.url))
    try:
        for i in range(5):
            result = other.create_user(SYSTEM, f"Elsewhere {i}", "Somewhere")
            assert side.model.wait_for(result.position, 5.0)
    finally:
        other.close()


def test_stopping_does_not_wait_for_a_read_the_store_never_answers(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    import projections.runner as runner

    entered, answer = threading.Event(), threading.Event()
    real = runner.read_notes

    def unanswered(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        answer.wait(30.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "read_notes", unanswered)
    side.projector.poll_interval = 30.0
    side.projector.start()
    assert entered.wait(10.0)
    thread = side.projector._thread
    assert thread is not None
    stopper = threading.Thread(target=side.projector.stop, kwargs={"timeout": 0.1})
    stopper.start()
    stopper.join(10.0)
    try:
        assert not stopper.is_alive()  # it returned while the read still waited
        assert thread.is_alive() and side.projector.stopping.is_set()
    finally:
        answer.set()
    thread.join(10.0)
    assert not thread.is_alive()  # the read answered: the thread saw the stop and ended


def test_the_views_lock_of_a_session_the_server_ended_is_given_up_quietly(
    postgres_url: str, tmp_path: Path
) -> None:
    import psycopg

    model = open_read_side(tmp_path / "data", postgres_url)
    try:
        assert model.acquire_writer(wait=False)
        writer = model._writer  # type: ignore[attr-defined]
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (writer.info.backend_pid,))
        model.release_writer()  # the session, and its lock, are gone: no error
        assert writer.closed
        assert model.acquire_writer(wait=False)  # on a new session
        other = open_read_side(tmp_path / "data", postgres_url)
        try:
            assert not other.acquire_writer(wait=False)
        finally:
            other.close()
    finally:
        model.close()


class HeldElsewhere:
    """Another thread inside ``hold()`` until :meth:`leave`."""

    def __init__(self, hold: Callable[[], AbstractContextManager[None]]) -> None:
        entered, self._release = threading.Event(), threading.Event()

        def other() -> None:
            with hold():
                entered.set()
                self._release.wait(10)

        self._thread = threading.Thread(target=other)
        self._thread.start()
        assert entered.wait(10)

    def leave(self) -> None:
        self._release.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


def test_the_switch_interval_is_lowered_never_raised_and_restored_by_the_last_user() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.0002)  # already below the rebuild's: kept
        with switching_often():
            assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
        sys.setswitchinterval(0.005)
        with switching_often():
            assert sys.getswitchinterval() == pytest.approx(REBUILD_SWITCH_INTERVAL, abs=2e-6)
            other = HeldElsewhere(switching_often)
        in_use = sys.getswitchinterval()
        other.leave()
        assert in_use == pytest.approx(REBUILD_SWITCH_INTERVAL, abs=2e-6), "the other still runs"
        assert sys.getswitchinterval() == pytest.approx(0.005, abs=2e-6)
    finally:
        sys.setswitchinterval(before)


def test_the_collector_pace_is_restored_by_the_last_of_overlapping_rebuilds() -> None:
    before = gc.get_threshold()
    with collector_paced():
        assert gc.get_threshold()[0] == max(COLLECT_EVERY, before[0])
        assert gc.get_threshold()[1:] == before[1:]
        other = HeldElsewhere(collector_paced)
    assert gc.get_threshold()[0] >= COLLECT_EVERY, "the other one still runs"
    other.leave()
    assert gc.get_threshold() == before


def test_emptying_the_views_on_sqlite_does_not_write_the_freed_pages_again(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    app = PreparatoryMeetings(env=store_env(data_dir, None))
    model = open_read_side(data_dir, None)
    projector = Projector(app, model)
    try:
        g = Given(app).open()
        for i in range(150):
            app.draft_proposal(g.proposer, g.meeting, TECH, f"Proposal {i}", "word " * 800)
        projector.catch_up()
        views = data_dir / "views.sqlite"
        model._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
        wal = views.with_name(views.name + "-wal")
        assert wal.stat().st_size == 0
        pages = views.stat().st_size // 4096
        assert pages > 100
        model.reset(indexes=False)
        assert model.fetch("SELECT count(*) FROM pm_proposals") == [(0,)]
        written = wal.stat().st_size // 4096
        assert written < pages // 5, f"{written} pages written to empty {pages}"
    finally:
        projector.stop()
        model.close()
        app.close()
