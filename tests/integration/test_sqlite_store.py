"""The SQLite recorder: one statement per read and per commit, the library's behaviour kept."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from domain import sqlite_store
from domain.application import PreparatoryMeetings
from domain.sqlite_store import CANONICAL_ID, ROWS_PER_INSERT, Recorder, WalStamp, canonical_id
from domain.store import store_env


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    app = PreparatoryMeetings(env=store_env(tmp_path, None))
    assert isinstance(app.recorder, Recorder)
    yield app.recorder
    app.close()


def stored(originator: UUID, version: int, topic: str = "t:Event") -> StoredEvent:
    return StoredEvent(originator, version, topic, f"{originator.hex}/{version}".encode())


def test_a_commit_larger_than_one_statement_keeps_the_order_given(recorder: Recorder) -> None:
    originators = [uuid4() for _ in range(7)]
    events = [stored(o, v) for v in range(1, 200) for o in originators]  # interleaved
    assert len(events) > 2 * ROWS_PER_INSERT
    ids = recorder.insert_events(events)
    assert ids is not None
    assert ids == list(range(1, len(events) + 1))
    notes = recorder.select_notifications(1, len(events) + 10)
    assert [(n.originator_id, n.originator_version, n.state) for n in notes] == [
        (e.originator_id, e.originator_version, e.state) for e in events
    ]
    assert recorder.max_notification_id() == len(events)


def test_a_version_taken_fails_the_whole_commit(recorder: Recorder) -> None:
    a, b = uuid4(), uuid4()
    recorder.insert_events([stored(a, 1)])
    with pytest.raises(IntegrityError):
        recorder.insert_events([stored(b, 1), stored(b, 2), stored(a, 1)])
    assert recorder.select_events(b) == []
    assert recorder.max_notification_id() == 1


def test_reads_answer_as_the_library_does(recorder: Recorder) -> None:
    a, b = uuid4(), uuid4()
    recorder.insert_events([stored(a, v, "t:A" if v % 2 else "t:B") for v in range(1, 9)])
    recorder.insert_events([stored(b, 1, "t:A")])
    library = SQLiteApplicationRecorder(recorder.datastore)
    for kwargs in ({}, {"gt": 2}, {"lte": 5}, {"gt": 2, "lte": 6, "desc": True, "limit": 2}):
        assert recorder.select_events(a, **kwargs) == library.select_events(a, **kwargs)  # type: ignore[arg-type]
    for args, kw in (
        ((1, 100), {}),
        ((3, 4), {}),
        ((2, 100), {"stop": 6, "inclusive_of_start": False}),
        ((None, 100), {"topics": ["t:A"]}),
        ((4, 100), {"topics": ["t:B"], "stop": 8}),
    ):
        assert recorder.select_notifications(*args, **kw) == library.select_notifications(
            *args, **kw
        )
    assert recorder.max_notification_id() == library.max_notification_id() == 9


def test_notification_rows_are_the_notifications_with_the_ids_as_text(recorder: Recorder) -> None:
    originators = [uuid4() for _ in range(3)]
    recorder.insert_events([stored(o, v) for v in range(1, 6) for o in originators])
    notes = recorder.select_notifications(1, 100)
    expected = [(n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in notes]
    for one_step in (True, False):
        assert recorder.select_notification_rows(0, 100, one_step=one_step) == expected
        assert recorder.select_notification_rows(4, 5, one_step=one_step) == expected[4:9]
        assert recorder.select_notification_rows(len(expected), 5, one_step=one_step) == []


def test_ids_are_made_canonical_in_python_as_in_sqlite() -> None:
    stored_ids = [uuid4().hex for _ in range(50)]
    stored_ids += ["0" * 32, "F" * 32, "not a uuid but 32 characters, ok", "not-a-uuid", ""]
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE ids (originator_id TEXT)")
        conn.executemany("INSERT INTO ids VALUES (?)", [(i,) for i in stored_ids])
        by_sqlite = [r[0] for r in conn.execute(f"SELECT {CANONICAL_ID} FROM ids ORDER BY rowid")]
    by_python = [canonical_id(i) for i in stored_ids]
    assert by_python == by_sqlite
    assert by_python[:50] == [str(UUID(i)) for i in stored_ids[:50]]


def test_notification_rows_keep_any_state_and_read_row_by_row_a_page_that_holds_a_separator(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = [b"", b'{"a":1}', b"\xff\xfe not utf-8", b"zero\x00byte", b"a\x1eb", b"\x1f", b"x"]
    originator = uuid4()
    recorder.insert_events(
        [StoredEvent(originator, v, "t:A", state) for v, state in enumerate(states, 1)]
    )
    expected = [(v, str(originator), v, "t:A", state) for v, state in enumerate(states, 1)]
    split_pages: list[bool] = []
    split = sqlite_store._split_page

    def spied(*args: Any) -> Any:
        rows = split(*args)
        split_pages.append(rows is not None)
        return rows

    monkeypatch.setattr(sqlite_store, "_split_page", spied)
    assert recorder.select_notification_rows(0, 100) == expected
    assert recorder.select_notification_rows(0, 4) == expected[:4]
    assert recorder.select_notification_rows(5, 100) == expected[5:]
    assert recorder.select_notification_rows(6, 100) == expected[6:]
    # the page with the state separator in a state is read again a row at a time; the others
    # (empty, binary and NUL-holding states, a field separator inside a state) split as read
    assert split_pages == [False, True, True, True]
    assert recorder.select_notification_rows(0, 100, one_step=False) == expected
    assert recorder.select_notification_rows(2, 3, one_step=False) == expected[2:5]
    assert len(split_pages) == 4, "a row at a time when asked"


def test_a_failed_read_raises_the_library_error(recorder: Recorder) -> None:
    with sqlite3.connect(recorder.datastore.pool.db_name) as conn:
        conn.execute(f"ALTER TABLE {recorder.events_table_name} RENAME TO gone")
    with pytest.raises(OperationalError):
        recorder.max_notification_id()
    with pytest.raises(OperationalError):
        recorder.select_events(uuid4())


def test_the_change_stamp_moves_with_every_commit_of_any_connection_or_process(
    recorder: Recorder,
) -> None:
    path = recorder.datastore.pool.db_name
    table = recorder.events_table_name
    row = f"INSERT INTO {table} VALUES (?, 1, 't:Event', x'00')"
    seen = [recorder.change_stamp()]
    assert seen[0] is not None
    recorder.insert_events([stored(uuid4(), 1)])
    seen.append(recorder.change_stamp())
    other = sqlite3.connect(path, isolation_level=None)
    try:
        for i in range(40):
            other.execute(row, (uuid4().hex,))
            if i % 10 == 0:
                other.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL starts again
            seen.append(recorder.change_stamp())
        subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys, uuid\n"
             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "c.execute(sys.argv[2], (uuid.uuid4().hex,))", path, row],
            check=True, timeout=60,
        )  # fmt: skip
        seen.append(recorder.change_stamp())
        assert None not in seen
        assert len(set(seen)) == len(seen)  # every commit, a stamp never seen before
        recorder.select_notifications(1, 100)
        recorder.max_notification_id()
        other.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert recorder.change_stamp() == seen[-1]  # reads change nothing
    finally:
        other.close()


def test_the_change_stamp_is_unknown_without_a_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    stamp = WalStamp(path)
    assert stamp() is None
    conn.execute("PRAGMA journal_mode=WAL")
    stamp.close()
    stamp = WalStamp(path)
    assert stamp() is not None
    stamp.close()
    assert stamp() is None
    conn.close()
    app = PreparatoryMeetings(env=store_env(tmp_path / "data", None))
    assert isinstance(app.recorder, Recorder)
    assert app.recorder.change_stamp() is not None
    app.close()
    assert app.recorder.change_stamp() is None  # closed with the application
    memory = PreparatoryMeetings(env={**store_env(tmp_path, None), "SQLITE_DBNAME": ":memory:"})
    try:
        assert isinstance(memory.recorder, Recorder)
        assert memory.recorder.change_stamp() is None
    finally:
        memory.close()


@pytest.mark.parametrize("count", [1, 3, ROWS_PER_INSERT, 2 * ROWS_PER_INSERT + 7])
def test_the_positions_given_are_the_rowids_the_events_got(recorder: Recorder, count: int) -> None:
    table = recorder.events_table_name
    first = recorder.insert_events([stored(uuid4(), 1) for _ in range(5)])
    assert first == [1, 2, 3, 4, 5]
    with recorder.datastore.get_connection(commit=True) as conn:
        conn.cursor().sqlite_cursor.execute(f"DELETE FROM {table} WHERE rowid = 5")
    events = [stored(o, v) for o in (uuid4(), uuid4()) for v in range(1, count + 1)]
    ids = recorder.insert_events(events)
    assert ids is not None and len(ids) == len(events)
    with recorder.datastore.get_connection(commit=False) as conn:
        cursor = conn.cursor().sqlite_cursor
        cursor.execute(f"SELECT originator_id, originator_version, rowid FROM {table}")
        rowids = {(row[0], row[1]): row[2] for row in cursor.fetchall()}
    assert ids == [rowids[(e.originator_id.hex, e.originator_version)] for e in events]
    assert ids == list(range(5, 5 + len(events)))  # the deleted last rowid is taken again
