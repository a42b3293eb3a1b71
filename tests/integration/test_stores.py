"""Concurrency on every store: in memory, a SQLite file and PostgreSQL.

Given many threads acting at once, then no update is lost, no version is skipped or taken
twice, and a command given once with an idempotency key has its effect once.

On SQLite and PostgreSQL the threads share the store through two application objects, as
two API processes would: the application's in-process locks do not order them, only the
store does.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID

import pytest

from domain.application import SYSTEM, PreparatoryMeetings, ProposalLogged, Result
from domain.errors import IdempotencyKeyReused, VersionConflict
from domain.meeting import Meeting
from domain.proposal import SUBMITTED, Proposal
from tests.given import SAFETY, TECH, THEMES, Given, kinds, recorded_since

T = TypeVar("T")


@pytest.fixture
def apps(any_app: PreparatoryMeetings, store: dict[str, str]) -> Iterator[list[Any]]:
    """The application, and on a shared store a second application object on it."""
    if store["PERSISTENCE_MODULE"] == "eventsourcing.popo":
        yield [any_app]
        return
    other = PreparatoryMeetings(env=store)
    try:
        yield [any_app, other]
    finally:
        other.close()


def at_once(n: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``work(i)`` for i in 0..n-1 on n threads released together; results or errors."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T | BaseException:
        barrier.wait()
        try:
            return work(i)
        except Exception as e:
            return e

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def stored_versions(app: PreparatoryMeetings) -> dict[UUID, list[int]]:
    """The versions each aggregate has in the store, read back one aggregate at a time."""
    ids = {n.originator_id for n in app.recorder.select_notifications(1, 100_000)}
    return {i: [e.originator_version for e in app.events.get(i)] for i in ids}  # type: ignore[misc]


def assert_no_gap_in_any_aggregate(app: PreparatoryMeetings) -> None:
    notes = app.recorder.select_notifications(1, 100_000)
    positions = [n.id for n in notes]
    assert positions == sorted(set(positions)), "positions are unique and in order"
    per_aggregate = Counter(n.originator_id for n in notes)
    for aggregate_id, versions in stored_versions(app).items():
        assert versions == list(range(1, len(versions) + 1)), aggregate_id
        assert per_aggregate[aggregate_id] == len(versions)


def test_of_twenty_approvals_at_the_same_version_exactly_one_is_recorded(
    apps: list[PreparatoryMeetings],
) -> None:
    app = apps[0]
    g = Given(app).open()
    pid = g.proposal(SUBMITTED)
    version = g.get(pid).version
    before = app.last_position()

    outcomes = at_once(
        20,
        lambda i: apps[i % len(apps)].approve_proposal(
            g.chair, pid, final_text=f"Wording {i}", expected_version=version
        ),
    )

    approved = [o for o in outcomes if isinstance(o, Result)]
    conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert (len(approved), len(conflicts)) == (1, 19), outcomes
    assert kinds(recorded_since(app, before)) == [Proposal.Approved]
    stored = list(app.events.get(UUID(pid), gt=version))
    assert [e.originator_version for e in stored] == [version + 1]
    assert stored[0].final_text == approved[0].state["final_text"]  # type: ignore[attr-defined]
    assert_no_gap_in_any_aggregate(app)


def test_a_mixed_workload_loses_no_update_and_leaves_no_gap_in_any_aggregate(
    apps: list[PreparatoryMeetings],
) -> None:
    app = apps[0]
    g = Given(app).open()
    delegations = ["Chile", "Fiji", "Jordan", "Kenya", "Nepal", "Peru"]
    workers = []
    for delegation in delegations:
        user = g.user(f"Rapporteur of {delegation}", delegation)
        g.enrol(user, "rapporteur", [TECH, SAFETY])
        workers.append(user)
    shared = [g.proposal(SUBMITTED) for _ in range(3)] + [g.proposal(SUBMITTED, theme=SAFETY)]
    lock = threading.Lock()
    comments: Counter[str] = Counter()
    endorsed: dict[str, set[str]] = {pid: set() for pid in shared}
    own: dict[str, int] = {}

    def work(i: int) -> None:
        worker, delegation = workers[i], delegations[i]
        mine = apps[i % len(apps)]
        rng = random.Random(i)
        drafted = []
        for n in range(2):
            result = mine.draft_proposal(
                worker, g.meeting, [TECH, SAFETY][n], f"Idea {n}", f"Text {n} of {delegation}"
            )
            drafted.append(result.state["id"])
        for pid in rng.sample(shared, len(shared)):
            mine.comment_on_proposal(worker, pid, f"{delegation} agrees")
            mine.endorse_proposal(worker, pid, delegation)
            with lock:
                comments[pid] += 1
                endorsed[pid].add(delegation)
        for n, pid in enumerate(drafted):
            for r in range(n + 1):
                mine.revise_proposal(worker, pid, text=f"Revision {r} of {delegation}")
            with lock:
                own[pid] = n + 2
        for pid in rng.sample(shared, 2):
            mine.comment_on_proposal(worker, pid, f"{delegation} insists")
            with lock:
                comments[pid] += 1

    outcomes = at_once(len(workers), work)

    assert outcomes == [None] * len(workers)
    for pid in shared:
        proposal = g.get(pid)
        assert len(proposal.comments) == comments[pid]
        assert sorted(proposal.endorsements) == sorted(endorsed[pid]) == sorted(delegations)
    assert sum(comments.values()) == len(workers) * (len(shared) + 2)
    for pid, revision in own.items():
        assert g.get(pid).revision == revision
    logged = [e.proposal_id for e in app.proposal_ids(g.meeting)]
    assert sorted(logged) == sorted(shared + list(own))
    assert_no_gap_in_any_aggregate(app)


def test_ten_drafts_at_once_with_the_same_idempotency_key_create_one_proposal(
    apps: list[PreparatoryMeetings],
) -> None:
    app = apps[0]
    g = Given(app).open()
    before = app.last_position()

    outcomes = at_once(
        10,
        lambda i: apps[i % len(apps)].draft_proposal(
            g.proposer, g.meeting, TECH, "Drones", "Use drones.", idempotency_key="draft-1"
        ),
    )

    assert all(isinstance(o, Result) for o in outcomes), outcomes
    results: list[Result] = outcomes  # type: ignore[assignment]
    assert len({r.state["id"] for r in results}) == 1
    assert [r.created for r in results].count(True) == 1
    assert kinds(recorded_since(app, before)) == [Proposal.Drafted, ProposalLogged]
    assert [e.proposal_id for e in app.proposal_ids(g.meeting)] == [results[0].state["id"]]
    assert_no_gap_in_any_aggregate(app)


def test_ten_schedulings_at_once_with_the_same_idempotency_key_schedule_one_meeting(
    apps: list[PreparatoryMeetings],
) -> None:
    app = apps[0]
    before = app.last_position()

    def schedule(i: int) -> Result:
        return apps[i % len(apps)].schedule_meeting(
            SYSTEM,
            "Preparatory meeting",
            "Islamabad",
            "2025-04-15",
            "2025-04-16",
            ["Pakistan", "Republic of Korea"],
            "berlin-2025",
            THEMES,
            idempotency_key="islamabad",
        )

    outcomes = at_once(10, schedule)

    assert all(isinstance(o, Result) for o in outcomes), outcomes
    results: list[Result] = outcomes  # type: ignore[assignment]
    assert len({r.state["id"] for r in results}) == 1
    assert [r.created for r in results].count(True) == 1
    assert kinds(recorded_since(app, before)) == [Meeting.Scheduled]


def test_an_idempotency_key_reused_for_another_request_is_refused(
    any_app: PreparatoryMeetings,
) -> None:
    g = Given(any_app).open()
    first = any_app.draft_proposal(
        g.proposer, g.meeting, TECH, "Drones", "Use drones.", idempotency_key="k"
    )
    again = any_app.draft_proposal(
        g.proposer, g.meeting, TECH, "Drones", "Use drones.", idempotency_key="k"
    )
    assert (first.created, again.created, again.state["id"]) == (True, False, first.state["id"])
    before = any_app.last_position()
    with pytest.raises(IdempotencyKeyReused):
        any_app.draft_proposal(
            g.proposer, g.meeting, TECH, "Drones", "Use satellites.", idempotency_key="k"
        )
    assert any_app.last_position() == before
    # the same key is another person's own key: it creates their own proposal
    other = any_app.draft_proposal(
        g.other_rapporteur, g.meeting, TECH, "Drones", "Use drones.", idempotency_key="k"
    )
    assert other.created and other.state["id"] != first.state["id"]


def test_positions_returned_by_commands_are_those_of_their_last_event(
    any_app: PreparatoryMeetings,
) -> None:
    g = Given(any_app).open()
    pid = g.proposal(SUBMITTED)
    result = any_app.approve_proposal(g.chair, pid)
    [entry] = any_app.feed(result.position - 1, 10)
    assert (entry["type"], entry["aggregate_id"], entry["position"]) == (
        "ProposalApproved",
        pid,
        result.position,
    )
    history = any_app.history(g.chair, pid)
    assert [h["type"] for h in history] == [
        "ProposalDrafted",
        "ProposalSubmitted",
        "ProposalApproved",
    ]
    assert history[-1]["position"] == result.position
    assert [h["position"] for h in history] == sorted(h["position"] for h in history)
