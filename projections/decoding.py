"""Domain events from notifications, as the application's mapper makes them, only faster.

The states this service stores are plain JSON in which the one transcoded value is the
event's time; such a state is parsed as plain JSON (with orjson where it is installed) and
the time read as it was written. Any other state (another transcoded value, a cipher, a
compressor) goes through the mapper itself, so both paths give equal events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from eventsourcing.persistence import ApplicationRecorder, JSONTranscoder, Mapper, Notification
from eventsourcing.utils import resolve_topic

from domain.sqlite_store import Recorder as SQLiteRecorder
from projections.compile import rfc3339

TYPE_KEY = b'"_type_"'
TIME_PREFIX = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'
TIME_START = len(TIME_PREFIX)
TIME_END = TIME_START + len("2025-04-15T09:30:00.000000+00:00")
_scan = json.JSONDecoder().raw_decode


def _json_loads(raw: bytes) -> Any:
    return _scan(raw.decode())[0]


def _pick_loads() -> Callable[[bytes], Any]:
    try:
        import orjson
    except ImportError:  # pragma: no cover - orjson only makes it faster
        return _json_loads
    fast: Callable[[bytes], Any] = orjson.loads
    return fast


loads = _pick_loads()
"""Parses a stored state: orjson where it is installed, else the standard library."""


class Note(NamedTuple):
    """A notification whose originator id is the UUID's canonical text."""

    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


NoteRow = tuple[int, str, int, str, bytes]
"""A :class:`Note` as a plain tuple: position, originator id, version, topic and state."""


def read_notes(
    recorder: ApplicationRecorder, after: int, limit: int, *, one_step: bool = True
) -> list[NoteRow]:
    """Up to ``limit`` notifications after position ``after``, as plain rows.

    The SQLite store gives them as it reads them, the text of the ids made by SQLite: a
    reader of the whole log is spared a ``UUID`` and a frozen dataclass per event, which
    cost twice what reading the rows does. ``one_step`` reads the page in one step (see
    :meth:`domain.sqlite_store.Recorder.select_notification_rows`).
    """
    if isinstance(recorder, SQLiteRecorder):
        return recorder.select_notification_rows(after, limit, one_step=one_step)
    return note_rows(recorder.select_notifications(after, limit, inclusive_of_start=False))


def note_rows(notifications: Iterable[Notification]) -> list[NoteRow]:
    """The rows of notifications as the library gives them."""
    return [
        (n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in notifications
    ]


AnyNote = Notification | Note
"""A notification as the library reads it, or as a :class:`Note`."""


class EventDecoder:
    """Turns notifications into ``(domain event, RFC 3339 time)`` pairs."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        self.fast = (
            mapper.cipher is None
            and mapper.compressor is None
            and type(mapper.transcoder) is JSONTranscoder
            and "datetime_iso" in mapper.transcoder.names
        )
        self.classes: dict[str, type[Any]] = {}
        self._versioned: set[type[Any]] = set()

    def _class(self, topic: str) -> type[Any]:
        cls: type[Any] = resolve_topic(topic)
        self.classes[topic] = cls
        if getattr(cls, "class_version", 1) > 1:
            self._versioned.add(cls)
        return cls

    def class_of(self, topic: str) -> type[Any]:
        return self.classes.get(topic) or self._class(topic)

    def time_of(self, note: AnyNote) -> str | None:
        """The event's RFC 3339 time read straight from its stored state, when it can be."""
        return self.time_in(note.state)

    def time_in(self, raw: bytes) -> str | None:
        """The RFC 3339 time in a stored state, when it can be read without parsing it."""
        if self.fast and raw[TIME_END : TIME_END + 1] == b'"' and raw.startswith(TIME_PREFIX):
            text = raw[TIME_START:TIME_END]
            if text[19:20] == b"." and text[26:] == b"+00:00":
                return text[:26].decode() + "Z"
        return None

    def decode(self, note: AnyNote) -> tuple[Any, str]:
        return self.decode_as(note, self.classes.get(note.topic) or self._class(note.topic))

    def decode_as(self, note: AnyNote, cls: type[Any]) -> tuple[Any, str]:
        """The event of ``note``, whose topic resolves to ``cls``, and its time."""
        return self.decode_row(
            (note.id, note.originator_id, note.originator_version, note.topic, note.state), cls
        )

    def decode_row(self, row: tuple[int, Any, int, str, bytes], cls: type[Any]) -> tuple[Any, str]:
        """The event of a notification row, whose topic resolves to ``cls``, and its time."""
        raw = row[4]
        if self.fast and raw.startswith(TIME_PREFIX) and raw.count(TYPE_KEY) == 1:
            try:
                state = loads(raw)
            except ValueError:
                state = None
            stamp = state.get("timestamp") if isinstance(state, dict) else None
            if isinstance(stamp, dict) and len(stamp) == 2:
                text = stamp["_data_"]
                state["timestamp"] = datetime.fromisoformat(text)
                state["originator_id"] = row[1]
                state["originator_version"] = row[2]
                if "class_version" in state or cls in self._versioned:
                    self._upcast(cls, state)
                event = object.__new__(cls)
                object.__setattr__(event, "__dict__", state)
                if len(text) == 32 and text[26:] == "+00:00":
                    return event, text[:26] + "Z"
                return event, rfc3339(state["timestamp"])
        note = Notification(
            id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=raw
        )
        decoded: Any = self.mapper.to_domain_event(note)
        return decoded, rfc3339(decoded.timestamp)

    @staticmethod
    def _upcast(cls: type[Any], state: dict[str, Any]) -> None:
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
