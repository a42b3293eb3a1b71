"""The PostgreSQL store: the library's recorder, able to number a sequence at commit.

Some aggregates are sequences whose every event appends to the end (a meeting's log of
proposals). When several processes append to one such sequence, a version chosen before
the commit is stale as soon as another process commits, and the commit fails on the
primary key. :meth:`Recorder.insert_numbered_events` gives the events of such topics their
versions inside the transaction, after the table lock that every insert takes: the head it
reads is the head it writes after, so appending never conflicts.

The library composes its statements (``psycopg.sql``) on every call, and psycopg renders
a composed statement to bytes on every execution: for the reads of an aggregate and of the
notification log, and the table lock and notification of each insert, that took a tenth
of a command's CPU. The recorder renders each shape of statement once and keeps the bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg import Connection
from psycopg.sql import SQL, Composable, Identifier


class Recorder(PostgresApplicationRecorder):
    """The library's application recorder, with inserts that number sequences."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        self.insert_numbered_statement = SQL(
            "INSERT INTO {table} AS t (originator_id, originator_version, topic, state) "
            "SELECT e.originator_id, "
            "CASE WHEN e.topic = ANY(%s::text[]) THEN "
            "COALESCE((SELECT max(h.originator_version) FROM {table} h "
            "WHERE h.originator_id = e.originator_id), 0) "
            "+ row_number() OVER (PARTITION BY e.originator_id, e.topic = ANY(%s::text[]) "
            "ORDER BY e.n) "
            "ELSE e.originator_version END, "
            "e.topic, e.state "
            "FROM unnest(%s::{schema}.{event_type}[]) WITH ORDINALITY "
            "AS e(originator_id, originator_version, topic, state, n) "
            "ORDER BY e.n "
            "RETURNING notification_id, originator_version"
        ).format(
            table=table,
            schema=Identifier(self.datastore.schema),
            event_type=Identifier(self.stored_event_type_name),
        )
        self._rendered: dict[Any, bytes] = {}

    def _statement(
        self, key: Any, conn: Connection[Any], compose: Callable[[], Composable]
    ) -> bytes:
        """The statement of this shape as bytes, rendered on its first use."""
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._rendered[key] = compose().as_bytes(conn)
        return rendered

    def _fetch(
        self, key: Any, compose: Callable[[], Composable], params: Sequence[Any]
    ) -> list[Any]:
        """The rows of the statement of this shape, prepared, on a connection of the pool."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._statement(key, conn, compose), params, prepare=True)
            return curs.fetchall()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's query, rendered once for each combination of conditions."""
        params: list[Any] = [originator_id]
        if gt is not None:
            params.append(gt)
        if lte is not None:
            params.append(lte)
        if limit is not None:
            params.append(limit)
        key = ("events", gt is not None, lte is not None, desc, limit is not None)

        def compose() -> Composable:
            statement = self.select_events_statement
            if gt is not None:
                statement += SQL(" AND originator_version > %s")
            if lte is not None:
                statement += SQL(" AND originator_version <= %s")
            statement += SQL(" ORDER BY originator_version")
            statement += SQL(" DESC" if desc else " ASC")
            if limit is not None:
                statement += SQL(" LIMIT %s")
            return statement

        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in self._fetch(key, compose, params)
        ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's query, rendered once for each combination of conditions."""
        params: list[Any] = []
        conditions: list[str] = []
        if start is not None:
            params.append(start)
            conditions.append("notification_id>=%s" if inclusive_of_start else "notification_id>%s")
        if stop is not None:
            params.append(stop)
            conditions.append("notification_id <= %s")
        if topics:
            params.append(list(topics))
            conditions.append("topic = ANY(%s)")
        params.append(limit)
        key = ("notifications", tuple(conditions))

        def compose() -> Composable:
            where = " WHERE " + " AND ".join(conditions) if conditions else ""
            return SQL(
                "SELECT * FROM {schema}.{table}{where} ORDER BY notification_id LIMIT %s"
            ).format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name),
                where=SQL(where),
            )

        return [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in self._fetch(key, compose, params)
        ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def max_notification_id(self) -> int | None:
        (row,) = self._fetch("max", lambda: self.max_notification_id_statement, ())
        return None if row["max"] is None else int(row["max"])

    def _lock_table(self, curs: Any) -> None:
        for n, statement in enumerate(self.lock_table_statements):
            rendered = self._rendered.get(("lock", n))
            if rendered is None:  # the library composes them with psycopg.sql
                rendered = cast(Composable, statement).as_bytes(curs.connection)
                self._rendered["lock", n] = rendered
            curs.execute(rendered, prepare=True)

    def _notify_channel(self, curs: Any) -> None:
        rendered = self._statement(
            "notify",
            curs.connection,
            lambda: SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
        )
        curs.execute(rendered)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_numbered_events(
        self, stored_events: Sequence[StoredEvent], topics: Sequence[str]
    ) -> list[tuple[int, int]]:
        """Insert the events in one transaction; each event's notification id and version.

        An event whose topic is one of ``topics`` is given the version after the last its
        aggregate has in the store (after the events of the same aggregate before it in
        ``stored_events``), whatever version it came with: an aggregate whose events are
        numbered so must have only events of those topics. Other events keep their
        versions, and conflict as :meth:`insert_events` would.
        """
        if not stored_events:
            return []
        rows = [
            self.construct_pg_stored_event(s.originator_id, s.originator_version, s.topic, s.state)
            for s in stored_events
        ]
        names = list(topics)
        exc: Exception | None = None
        numbered: list[tuple[int, int]] = []
        with self.datastore.get_connection() as conn:
            with conn.pipeline() as pipeline, conn.transaction():
                with conn.cursor() as curs:
                    self._lock_table(curs)
                    self._notify_channel(curs)
                with conn.cursor() as curs:
                    try:
                        statement = self._statement(
                            "numbered", conn, lambda: self.insert_numbered_statement
                        )
                        curs.execute(statement, (names, names, rows))
                        pipeline.sync()
                        numbered = [
                            (int(r["notification_id"]), int(r["originator_version"]))
                            for r in curs.fetchall()
                        ]
                    except Exception as e:
                        exc = e  # raised after the pipeline has exited, as the library does
            if exc:
                raise exc
        return numbered


class Factory(PostgresFactory):
    application_recorder_class = Recorder
