"""Group commit: concurrent commands share one transaction, and a conflict fails only its own.

The commit lock is held by the test while commands queue behind it, so that the batch a
release forms is known, whatever the scheduling of the threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.application import NUMBERED_TOPICS, PreparatoryMeetings
from domain.postgres_store import Recorder as PostgresRecorder
from domain.store import store_env
from tests.given import TECH, Given


@pytest.fixture
def file_app(disk_store: dict[str, str]) -> Iterator[PreparatoryMeetings]:
    app = PreparatoryMeetings(env=disk_store)
    try:
        yield app
    finally:
        app.close()


def count_records(app: PreparatoryMeetings) -> list[int]:
    """Wrap the group commit's recorder: one entry (its event count) per transaction."""
    calls: list[int] = []
    group = app._group
    record = group._record

    def counted(processing: Any) -> Any:
        calls.append(len(processing.events))
        return record(processing)

    group._record = counted
    return calls


def queued_behind_the_lock(
    app: PreparatoryMeetings, commands: list[Callable[[], Any]]
) -> list[Any]:
    """Run the commands in threads while the commit lock is held; release it once all have
    queued their saves; return each command's result or exception, in order."""
    group = app._group
    results: list[Any] = [None] * len(commands)

    def run(i: int) -> None:
        try:
            results[i] = commands[i]()
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commands))]
    with group._commit_lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while True:
            with group._queue_lock:
                if len(group._queue) == len(commands):
                    break
            assert time.monotonic() < deadline, "the commands did not queue their saves"
            time.sleep(0.001)
    for t in threads:
        t.join(10)
    return results


def log_versions(app: PreparatoryMeetings, meeting: str) -> list[int]:
    return [int(e.originator_version) for e in app.proposal_ids(meeting)]


