"""Time travel: a meeting's document as it stood at a position (or a time) of the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from domain.application import PreparatoryMeetings
from domain.errors import InvalidInput, NotFound
from domain.proposal import Proposal
from domain.users import User
from projections.compile import (
    MEETING_HANDLERS,
    PROPOSAL_HANDLERS,
    Person,
    RecommendationsFold,
    compile_document,
    rfc3339,
)
from projections.decoding import EventDecoder

PAGE = 1000


class AsOfOutOfRange(InvalidInput):
    """An ``as_of`` that names no state of the meeting: past the log's end, or before it existed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, "as_of")


def parse_time(value: str | datetime) -> str:
    """An ``as_of`` time as the fixed-width RFC 3339 UTC string that the views store."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{value!r} is neither a position nor an RFC 3339 time", "as_of"
            ) from None
    else:
        moment = value
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("an as_of time must carry its offset (Z or +hh:mm)", "as_of")
    return rfc3339(moment.astimezone(UTC))


def _notifications(app: PreparatoryMeetings, stop: int | None = None) -> Iterator[Notification]:
    start = 0
    while True:
        page = app.recorder.select_notifications(start, PAGE, stop=stop, inclusive_of_start=False)
        if not page:
            return
        yield from page
        start = page[-1].id
        if len(page) < PAGE:
            return


def _class_of(topic: str) -> type[Any] | None:
    try:
        cls: type[Any] = resolve_topic(topic)
    except Exception:
        return None
    return cls


def last_position(app: PreparatoryMeetings) -> int:
    return app.recorder.max_notification_id() or 0


def replay(app: PreparatoryMeetings, meeting_id: UUID | str, position: int) -> RecommendationsFold:
    """The fold of one meeting with every event up to and including ``position`` applied."""
    try:
        mid = meeting_id if isinstance(meeting_id, UUID) else UUID(str(meeting_id))
    except ValueError:
        raise NotFound("meeting", meeting_id) from None
    if position < 0 or position > last_position(app):
        raise AsOfOutOfRange(f"position {position} is outside the log (1 to {last_position(app)})")
    users: dict[str, Person] = {}
    ours: set[UUID | str] = set()
    fold = RecommendationsFold()
    decode = EventDecoder(app.mapper).decode
    meeting_id_str = str(mid)
    for note in _notifications(app, stop=position):
        cls = _class_of(note.topic)
        if cls is None:
            continue
        if cls is User.Registered:
            ev, at = decode(note)
            users[str(ev.originator_id)] = (ev.name, ev.delegation)
            continue
        if cls in MEETING_HANDLERS:
            if note.originator_id != mid:
                continue
        elif cls is Proposal.Drafted:
            ev, at = decode(note)
            if ev.meeting_id != meeting_id_str:
                continue
            ours.add(note.originator_id)
            fold.apply(ev, note.id, at, users.get)
            continue
        elif cls in PROPOSAL_HANDLERS:
            if note.originator_id not in ours:
                continue
        else:
            continue
        ev, at = decode(note)
        fold.apply(ev, note.id, at, users.get)
    if not fold.state:
        raise AsOfOutOfRange(f"meeting {mid} was not scheduled at position {position}")
    return fold


def compile_as_of(
    app: PreparatoryMeetings, meeting_id: UUID | str, position: int
) -> dict[str, Any]:
    """The meeting's document as it stood at ``position``, sealed.

    Raises :class:`AsOfOutOfRange` (invalid input) for a position past the log's end or
    before the meeting was scheduled, :class:`~domain.errors.NotFound` for an id that
    is not a UUID. The same position always gives the same document.
    """
    return compile_document(replay(app, meeting_id, position).state)


def position_at_time(app: PreparatoryMeetings, at: str | datetime) -> int:
    """The last position whose event, and every event before it, happened at or before ``at``.

    Reads the log from the start (one pass); the read model's ``position_at_time`` answers
    the same from its index.
    """
    limit = parse_time(at)
    last = 0
    decode = EventDecoder(app.mapper).decode
    for note in _notifications(app):
        moment = decode(note)[1]
        if moment > limit:
            break
        last = note.id
    return last
