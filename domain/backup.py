"""Back up the whole log to JSON lines, and restore it into an empty store, position for position.

Each line holds one event: its position, aggregate, version, class topic, type, time and
actor, the stored state exactly as recorded, the event's digest and the chain's head after
it (see :mod:`domain.audit`). A restore checks the chain line by line, so a file changed
after export is refused, and writes each event at its original position, so documents that
name positions stay the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from domain.application import PreparatoryMeetings, event_type, iso
from domain.audit import GENESIS, chain_step, event_digest, notifications

BATCH = 1000


class BackupError(Exception):
    """A backup file or target store that cannot be used; the message is for the operator."""


@dataclass(frozen=True)
class Line:
    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: str
    digest: str
    chain: str


def export_log(
    app: PreparatoryMeetings, out: IO[str], progress: Callable[[int], None] | None = None
) -> tuple[int, str]:
    """Write every event to ``out``; the number written and the chain's final head."""
    head = GENESIS
    count = 0
    for n in notifications(app.recorder):
        state = n.state.decode("utf-8")
        digest = event_digest(n.id, n.originator_id, n.originator_version, n.topic, n.state)
        head = chain_step(head, digest)
        ev: Any = app.mapper.to_domain_event(n)
        line = {
            "position": n.id,
            "originator_id": str(n.originator_id),
            "originator_version": n.originator_version,
            "topic": n.topic,
            "type": event_type(ev),
            "at": iso(ev.timestamp),
            "actor": getattr(ev, "actor", None),
            "state": state,
            "digest": digest,
            "chain": head,
        }
        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
        if progress is not None:
            progress(n.id)
    return count, head


def read_lines(source: Iterable[str]) -> Iterator[Line]:
    """The events of a backup, checked: positions rising, digests and chain intact."""
    head = GENESIS
    last = 0
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue
        try:
            d = json.loads(raw)
            line = Line(
                int(d["position"]),
                str(UUID(d["originator_id"])),
                int(d["originator_version"]),
                str(d["topic"]),
                str(d["state"]),
                str(d["digest"]),
                str(d["chain"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise BackupError(f"line {number} is not an exported event: {e}") from None
        if line.position <= last:
            raise BackupError(f"line {number}: position {line.position} does not follow {last}")
        digest = event_digest(
            line.position,
            UUID(line.originator_id),
            line.originator_version,
            line.topic,
            line.state.encode("utf-8"),
        )
        head = chain_step(head, digest)
        if digest != line.digest or head != line.chain:
            raise BackupError(
                f"line {number} (position {line.position}) does not match its hash chain: "
                "the file was changed after it was exported"
            )
        last = line.position
        yield line


def check_file(path: Path) -> tuple[int, int]:
    """Read a whole backup and check its chain; (events, last position)."""
    count = last = 0
    with path.open(encoding="utf-8") as f:
        for line in read_lines(f):
            count += 1
            last = line.position
    return count, last


def import_log(
    app: PreparatoryMeetings,
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Restore a backup into ``app``'s store, which must be empty; the number of events.

    The whole file is checked before anything is written.
    """
    check_file(path)
    if app.last_position():
        raise BackupError("the target store is not empty: restore only into an empty store")
    recorder: Any = app.recorder
    datastore = getattr(recorder, "datastore", None)
    if datastore is None:
        raise BackupError("restore needs a SQLite or PostgreSQL store")
    table = recorder.events_table_name
    postgres = hasattr(datastore, "schema")
    count = 0
    batch: list[Line] = []

    def flush() -> None:
        if not batch:
            return
        with datastore.transaction(commit=True) as cursor:
            if postgres:
                from psycopg.sql import SQL, Identifier

                stmt = SQL(
                    "INSERT INTO {}.{} (originator_id, originator_version, topic, state, "
                    "notification_id) VALUES (%s, %s, %s, %s, %s)"
                ).format(Identifier(datastore.schema), Identifier(table))
                cursor.executemany(
                    stmt,
                    [
                        (
                            UUID(x.originator_id),
                            x.originator_version,
                            x.topic,
                            x.state.encode("utf-8"),
                            x.position,
                        )
                        for x in batch
                    ],
                )
            else:
                cursor.executemany(
                    f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, "
                    "state) VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            x.position,
                            UUID(x.originator_id).hex,
                            x.originator_version,
                            x.topic,
                            x.state.encode("utf-8"),
                        )
                        for x in batch
                    ],
                )
        if progress is not None:
            progress(batch[-1].position)
        batch.clear()

    with path.open(encoding="utf-8") as source:
        for line in read_lines(source):
            batch.append(line)
            count += 1
            if len(batch) >= BATCH:
                flush()
        flush()
    if postgres and count:
        from psycopg.sql import SQL, Identifier

        with datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL(
                    "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), "
                    "(SELECT MAX(notification_id) FROM {}.{}))"
                ).format(Identifier(datastore.schema), Identifier(table)),
                (f"{datastore.schema}.{table}",),
            )
    return count
