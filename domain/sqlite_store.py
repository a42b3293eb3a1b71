"""The SQLite store: the library's recorder, with fewer statements per read and per commit.

Python's ``sqlite3`` gives up the GIL for every statement and has to take it back after;
under load, with request threads and the event loop wanting it too, taking it back is most
of what a statement costs. The library reads inside ``BEGIN`` … ``ROLLBACK`` (three
statements for one ``SELECT``) and inserts one statement per event. This recorder reads
with the ``SELECT`` alone (a single statement is a transaction of its own, so it sees one
state of the file) and inserts the events of a commit with one statement.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    Notification,
    NotSupportedError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory

NotificationRow = tuple[int, str, int, str, bytes]
"""A notification as a plain row: position, originator id, version, topic and state."""

CANONICAL_ID = (
    "CASE WHEN length(originator_id) = 32 THEN substr(originator_id, 1, 8) || '-' || "
    "substr(originator_id, 9, 4) || '-' || substr(originator_id, 13, 4) || '-' || "
    "substr(originator_id, 17, 4) || '-' || substr(originator_id, 21) ELSE originator_id END"
)
"""The stored originator id (a UUID's 32 hex digits) as the UUID's canonical text."""


def canonical_id(stored: str) -> str:
    """The stored originator id as :data:`CANONICAL_ID` gives it: 32 characters (a UUID's
    hex digits) as the UUID's canonical text, any other id as it is."""
    if len(stored) != 32:
        return stored
    return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"


PAGE_FIELD = "\x1f"
PAGE_STATE = b"\x1e"
"""The separators of a page of notifications read as joined columns (see
:meth:`Recorder.select_notification_rows`)."""

ROWS_PER_INSERT = 500
"""Events per ``INSERT`` (four parameters each, well under SQLite's limit of 32,766)."""

ERRORS: tuple[tuple[type[sqlite3.Error], type[PersistenceError]], ...] = (
    (sqlite3.InterfaceError, InterfaceError),
    (sqlite3.DataError, DataError),
    (sqlite3.OperationalError, OperationalError),
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.InternalError, InternalError),
    (sqlite3.ProgrammingError, ProgrammingError),
    (sqlite3.NotSupportedError, NotSupportedError),
    (sqlite3.DatabaseError, DatabaseError),
)


def persistence_error(error: sqlite3.Error) -> PersistenceError:
    """The library's exception for a ``sqlite3`` one, as its own transactions raise them."""
    for raised, mapped in ERRORS:
        if isinstance(error, raised):
            return mapped(error)
    return PersistenceError(error)


WAL_INDEX_HEADER = 48
"""Bytes in one copy of the WAL-index header; the ``-shm`` file starts with two copies."""


