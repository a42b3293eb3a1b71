"""The PostgreSQL store: the library's recorder, able to number a sequence at commit.

Some aggregates are sequences whose every event appends to the end (a meeting's log of
proposals). When several processes append to one such sequence, a version chosen before
the commit is stale as soon as another process commits, and the commit fails on the
primary key. :meth:`Recorder.insert_numbered_events` gives the events of such topics their
versions inside the transaction, after the table lock that every insert takes: the head it
reads is the head it writes after, so appending never conflicts.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier


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
                        curs.execute(self.insert_numbered_statement, (names, names, rows))
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
