"""The read model: view tables and their one tracking position, on SQLite or PostgreSQL.

Reads (lists, roles, documents, forwarded outcomes) are answered from these tables and never
from aggregates. The only writer is the projection (``projections.projection``), which
commits the rows of a batch of events together with the tracking position they reflect.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import fcntl
import functools
import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from domain.application import PreparatoryMeetings
from domain.errors import InvalidInput, NotFound
from domain.proposal import STATES
from domain.sqlite_store import WalStamp
from domain.store import parse_postgres_url
from projections.compile import compile_document
from projections.timetravel import compile_as_of, parse_time

log = logging.getLogger("prepmeet.views")

VIEWS_FILE = "views.sqlite"
SCHEMA_VERSION = 6
MAX_LIMIT = 200
DOCUMENT_CACHE_SIZE = 256
HEAD_CACHE_SIZE = 4_096
"""Download heads (meeting and reader) kept while the views do not change."""
POSITION_CHUNK_BITS = 10
"""The position index keeps the times of 1,024 consecutive positions in one row."""

Row = tuple[Any, ...]
Statement = tuple[str, Sequence[Sequence[Any]]]

PARAMETERS_PER_STATEMENT = 8_000
"""Parameters of one multi-row SQLite statement (SQLite allows 32,766)."""

MEETING_COLUMNS = (
    "id",
    "title",
    "venue",
    "starts_on",
    "ends_on",
    "hosts",
    "ministerial",
    "themes",
    "status",
    "outcome_versions",
    "version",
    "participants",
    "created_position",
)
MEETING_JSON = frozenset({"hosts", "themes", "outcome_versions", "participants"})

PROPOSAL_COLUMNS = (
    "id",
    "meeting_id",
    "theme",
    "title",
    "text",
    "rationale",
    "status",
    "proposer_id",
    "proposer_name",
    "proposer_delegation",
    "endorsements",
    "revision",
    "final_text",
    "decision",
    "merged_into",
    "version",
    "created_position",
)
PROPOSAL_JSON = frozenset({"endorsements", "decision"})

USER_COLUMNS = ("id", "name", "delegation", "secretariat", "ministerial")
PARTICIPANT_COLUMNS = ("meeting_id", "user_id", "role", "themes", "starts_on")
OUTCOME_COLUMNS = (
    "meeting_id",
    "version",
    "sha256",
    "document_position",
    "forwarded_at",
    "forwarded_by",
    "position",
    "document",
    "signature",
)
COMMENT_COLUMNS = ("proposal_id", "position", "id", "author", "text", "at")
TABLES = (
    "pm_tracking",
    "pm_users",
    "pm_meetings",
    "pm_participants",
    "pm_proposals",
    "pm_recommendations",
    "pm_fold_proposals",
    "pm_outcomes",
    "pm_comments",
    "pm_positions",
)


def schema(big: str, boolean: str) -> list[str]:
    """The statements that create the views (each table carries the ``pm_`` prefix)."""
    return [
        "CREATE TABLE IF NOT EXISTS pm_tracking ("
        f"id INTEGER PRIMARY KEY, position {big} NOT NULL, schema_version INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pm_users ("
        f"id TEXT PRIMARY KEY, name TEXT NOT NULL, delegation TEXT NOT NULL, "
        f"secretariat {boolean} NOT NULL, ministerial {boolean} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pm_meetings ("
        "id TEXT PRIMARY KEY, title TEXT NOT NULL, venue TEXT NOT NULL, "
        "starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, hosts TEXT NOT NULL, "
        "ministerial TEXT NOT NULL, themes TEXT NOT NULL, status TEXT NOT NULL, "
        "outcome_versions TEXT NOT NULL, version INTEGER NOT NULL, participants TEXT NOT NULL, "
        f"created_position {big} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pm_meetings_by_start ON pm_meetings (starts_on, id)",
        "CREATE INDEX IF NOT EXISTS pm_meetings_by_ministerial "
        "ON pm_meetings (ministerial, starts_on, id)",
        "CREATE TABLE IF NOT EXISTS pm_participants ("
        "meeting_id TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL, "
        "themes TEXT NOT NULL, starts_on TEXT NOT NULL, PRIMARY KEY (meeting_id, user_id))",
        "CREATE INDEX IF NOT EXISTS pm_participants_by_user "
        "ON pm_participants (user_id, starts_on, meeting_id)",
        "CREATE TABLE IF NOT EXISTS pm_proposals ("
        "id TEXT PRIMARY KEY, meeting_id TEXT NOT NULL, theme TEXT NOT NULL, "
        "title TEXT NOT NULL, text TEXT NOT NULL, rationale TEXT, status TEXT NOT NULL, "
        "proposer_id TEXT NOT NULL, proposer_name TEXT, proposer_delegation TEXT, "
        "endorsements TEXT NOT NULL, revision INTEGER NOT NULL, final_text TEXT, "
        "decision TEXT, merged_into TEXT, version INTEGER NOT NULL, "
        f"created_position {big} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pm_proposals_by_meeting "
        "ON pm_proposals (meeting_id, created_position)",
        "CREATE INDEX IF NOT EXISTS pm_proposals_by_theme "
        "ON pm_proposals (meeting_id, theme, created_position)",
        "CREATE INDEX IF NOT EXISTS pm_proposals_by_status "
        "ON pm_proposals (meeting_id, status, created_position)",
        "CREATE INDEX IF NOT EXISTS pm_proposals_by_proposer "
        "ON pm_proposals (proposer_id, meeting_id, created_position)",
        "CREATE TABLE IF NOT EXISTS pm_recommendations ("
        f"meeting_id TEXT PRIMARY KEY, position {big} NOT NULL, state TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pm_fold_proposals ("
        "meeting_id TEXT NOT NULL, proposal_id TEXT NOT NULL, state TEXT NOT NULL, "
        "PRIMARY KEY (meeting_id, proposal_id))",
        "CREATE TABLE IF NOT EXISTS pm_outcomes ("
        "meeting_id TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, "
        f"document_position {big} NOT NULL, forwarded_at TEXT NOT NULL, "
        f"forwarded_by TEXT NOT NULL, position {big} NOT NULL, document TEXT NOT NULL, "
        "signature TEXT NOT NULL, PRIMARY KEY (meeting_id, version))",
        "CREATE TABLE IF NOT EXISTS pm_comments ("
        f"proposal_id TEXT NOT NULL, position {big} NOT NULL, id TEXT NOT NULL, "
        "author TEXT NOT NULL, text TEXT NOT NULL, at TEXT NOT NULL, "
        "PRIMARY KEY (proposal_id, position))",
        "CREATE TABLE IF NOT EXISTS pm_positions ("
        f"chunk {big} PRIMARY KEY, last {big} NOT NULL, at_max TEXT NOT NULL, "
        "positions TEXT NOT NULL, times TEXT NOT NULL, digests TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pm_positions_by_time ON pm_positions (at_max, chunk)",
    ]


def upsert(
    table: str, columns: Sequence[str], key: Sequence[str], fixed: Sequence[str] = ()
) -> str:
    """Insert or update a row; ``fixed`` columns never change once written (so an update
    leaves their indexes alone)."""
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in key and c not in fixed)
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def insert(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


class TrackingMoved(Exception):
    """Another writer moved the views' tracking position: this batch was not applied."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"the views are at position {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
    return limit


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, shape: Sequence[type]) -> list[Any] | None:
    """The sort key inside an opaque cursor, checked against the expected shape."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not a cursor this list gave out", "cursor") from None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True)
        )
    ):
        raise InvalidInput("cursor is not a cursor this list gave out", "cursor")
    return key


def meeting_item(row: Row) -> dict[str, Any]:
    """A ``pm_meetings`` row (MEETING_COLUMNS order) as the meeting resource of the API."""
    return {
        "id": row[0],
        "title": row[1],
        "venue": row[2],
        "starts_on": row[3],
        "ends_on": row[4],
        "hosts": json.loads(row[5]),
        "ministerial": row[6],
        "themes": json.loads(row[7]),
        "status": row[8],
        "outcome_versions": json.loads(row[9]),
        "version": row[10],
    }


def proposal_item(row: Row) -> dict[str, Any]:
    """A ``pm_proposals`` row (PROPOSAL_COLUMNS order) as the proposal resource of the API."""
    return {
        "id": row[0],
        "meeting_id": row[1],
        "theme": row[2],
        "title": row[3],
        "text": row[4],
        "rationale": row[5],
        "status": row[6],
        "endorsements": json.loads(row[10]),
        "revision": row[11],
        "final_text": row[12],
        "decision": json.loads(row[13]) if row[13] is not None else None,
        "merged_into": row[14],
        "version": row[15],
        "proposer": {"id": row[7], "name": row[8], "delegation": row[9]},
    }


class _Cache:
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _meeting_key(meeting_id: UUID | str) -> str:
    try:
        return str(meeting_id if isinstance(meeting_id, UUID) else UUID(str(meeting_id)))
    except ValueError:
        raise NotFound("meeting", meeting_id) from None


class ReadModel(ABC):
    """The views and their queries; one implementation per kind of store."""

    kind = ""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._known = 0
        self._documents = _Cache(DOCUMENT_CACHE_SIZE)
        self._as_of = _Cache(DOCUMENT_CACHE_SIZE)
        self._heads = _Cache(HEAD_CACHE_SIZE)
        self.waker: Callable[[], None] | None = None
        """Called when a reader waits for a position: an in-process projector's ``poke``."""

    # --- connections: one per backend ------------------------------------------------

    @abstractmethod
    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A DB-API cursor for reads; each statement sees a committed state."""

    @abstractmethod
    @contextmanager
    def _writing(self, expected: int | None) -> Iterator[Any]:
        """A write transaction holding the view's write lock.

        With ``expected`` set, the tracking position is checked first and
        :class:`TrackingMoved` raised when another writer moved it.
        """

    @abstractmethod
    def _sql(self, statement: str) -> str:
        """The statement in this backend's parameter style."""

    @abstractmethod
    def _schema(self) -> list[str]: ...

    def acquire_writer(self, wait: bool, stop: threading.Event | None = None) -> bool:
        """Become the one writer across processes (a no-op where a transaction suffices)."""
        return True

    def release_writer(self) -> None:
        return None

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Batches committed inside skip waiting for the disk (a rebuild's batches: a crash
        loses the last of them, never their consistency); the last commit is made durable.
        Indexes dropped by ``reset(indexes=False)`` are built again at the end."""
        with self._indexes_after():
            yield

    def secondary_indexes(self) -> list[tuple[str, str]]:
        """The views' indexes besides their keys: each one's name and the statement that
        creates it."""
        prefix = "CREATE INDEX IF NOT EXISTS "
        return [
            (st[len(prefix) :].split()[0], st) for st in self._schema() if st.startswith(prefix)
        ]

    @contextmanager
    def _indexes_after(self) -> Iterator[None]:
        """Build the secondary indexes that are missing when the block ends, failed or not."""
        try:
            yield
        except BaseException:
            with suppress(Exception):
                self.create_indexes()
            raise
        self.create_indexes()

    def create_indexes(self) -> None:
        """Build the secondary indexes that are missing."""
        with self._writing(None) as cur:
            for _, statement in self.secondary_indexes():
                cur.execute(statement)

    def listen(self, channel: str, wake: Callable[[], None], stop: threading.Event) -> None:
        """Call ``wake`` on each notification of the store's ``channel`` until ``stop``
        (PostgreSQL's LISTEN); elsewhere there is nothing to listen to."""
        return None

    def change_stamp(self) -> bytes | None:
        """A value that changes whenever the views do, whichever process writes them (see
        :class:`domain.sqlite_store.WalStamp`); ``None`` where that is unknown."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    # --- schema and writes (the projection's side) -----------------------------------

    def create(self) -> None:
        """Create the views where they do not exist yet; views of another schema version are
        dropped and created anew, empty (the projector then projects the log again)."""
        with self._writing(None) as cur:
            if self._has_tracking(cur) and self._schema_version(cur) != SCHEMA_VERSION:
                for table in TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in self._schema():
                cur.execute(statement)
            cur.execute(self._sql("SELECT position FROM pm_tracking WHERE id = 1"))
            if cur.fetchone() is None:
                cur.execute(
                    self._sql(
                        "INSERT INTO pm_tracking (id, position, schema_version) VALUES (1, 0, ?)"
                    ),
                    (SCHEMA_VERSION,),
                )

    def schema_version(self) -> int:
        with self._reading() as cur:
            cur.execute("SELECT schema_version FROM pm_tracking WHERE id = 1")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def reset(self, drop: bool = False, indexes: bool = True) -> None:
        """Empty every view, at position 0; with ``drop``, create the tables anew.

        Without ``indexes``, the secondary indexes are dropped, for a bulk load: building
        an index once over all the rows costs less than keeping it up to date row by row
        (in a rebuild, that upkeep was half of what the commits cost). Reads meanwhile
        still find rows by their keys. :meth:`bulk_load` builds them at its end, and
        :meth:`create` when the views are next opened, should the process die before."""
        self.create()
        with self._writing(None) as cur:
            if drop or self._schema_version(cur) != SCHEMA_VERSION:
                for table in TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in self._schema():
                    cur.execute(statement)
            else:
                for table in TABLES:
                    cur.execute(self._empty(table))
            if not indexes:
                for name, _ in self.secondary_indexes():
                    cur.execute(f"DROP INDEX IF EXISTS {name}")
            cur.execute(
                self._sql(
                    "INSERT INTO pm_tracking (id, position, schema_version) VALUES (1, 0, ?)"
                ),
                (SCHEMA_VERSION,),
            )
        self._documents.clear()
        self._as_of.clear()
        with self._changed:
            self._known = 0

    @abstractmethod
    def _has_tracking(self, cur: Any) -> bool: ...

    @staticmethod
    def _schema_version(cur: Any) -> int:
        cur.execute("SELECT schema_version FROM pm_tracking WHERE id = 1")
        row = cur.fetchone()
        return int(row[0]) if row else 0

    def _empty(self, table: str) -> str:
        return f"DELETE FROM {table}"

    def commit_batch(self, expected: int, position: int, statements: Sequence[Statement]) -> None:
        """Write a batch's rows and move the tracking position, in one transaction."""
        with self._writing(expected) as cur:
            for sql, rows in statements:
                if rows:
                    self._write_rows(cur, sql, rows)
            cur.execute(
                self._sql("UPDATE pm_tracking SET position = ? WHERE id = 1 AND position = ?"),
                (position, expected),
            )
            if cur.rowcount != 1:
                raise TrackingMoved(expected, -1)
        self.notify(position)

    def _write_rows(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur.executemany(self._sql(sql), rows)

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._reading() as cur:
            cur.execute(self._sql(statement), tuple(params))
            rows: list[Row] = cur.fetchall()
        return rows

    def fetch_in(self, statement: str, ids: Sequence[str], chunk: int = 500) -> list[Row]:
        """Rows of ``statement`` (which ends in ``IN ({ids})``) for many ids, chunked."""
        out: list[Row] = []
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            marks = ", ".join("?" for _ in part)
            out.extend(self.fetch(statement.format(ids=marks), part))
        return out

    def notify(self, position: int) -> None:
        with self._changed:
            if position > self._known:
                self._known = position
            self._changed.notify_all()

    # --- positions --------------------------------------------------------------------

    def position(self) -> int:
        """The log position that every view reflects."""
        with self._reading() as cur:
            cur.execute("SELECT position FROM pm_tracking WHERE id = 1")
            row = cur.fetchone()
        current = int(row[0]) if row else 0
        with self._changed:
            self._known = current
        return current

    def reflects(self, position: int) -> bool:
        """Whether the views are known to reflect ``position``, without a query."""
        return self._known >= position

    def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the views reflect ``position``; ``False`` when ``timeout`` runs out."""
        if self._known >= position:
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        if self.waker is not None:
            self.waker()
        pause = 0.002
        while True:
            if self.position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                if self._known < position:
                    self._changed.wait(min(pause, remaining))
            if self._known >= position:
                return True
            pause = min(pause * 2, 0.02)

    def position_at_time(self, at: str | datetime) -> int:
        """The last position whose event, and every event before it, is at or before ``at``."""
        limit = parse_time(at)
        rows = self.fetch(
            "SELECT chunk, positions, times FROM pm_positions WHERE at_max > ? "
            "ORDER BY at_max, chunk LIMIT 1",
            (limit,),
        )
        if not rows:
            last = self.fetch("SELECT last FROM pm_positions ORDER BY chunk DESC LIMIT 1")
            return int(last[0][0]) if last else 0
        chunk, positions, times = rows[0]
        before = self.fetch(
            "SELECT last, at_max FROM pm_positions WHERE chunk < ? ORDER BY chunk DESC LIMIT 1",
            (chunk,),
        )
        answer, running = (int(before[0][0]), str(before[0][1])) if before else (0, "")
        for position, moment in zip(json.loads(positions), times.split("\n"), strict=True):
            running = max(running, moment)
            if running > limit:
                break
            answer = position
        return answer

    def time_of(self, position: int) -> str | None:
        """The RFC 3339 time of the event at ``position``."""
        rows = self.fetch(
            "SELECT positions, times FROM pm_positions WHERE chunk = ?",
            (position >> POSITION_CHUNK_BITS,),
        )
        if not rows:
            return None
        positions: list[int] = json.loads(rows[0][0])
        index = bisect.bisect_left(positions, position)
        if index == len(positions) or positions[index] != position:
            return None
        moment: str = rows[0][1].split("\n")[index]
        return moment

    # --- users and meetings -------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any] | None:
        rows = self.fetch(
            f"SELECT {', '.join(USER_COLUMNS)} FROM pm_users WHERE id = ?", (str(user_id),)
        )
        if not rows:
            return None
        r = rows[0]
        return {
            "id": r[0],
            "name": r[1],
            "delegation": r[2],
            "secretariat": bool(r[3]),
            "ministerial": bool(r[4]),
        }

    def meeting(self, meeting_id: UUID | str) -> dict[str, Any] | None:
        """The meeting resource, or ``None``."""
        rows = self.fetch(
            f"SELECT {', '.join(MEETING_COLUMNS)} FROM pm_meetings WHERE id = ?",
            (_meeting_key(meeting_id),),
        )
        return meeting_item(rows[0]) if rows else None

    def takes_part(self, meeting_id: UUID | str, user_id: str) -> bool:
        """Whether the user is enrolled in the meeting."""
        rows = self.fetch(
            "SELECT 1 FROM pm_participants WHERE meeting_id = ? AND user_id = ?",
            (_meeting_key(meeting_id), user_id),
        )
        return bool(rows)

    def participants(self, meeting_id: UUID | str) -> dict[str, dict[str, Any]]:
        """The meeting's participants: user id to ``{role, themes}``."""
        rows = self.fetch(
            "SELECT user_id, role, themes FROM pm_participants WHERE meeting_id = ? "
            "ORDER BY user_id",
            (_meeting_key(meeting_id),),
        )
        return {r[0]: {"role": r[1], "themes": json.loads(r[2])} for r in rows}

    def list_meetings(
        self, user_id: str, sees_all: bool, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The meetings the user may read, by ``starts_on`` then id."""
        check_limit(limit)
        after = decode_cursor(cursor, (str, str))
        columns = ", ".join(f"m.{c}" for c in MEETING_COLUMNS)
        if sees_all:
            statement = f"SELECT {columns} FROM pm_meetings m "
            params: list[Any] = []
            if after is not None:
                statement += "WHERE (m.starts_on, m.id) > (?, ?) "
                params.extend(after)
            statement += "ORDER BY m.starts_on, m.id LIMIT ?"
        else:
            statement = (
                f"SELECT {columns} FROM pm_participants p "
                "JOIN pm_meetings m ON m.id = p.meeting_id WHERE p.user_id = ? "
            )
            params = [str(user_id)]
            if after is not None:
                statement += "AND (p.starts_on, p.meeting_id) > (?, ?) "
                params.extend(after)
            statement += "ORDER BY p.starts_on, p.meeting_id LIMIT ?"
        rows = self.fetch(statement, [*params, limit + 1])
        items = [meeting_item(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor([items[-1]["starts_on"], items[-1]["id"]]) if more else None
        return items, next_cursor

    def roles_of(self, user_id: str) -> list[dict[str, Any]]:
        """The user's meeting participations: ``{role, meeting_id, themes}``."""
        rows = self.fetch(
            "SELECT role, meeting_id, themes FROM pm_participants WHERE user_id = ? "
            "ORDER BY starts_on, meeting_id",
            (str(user_id),),
        )
        return [{"role": r[0], "meeting_id": r[1], "themes": json.loads(r[2])} for r in rows]

    # --- proposals ------------------------------------------------------------------------

    def proposal(self, proposal_id: UUID | str) -> dict[str, Any] | None:
        rows = self.fetch(
            f"SELECT {', '.join(PROPOSAL_COLUMNS)} FROM pm_proposals WHERE id = ?",
            (str(proposal_id),),
        )
        return proposal_item(rows[0]) if rows else None

    def list_proposals(
        self,
        meeting_id: UUID | str,
        theme: str | None = None,
        status: str | None = None,
        proposer: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The meeting's proposals, oldest first, filtered by theme, status and proposer."""
        check_limit(limit)
        if status is not None and status not in STATES:
            raise InvalidInput(f"status must be one of {', '.join(STATES)}", "status")
        after = decode_cursor(cursor, (int,))
        where = ["meeting_id = ?"]
        params: list[Any] = [_meeting_key(meeting_id)]
        for column, value in (("theme", theme), ("status", status), ("proposer_id", proposer)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if after is not None:
            where.append("created_position > ?")
            params.append(after[0])
        rows = self.fetch(
            f"SELECT {', '.join(PROPOSAL_COLUMNS)} FROM pm_proposals "
            f"WHERE {' AND '.join(where)} ORDER BY created_position LIMIT ?",
            [*params, limit + 1],
        )
        items = [proposal_item(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor([rows[limit - 1][16]]) if more else None
        return items, next_cursor

    def comments(
        self, proposal_id: UUID | str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The proposal's comments, oldest first."""
        check_limit(limit)
        after = decode_cursor(cursor, (int,))
        statement = "SELECT position, id, author, text, at FROM pm_comments WHERE proposal_id = ? "
        params: list[Any] = [str(proposal_id)]
        if after is not None:
            statement += "AND position > ? "
            params.append(after[0])
        rows = self.fetch(f"{statement}ORDER BY position LIMIT ?", [*params, limit + 1])
        items = [{"id": r[1], "author": r[2], "text": r[3], "at": r[4]} for r in rows[:limit]]
        next_cursor = encode_cursor([rows[limit - 1][0]]) if len(rows) > limit else None
        return items, next_cursor

    # --- outcomes -------------------------------------------------------------------------

    def outcome_versions(self, meeting_id: UUID | str) -> list[dict[str, Any]]:
        """The forwarded version records of the meeting, oldest first."""
        rows = self.fetch(
            "SELECT version, sha256, document_position, forwarded_at, forwarded_by "
            "FROM pm_outcomes WHERE meeting_id = ? ORDER BY version",
            (_meeting_key(meeting_id),),
        )
        return [
            {
                "version": r[0],
                "sha256": r[1],
                "document_position": r[2],
                "forwarded_at": r[3],
                "forwarded_by": r[4],
            }
            for r in rows
        ]

    def forwarded_document(self, meeting_id: UUID | str, version: int) -> tuple[str, str] | None:
        """The document exactly as forwarded (its JSON text) and its signature."""
        if not 0 < int(version) < 2**63:
            return None
        rows = self.fetch(
            "SELECT document, signature FROM pm_outcomes WHERE meeting_id = ? AND version = ?",
            (_meeting_key(meeting_id), int(version)),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def latest_forwarded(self, ministerial: str) -> list[tuple[str, dict[str, Any]]]:
        """Each meeting's latest forwarded document for the ministerial, by start date.

        Each document is the forwarded JSON with its ``sha256`` and ``signature``.
        """
        rows = self.fetch(
            "SELECT m.starts_on, o.document, o.signature, o.sha256 FROM pm_meetings m "
            "JOIN pm_outcomes o ON o.meeting_id = m.id "
            "WHERE m.ministerial = ? AND o.version = "
            "(SELECT MAX(v.version) FROM pm_outcomes v WHERE v.meeting_id = m.id) "
            "ORDER BY m.starts_on, m.id",
            (ministerial,),
        )
        out: list[tuple[str, dict[str, Any]]] = []
        for starts_on, text, signature, sha256 in rows:
            document = json.loads(text)
            document.setdefault("sha256", sha256)
            document.setdefault("signature", signature)
            out.append((starts_on, document))
        return out

    # --- documents -------------------------------------------------------------------------

    def download_head(self, meeting_id: UUID | str, user_id: str) -> tuple[str, bool, int] | None:
        """What a download needs before the document, in one read: the meeting's title,
        whether the user takes part in it, and its live document's position; ``None``
        when there is no such meeting."""
        key = (_meeting_key(meeting_id), user_id)
        stamp = self.change_stamp()  # before reading: a write after it changes it
        if stamp is not None:
            seen = self._heads.get(key)
            if seen is not None and seen[0] == stamp:
                known: tuple[str, bool, int] | None = seen[1]
                return known
        rows = self.fetch(
            "SELECT m.title, EXISTS (SELECT 1 FROM pm_participants p WHERE p.meeting_id = m.id "
            "AND p.user_id = ?), r.position FROM pm_meetings m "
            "JOIN pm_recommendations r ON r.meeting_id = m.id WHERE m.id = ?",
            (user_id, key[0]),
        )
        head = None
        if rows:
            title, takes_part, position = rows[0]
            head = str(title), bool(takes_part), int(position)
        if stamp is not None:
            self._heads.put(key, (stamp, head))
        return head

    def document_at_position(self, meeting_id: UUID | str, position: int) -> dict[str, Any] | None:
        """The live document compiled at ``position``, when it is in the cache."""
        cached: dict[str, Any] | None = self._documents.get((_meeting_key(meeting_id), position))
        return cached

    def cached_document(self, meeting_id: UUID | str) -> dict[str, Any] | None:
        """:meth:`document` when it is compiled already (one indexed read); else ``None``."""
        key = _meeting_key(meeting_id)
        rows = self.fetch("SELECT position FROM pm_recommendations WHERE meeting_id = ?", (key,))
        if not rows:
            raise NotFound("meeting", meeting_id)
        cached: dict[str, Any] | None = self._documents.get((key, int(rows[0][0])))
        return cached

    def document(self, meeting_id: UUID | str) -> dict[str, Any]:
        """The live compiled document of the meeting, sealed.

        Cached by (meeting, position): the same dict is handed to every caller, so
        treat it as read-only.
        """
        cached = self.cached_document(meeting_id)
        if cached is not None:
            return cached
        key = _meeting_key(meeting_id)
        rows = self.fetch(
            "SELECT r.position, r.state, f.proposal_id, f.state FROM pm_recommendations r "
            "LEFT JOIN pm_fold_proposals f ON f.meeting_id = r.meeting_id "
            "WHERE r.meeting_id = ?",
            (key,),
        )
        return self._compiled(key, int(rows[0][0]), rows)

    def _compiled(self, key: str, position: int, rows: Sequence[Row]) -> dict[str, Any]:
        """The document of the fold state in ``rows``: the meeting's state, repeated on each
        row, with one of its proposals' state per row (read in one statement, so that they
        belong together)."""
        cached: dict[str, Any] | None = self._documents.get((key, position))
        if cached is None:
            state = json.loads(rows[0][-3])
            state["proposals"] = {r[-2]: json.loads(r[-1]) for r in rows if r[-2] is not None}
            cached = compile_document(state)
            self._documents.put((key, position), cached)
        return cached

    def document_as_of(
        self, app: PreparatoryMeetings, meeting_id: UUID | str, position: int
    ) -> dict[str, Any]:
        """The document as it stood at ``position``: from the view when it still stands so,
        else replayed from the log. Cached; read-only like :meth:`document`."""
        key = _meeting_key(meeting_id)
        cached: dict[str, Any] | None = self._as_of.get((key, position))
        if cached is not None:
            return cached
        rows = self.fetch(
            "SELECT t.position, r.position, r.state, f.proposal_id, f.state FROM pm_tracking t "
            "LEFT JOIN pm_recommendations r ON r.meeting_id = ? "
            "LEFT JOIN pm_fold_proposals f ON f.meeting_id = r.meeting_id WHERE t.id = 1",
            (key,),
        )
        if rows and rows[0][1] is not None and rows[0][1] <= position <= rows[0][0]:
            document = self._compiled(key, int(rows[0][1]), rows)
        else:
            document = compile_as_of(app, key, position)
        self._as_of.put((key, position), document)
        return document


# --- SQLite ---------------------------------------------------------------------------------


class SQLiteReadModel(ReadModel):
    """The views in a SQLite file of their own beside the events.

    WAL with ``synchronous=NORMAL``: a power loss may take back the last batches, but rows
    and tracking position together (they commit in one transaction), and the projector then
    applies those events again from the log, which is what is kept with ``synchronous=FULL``.
    Waiting for the disk on every batch would add to every read-your-write.
    """

    kind = "sqlite"

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.timeout = timeout
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()
        self._closed = False
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None
        self._open_writer()
        self._stamp = WalStamp(self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _open_writer(self) -> None:
        conn = self._connect()
        # Debian and others build SQLite to zero every page a delete frees, which has the
        # emptying of the views in a rebuild write the whole file again (93 MB of WAL for
        # 200,000 events, 0.4 s, then as much again to checkpoint). The views hold only
        # what the event log holds, so freed pages need no zeroing: FAST zeroes freed
        # cells only in pages that are written anyway.
        conn.execute("PRAGMA secure_delete=FAST")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        if str(mode).lower() != "wal" or int(sync) != 1:
            raise RuntimeError(f"{self.path}: journal_mode={mode}, synchronous={sync}")
        self._writer = conn

    def _sql(self, statement: str) -> str:
        return statement

    def _schema(self) -> list[str]:
        return schema("INTEGER", "INTEGER")

    def _has_tracking(self, cur: Any) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pm_tracking'")
        return cur.fetchone() is not None

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn.cursor()
        finally:
            if conn.in_transaction:
                conn.rollback()
            if self._closed:
                conn.close()
            else:
                self._pool.put(conn)

    @contextmanager
    def _writing(self, expected: int | None) -> Iterator[Any]:
        with self._writer_lock:
            conn = self._writer
            if conn is None:
                raise RuntimeError("the read model is closed")
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if expected is not None:
                    cur.execute("SELECT position FROM pm_tracking WHERE id = 1")
                    row = cur.fetchone()
                    actual = int(row[0]) if row else 0
                    if actual != expected:
                        raise TrackingMoved(expected, actual)
                yield cur
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()

    def _write_rows(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """In statements of many rows: ``executemany`` takes the GIL back after every row,
        a multi-row statement once."""
        per, full = self._rows_statement(sql, len(rows))
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            text = full if len(part) == per else self._rows_text(sql, len(part))
            cur.execute(text, [value for row in part for value in row])

    def _rows_statement(self, sql: str, count: int) -> tuple[int, str]:
        """Rows per statement for ``sql`` (within SQLite's limit of parameters) and the text
        of a statement of that many rows."""
        width = sql.count("?")
        per = max(1, min(count, PARAMETERS_PER_STATEMENT // width))
        return per, self._rows_text(sql, per)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _rows_text(sql: str, count: int) -> str:
        head, _, rest = sql.partition(" VALUES (")
        marks, _, tail = rest.partition(")")
        return f"{head} VALUES {','.join([f'({marks})'] * count)}{tail}"

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._indexes_after():
                yield
        finally:
            with self._writer_lock:
                if self._writer is not None:
                    self._writer.execute("PRAGMA synchronous=NORMAL")
                    self._writer.execute("BEGIN IMMEDIATE")
                    self._writer.execute("UPDATE pm_tracking SET position = position WHERE id = 1")
                    self._writer.execute("COMMIT")
                    self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def acquire_writer(self, wait: bool, stop: threading.Event | None = None) -> bool:
        """Hold an exclusive lock on ``views.sqlite.lock``; with ``wait``, until it is free or
        ``stop`` is set. (Every batch is also guarded by the tracking position.)"""
        with self._writer_lock:
            if self._lock_file is not None:
                return True
            handle = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not wait or (stop is not None and stop.wait(0.2)):
                        handle.close()
                        return False
                    if stop is None:
                        time.sleep(0.2)
                    continue
                self._lock_file = handle
                return True

    def release_writer(self) -> None:
        with self._writer_lock:
            handle, self._lock_file = self._lock_file, None
            if handle is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                handle.close()

    def change_stamp(self) -> bytes | None:
        return self._stamp()

    def close(self) -> None:
        self._stamp.close()
        self.release_writer()
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self._writer = None


# --- PostgreSQL -----------------------------------------------------------------------------


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresReadModel(ReadModel):
    """The views as ``pm_`` tables in the event store's own PostgreSQL database and schema."""

    kind = "postgres"

    def __init__(self, database_url: str, pool_size: int = 8) -> None:
        super().__init__()
        import psycopg
        from psycopg_pool import ConnectionPool

        p = parse_postgres_url(database_url)
        self.schema_name = p.schema
        self._kwargs: dict[str, Any] = {
            "dbname": p.dbname,
            "host": p.host,
            "port": p.port,
            "user": p.user,
            "password": p.password,
            "connect_timeout": 5,
            "options": f"-c search_path={p.schema}",
            "autocommit": True,
        }
        self._psycopg = psycopg
        self._pool = ConnectionPool(
            kwargs=self._kwargs, min_size=1, max_size=pool_size, open=True, timeout=10
        )
        self._writer: Any = None
        self._writer_lock = threading.Lock()
        self._holds_lock = False
        self.lock_key = advisory_key(f"prepmeet-views:{p.dbname}:{p.schema}")
        self.schema_lock_key = advisory_key(f"prepmeet-views-schema:{p.dbname}:{p.schema}")

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _schema(self) -> list[str]:
        return schema("BIGINT", "BOOLEAN")

    def _has_tracking(self, cur: Any) -> bool:
        cur.execute("SELECT to_regclass('pm_tracking') IS NOT NULL")
        row = cur.fetchone()
        return bool(row and row[0])

    def _empty(self, table: str) -> str:
        return f"TRUNCATE {table}"

    def _writer_conn(self) -> Any:
        if self._writer is None or self._writer.closed:
            self._writer = self._psycopg.connect(**self._kwargs)
            # the views are rebuilt from the log: a crash may take back the last batches,
            # rows and tracking position together, and the projector applies them again
            self._writer.execute("SET synchronous_commit = off")
            self._holds_lock = False
        return self._writer

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield _PgCursor(cur)

    @contextmanager
    def _writing(self, expected: int | None) -> Iterator[Any]:
        with self._writer_lock:
            conn = self._writer_conn()
            with conn.transaction(), conn.cursor() as cur:
                if expected is None:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (self.schema_lock_key,))
                else:
                    cur.execute("SELECT position FROM pm_tracking WHERE id = 1 FOR UPDATE")
                    row = cur.fetchone()
                    actual = int(row[0]) if row else 0
                    if actual != expected:
                        raise TrackingMoved(expected, actual)
                yield cur

    def commit_batch(self, expected: int, position: int, statements: Sequence[Statement]) -> None:
        """As on every store, in one pipeline: the rows of every table and the move of the
        tracking position go to the server together, in one round trip (``executemany``
        alone sends each table's rows and waits for them)."""
        with self._writing(expected) as cur:
            with cur.connection.pipeline(), cur.connection.cursor() as move:
                for sql, rows in statements:
                    if rows:
                        cur.executemany(self._sql(sql), rows)
                move.execute(
                    "UPDATE pm_tracking SET position = %s WHERE id = 1 AND position = %s",
                    (position, expected),
                )
            if move.rowcount != 1:
                raise TrackingMoved(expected, -1)
        self.notify(position)

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        with self._writer_lock:
            self._writer_conn().execute("SET synchronous_commit = off")
        try:
            with self._indexes_after():
                yield
        finally:
            with self._writer_lock:
                if self._writer is not None and not self._writer.closed:
                    self._writer.execute("UPDATE pm_tracking SET position = position WHERE id = 1")

    def acquire_writer(self, wait: bool, stop: threading.Event | None = None) -> bool:
        """Hold the views' advisory lock; with ``wait``, until it is free or ``stop`` is set."""
        with self._writer_lock:
            conn = self._writer_conn()
            if self._holds_lock:
                return True
            while True:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,)).fetchone()
                if row and row[0]:
                    self._holds_lock = True
                    return True
                if not wait or (stop is not None and stop.wait(0.2)):
                    return False
                if stop is None:
                    time.sleep(0.2)

    def release_writer(self) -> None:
        """Give up the views' lock. A session the server has ended (the database stopped
        or dropped) took its lock with it: there is nothing left to give up."""
        with self._writer_lock:
            if self._writer is not None and not self._writer.closed and self._holds_lock:
                try:
                    self._writer.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
                except self._psycopg.OperationalError as e:
                    log.warning("views' session already ended, and its lock with it: %s", e)
                    self._writer.close()
            self._holds_lock = False

    def listen(self, channel: str, wake: Callable[[], None], stop: threading.Event) -> None:
        from psycopg import sql

        while not stop.is_set():
            try:
                with self._psycopg.connect(**self._kwargs) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            wake()
            except Exception:
                stop.wait(5.0)

    def close(self) -> None:
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
            self._holds_lock = False
        self._pool.close()


class _PgCursor:
    """A psycopg cursor that takes statements written with ``?`` placeholders."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(statement.replace("?", "%s"), params or None)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> Any:
        return self._cur.fetchall()


def open_read_side(data_dir: Path, database_url: str | None, *, pool_size: int = 16) -> ReadModel:
    """The read model of the configured store, its tables created where missing.

    ``pool_size`` bounds the PostgreSQL connections that reads use at once.
    """
    model: ReadModel
    if database_url:
        model = PostgresReadModel(database_url, pool_size=pool_size)
    else:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        model = SQLiteReadModel(Path(data_dir) / VIEWS_FILE)
    try:
        model.create()
    except BaseException:
        model.close()
        raise
    return model