class WalStamp:
    """A value that changes with every transaction committed to a SQLite file in WAL mode,
    by any connection of any process: the WAL-index header at the start of the file's
    ``-shm`` (https://www.sqlite.org/walformat.html#the_wal_index_header). Every commit
    rewrites it (its change counter, last frame and checksums), and nothing else does.

    Reading it is one ``pread`` and no statement, so that an answer read from the file can be
    kept for as long as the stamp taken before that read is still the stamp. ``None`` means
    unknown (the file is not in WAL mode, or the header is being rewritten): ask the file.

    The stamp keeps a connection of its own open, so that the ``-shm`` file it reads is
    neither removed nor started afresh while it is in use (SQLite does either only when
    the last connection to the file closes, or for the first one to open it).
    """

    def __init__(self, path: str | Path) -> None:
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False
        )
        self._fd: int | None = None
        try:
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                self._fd = os.open(f"{path}-shm", os.O_RDONLY)
        except (sqlite3.Error, OSError):
            self.close()

    def __call__(self) -> bytes | None:
        fd = self._fd
        if fd is None:
            return None
        try:
            raw = os.pread(fd, 2 * WAL_INDEX_HEADER, 0)
        except OSError:
            return None
        first, second = raw[:WAL_INDEX_HEADER], raw[WAL_INDEX_HEADER:]
        # SQLite writes the second copy, then the first; copies that differ are mid-write,
        # and byte 12 (isInit) is 0 until the header is built
        if len(second) < WAL_INDEX_HEADER or first != second or first[12] != 1:
            return None
        return first

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class Recorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stamp: WalStamp | None = None
        self._stamp_lock = threading.Lock()
        self._stamp_closed = False

    def change_stamp(self) -> bytes | None:
        """:class:`WalStamp` of the events file: unchanged while nothing is recorded by any
        process; ``None`` when unknown (a database in memory, or not in WAL mode)."""
        stamp = self._stamp
        if stamp is None:
            pool = self.datastore.pool
            if self._stamp_closed or pool.is_sqlite_memory_mode:
                return None
            with self._stamp_lock:
                if self._stamp_closed:
                    return None
                if self._stamp is None:
                    self._stamp = WalStamp(pool.db_name)
                stamp = self._stamp
        return stamp()

    def close_stamp(self) -> None:
        """Close the stamp's connection and file (no lock: it runs from finalizers too)."""
        self._stamp_closed = True
        stamp = self._stamp
        if stamp is not None:
            stamp.close()

    def _select(self, statement: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """The rows of one ``SELECT``, run outside any explicit transaction."""
        with self.datastore.get_connection(commit=False) as conn:
            cursor = conn.cursor().sqlite_cursor
            try:
                cursor.execute(statement, params)
                rows: list[sqlite3.Row] = cursor.fetchall()
                return rows
            except sqlite3.Error as e:
                raise persistence_error(e) from e
            finally:
                cursor.close()

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = self.select_events_statement
        params: list[Any] = [
            originator_id.hex if isinstance(originator_id, UUID) else originator_id
        ]
        if gt is not None:
            statement += "AND originator_version>? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version<=? "
            params.append(lte)
        statement += "ORDER BY originator_version " + ("DESC " if desc else "ASC ")
        if limit is not None:
            statement += "LIMIT ? "
            params.append(limit)
        convert = self.convert_originator_id
        return [
            StoredEvent(
                originator_id=convert(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in self._select(statement, params)
        ]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        conditions: list[str] = []
        params: list[Any] = []
        if start is not None:
            conditions.append("rowid>=?" if inclusive_of_start else "rowid>?")
            params.append(start)
        if stop is not None:
            conditions.append("rowid<=?")
            params.append(stop)
        if topics:
            conditions.append(f"topic IN ({','.join('?' * len(topics))})")
            params.extend(topics)
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        statement = f"SELECT rowid, * FROM {self.events_table_name} {where}ORDER BY rowid LIMIT ?"
        params.append(limit)
        convert = self.convert_originator_id
        return [
            Notification(
                id=row["rowid"],
                originator_id=convert(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in self._select(statement, params)
        ]

    def select_notification_rows(
        self, after: int, limit: int, *, one_step: bool = True
    ) -> list[NotificationRow]:
        """Up to ``limit`` notifications after position ``after``, as plain rows; the
        originator id is the UUID's canonical text.

        The page is read as one row of aggregates, each column of the page joined by a
        separator (control characters, which neither an id, a topic nor a JSON state
        holds): SQLite builds it in one step without the GIL, where a row at a time takes
        the GIL back after every row. Under load that cut the projection's lag: every
        hand-back waits for the request threads. A page whose parts do not split into as
        many rows as it has, or whose states do not add up to their stored length (a state
        holding the separator, compressed or enciphered), is read again a row at a time.
        Without ``one_step`` the page is read a row at a time: a rebuild, which reads
        while little else wants the GIL, goes a tenth faster that way (joining and splitting
        a page of 5,000 rows copies it twice). Read a row at a time, the ids are made
        canonical here rather than by SQLite, whose string functions doubled the time of
        this read while the views' writer ran beside it."""
        with self.datastore.get_connection(commit=False) as conn:
            cursor = conn.cursor().sqlite_cursor
            cursor.row_factory = None
            try:
                if one_step:
                    cursor.execute(self._page_statement, (after, limit))
                    count, ids, originators, versions, topics, states, size = cursor.fetchone()
                    if not count:
                        return []
                    if len(states) == size + count - 1:  # every byte of every state, as stored
                        rows = _split_page(count, ids, originators, versions, topics, states)
                        if rows is not None:
                            return rows
                cursor.execute(self._rows_statement, (after, limit))
                return [
                    (position, canonical_id(oid), version, topic, state)
                    for position, oid, version, topic, state in cursor.fetchall()
                ]
            except sqlite3.Error as e:
                raise persistence_error(e) from e
            finally:
                cursor.close()

    @functools.cached_property
    def _rows_statement(self) -> str:
        return (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid>? ORDER BY rowid LIMIT ?"
        )

    @functools.cached_property
    def _page_statement(self) -> str:
        return (
            "SELECT count(*), group_concat(rowid, char(31)), group_concat(oid, char(31)), "
            "group_concat(originator_version, char(31)), group_concat(topic, char(31)), "
            "CAST(group_concat(state, char(30)) AS BLOB), sum(length(state)) "
            f"FROM (SELECT rowid, {CANONICAL_ID} AS oid, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid>? ORDER BY rowid LIMIT ?)"
        )

    def max_notification_id(self) -> int:
        value: int = self._select(self.select_max_notification_id_statement)[0][0]
        return value

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """A commit that fits in one statement is that statement alone, run outside
        ``BEGIN`` … ``COMMIT``: a statement is a transaction of its own, all of it or
        nothing, and each of the two statements saved is one hand-over of the GIL fewer
        inside the group commit, which every waiting command waits for."""
        tracked = any(value is not None for value in kwargs.values())
        if tracked or not stored_events or len(stored_events) > ROWS_PER_INSERT:
            return super().insert_events(stored_events, **kwargs)
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor().sqlite_cursor
            try:
                return self._insert_events(cursor, stored_events)
            except sqlite3.Error as e:
                raise persistence_error(e) from e
            finally:
                cursor.close()

    def _insert_events(
        self,
        c: SQLiteCursor | sqlite3.Cursor,
        stored_events: Sequence[StoredEvent],
        **_: Any,
    ) -> Sequence[int] | None:
        """Insert the events with one statement per ``ROWS_PER_INSERT``; their rowids, in
        the order given.

        The rows of one ``INSERT`` take consecutive rowids in the order of its ``VALUES``,
        each one more than the largest in the table (the table has no ``AUTOINCREMENT``,
        and the commit holds the write lock), so the last rowid gives them all. Reading
        them back with ``RETURNING`` stepped once per row, and every step gave up the GIL:
        under load, taking it back after each made a commit several times longer, and
        every command of a group commit waits for it."""
        ids: list[int] = []
        for start in range(0, len(stored_events), ROWS_PER_INSERT):
            part = stored_events[start : start + ROWS_PER_INSERT]
            params: list[Any] = []
            for s in part:
                oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
                params.extend((oid, s.originator_version, s.topic, s.state))
            values = ",".join(["(?,?,?,?)"] * len(part))
            c.execute(f"INSERT INTO {self.events_table_name} VALUES {values}", params)
            last = c.lastrowid
            assert isinstance(last, int)
            ids.extend(range(last - len(part) + 1, last + 1))
        return ids


def _split_page(
    count: int, ids: str, originators: str, versions: str, topics: str, states: bytes
) -> list[NotificationRow] | None:
    """The rows of a page read as joined columns; ``None`` when a column does not split
    into ``count`` parts, or the rows are not in position order."""
    columns = (
        ids.split(PAGE_FIELD),
        originators.split(PAGE_FIELD),
        versions.split(PAGE_FIELD),
        topics.split(PAGE_FIELD),
        states.split(PAGE_STATE),
    )
    if any(len(column) != count for column in columns):
        return None
    positions = list(map(int, columns[0]))
    if positions != sorted(positions):
        return None
    return list(
        zip(positions, columns[1], map(int, columns[2]), columns[3], columns[4], strict=True)
    )


class Factory(SQLiteFactory):
    application_recorder_class = Recorder
    _recorders: list[Recorder]

    def application_recorder(self) -> ApplicationRecorder:
        recorder = super().application_recorder()
        if isinstance(recorder, Recorder):
            self.__dict__.setdefault("_recorders", []).append(recorder)
        return recorder

    def close(self) -> None:
        for recorder in self.__dict__.get("_recorders", []):
            recorder.close_stamp()
        super().close()