def test_concurrent_creations_in_one_meeting_share_one_commit(
    file_app: PreparatoryMeetings,
) -> None:
    g = Given(file_app).open()
    calls = count_records(file_app)
    results = queued_behind_the_lock(
        file_app,
        [
            lambda i=i: file_app.draft_proposal(
                g.proposer, g.meeting, TECH, f"t{i}", "x", submit=True
            )
            for i in range(8)
        ],
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert calls == [8 * 3], "eight creations (drafted, submitted, logged) in one transaction"
    positions = [r.position for r in results]
    assert len(set(positions)) == 8
    assert log_versions(file_app, g.meeting) == list(range(1, 9))
    assert sorted(file_app.get_proposal(g.proposer, r.state["id"])[0].title for r in results) == [
        f"t{i}" for i in range(8)
    ]


def test_a_conflict_in_a_batch_fails_only_the_command_that_caused_it(
    file_app: PreparatoryMeetings,
) -> None:
    # two creations with one idempotency key in one batch: the same proposal id twice
    g = Given(file_app).open()
    calls = count_records(file_app)

    def draft(title: str, key: str | None = None) -> Callable[[], Any]:
        return lambda: file_app.draft_proposal(
            g.proposer, g.meeting, TECH, title, "x", idempotency_key=key
        )

    results = queued_behind_the_lock(
        file_app, [draft("a", "key"), draft("b"), draft("a", "key"), draft("c")]
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert calls[0] == 4 * 2, "the whole batch was tried first"
    assert len(calls) > 1, "then each command on its own"
    assert results[0].state["id"] == results[2].state["id"]
    assert sorted(r.created for r in (results[0], results[2])) == [False, True]
    titles = sorted(file_app.get_proposal(g.proposer, r.state["id"])[0].title for r in results)
    assert titles == ["a", "a", "b", "c"]
    assert log_versions(file_app, g.meeting) == [1, 2, 3], "the log has no gap"


def test_creations_from_two_application_objects_on_one_store_keep_the_log_whole(
    disk_store: dict[str, str],
) -> None:
    first = PreparatoryMeetings(env=disk_store)
    second = PreparatoryMeetings(env={**disk_store, "CREATE_TABLE": "n"})
    try:
        g = Given(first).open()
        for i in range(6):
            app = first if i % 2 == 0 else second
            app.draft_proposal(g.proposer, g.meeting, TECH, f"t{i}", "x")
        assert log_versions(first, g.meeting) == list(range(1, 7))
    finally:
        second.close()
        first.close()


def test_many_commands_on_one_proposal_at_once_all_succeed(file_app: PreparatoryMeetings) -> None:
    g = Given(file_app).open()
    pid = g.proposal("submitted")
    version = g.get(pid).version
    barrier = threading.Barrier(24)

    def comment(i: int) -> Any:
        barrier.wait()
        try:
            return file_app.comment_on_proposal(g.proposer, pid, f"Comment {i}")
        except Exception as e:
            return e

    threads_results: list[Any] = [None] * 24

    def run(i: int) -> None:
        threads_results[i] = comment(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    failures = [r for r in threads_results if isinstance(r, Exception)]
    assert failures == [], "commands on one aggregate take turns instead of conflicting"
    assert g.get(pid).version == version + 24


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> dict[str, str]:
    return store_env(tmp_path / "data", postgres_url)


def count_conflicts(app: PreparatoryMeetings) -> list[BaseException]:
    """Wrap the group commit's recorder: every integrity error it raises."""
    conflicts: list[BaseException] = []
    group = app._group
    record = group._record

    def counted(processing: Any) -> Any:
        try:
            return record(processing)
        except IntegrityError as e:
            conflicts.append(e)
            raise

    group._record = counted
    return conflicts


def test_on_postgresql_two_processes_appending_to_one_log_never_conflict(
    pg_store: dict[str, str],
) -> None:
    first = PreparatoryMeetings(env=pg_store)
    second = PreparatoryMeetings(env={**pg_store, "CREATE_TABLE": "n"})
    try:
        g = Given(first).open()
        conflicts = [count_conflicts(first), count_conflicts(second)]
        transactions = {id(first): count_records(first), id(second): count_records(second)}
        made = []
        for i in range(6):
            app = first if i % 2 == 0 else second
            made.append(app.draft_proposal(g.proposer, g.meeting, TECH, f"t{i}", "x"))
        assert conflicts == [[], []], "each entry was numbered after the head it was written after"
        assert transactions[id(first)] == [2, 2, 2], "one transaction per creation"
        assert transactions[id(second)] == [2, 2, 2]
        entries = list(second.proposal_ids(g.meeting))
        assert [int(e.originator_version) for e in entries] == list(range(1, 7))
        assert [e.proposal_id for e in entries] == [r.state["id"] for r in made]
        assert first._group._heads[UUID(g.meeting)] == 5, "the head as recorded, not as guessed"
    finally:
        second.close()
        first.close()


def test_on_postgresql_concurrent_creations_from_two_processes_keep_the_log_whole(
    pg_store: dict[str, str],
) -> None:
    apps = [
        PreparatoryMeetings(env=pg_store),
        PreparatoryMeetings(env={**pg_store, "CREATE_TABLE": "n"}),
    ]
    try:
        g = Given(apps[0]).open()
        conflicts = [count_conflicts(app) for app in apps]
        barrier = threading.Barrier(8)
        ids: list[str] = []
        errors: list[BaseException] = []

        def create(app: PreparatoryMeetings, worker: int) -> None:
            barrier.wait()
            for n in range(10):
                try:
                    r = app.draft_proposal(g.proposer, g.meeting, TECH, f"{worker}.{n}", "x")
                    ids.append(r.state["id"])
                except BaseException as e:
                    errors.append(e)

        threads = [threading.Thread(target=create, args=(apps[w % 2], w)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert conflicts == [[], []]
        entries = list(apps[1].proposal_ids(g.meeting))
        assert [int(e.originator_version) for e in entries] == list(range(1, 81))
        assert sorted(e.proposal_id for e in entries) == sorted(ids)
        assert len(set(ids)) == 80
    finally:
        for app in reversed(apps):
            app.close()


def test_the_postgresql_recorder_numbers_only_the_sequence_topics(
    pg_store: dict[str, str],
) -> None:
    app = PreparatoryMeetings(env=pg_store)
    try:
        recorder = app.recorder
        assert isinstance(recorder, PostgresRecorder)
        log, other = uuid4(), uuid4()
        (topic,) = NUMBERED_TOPICS

        def event(originator: UUID, version: int, kind: str = topic) -> StoredEvent:
            return StoredEvent(originator, version, kind, b"{}")

        first = recorder.insert_numbered_events(
            [event(log, 7), event(other, 1, "x:Y"), event(log, 7)], NUMBERED_TOPICS
        )
        assert [v for _, v in first] == [1, 1, 2], "numbered from the stored head, in order"
        again = recorder.insert_numbered_events([event(log, 1)], NUMBERED_TOPICS)
        assert [v for _, v in again] == [3]
        ids = [i for i, _ in first + again]
        assert ids == sorted(ids) and ids[-1] == recorder.max_notification_id()
        with pytest.raises(IntegrityError):
            recorder.insert_numbered_events(
                [event(log, 1), event(other, 1, "x:Y")], NUMBERED_TOPICS
            )
        assert recorder.max_notification_id() == ids[-1], "a failed insert writes nothing"
        assert [e.originator_version for e in recorder.select_events(log)] == [1, 2, 3]
    finally:
        app.close()
