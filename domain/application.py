"""The application service: one command method per action, and single-object queries."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    EventSourcedLog,
    ProcessingEvent,
)
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import IntegrityError, Notification, Recording
from eventsourcing.sqlite import SQLiteConnectionPool
from eventsourcing.utils import get_topic

from domain import rules
from domain.audit import Chain
from domain.base import apply_events, recorded
from domain.concurrency import (
    AggregateCache,
    GroupCommit,
    KeyedLocks,
    LogEntry,
    SharedExclusiveLock,
)
from domain.errors import (
    AlreadyIssued,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
    VersionConflict,
)
from domain.meeting import CLOSED, OPEN, Meeting
from domain.proposal import APPROVED, Proposal
from domain.users import ApiToken, User, token_hash, token_index_id

SYSTEM = "system"
"""The actor of commands given at the command line by the operator, not over HTTP."""

IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:prepmeet:idempotency")
PROPOSAL_LOG_NAMESPACE = uuid5(NAMESPACE_URL, "urn:prepmeet:meeting-proposals")
RETRIES = 8
TOKEN_HOLDERS_MAX = 100_000
PEOPLE_MAX = 100_000
BASE_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic", "actor")
REDACTED_FIELDS = ("token_hash", "idempotency")

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


class ProposalLogged(DomainEvent):
    """An entry in a meeting's log of proposal ids (written with the proposal's creation).

    Version 2 names its actor, the proposal's drafter; entries of version 1 did not, and
    load with ``actor`` None (their ``Proposal.Drafted`` names who it was).
    """

    class_version = 2

    proposal_id: str
    theme: str
    actor: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["actor"] = None


@dataclass
class Result:
    """What a command returns: the object's new state and the position of its last event."""

    state: dict[str, Any]
    position: int
    created: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Person:
    """What a user registered with: it never changes."""

    id: UUID
    name: str
    delegation: str
    secretariat: bool
    ministerial: bool


@dataclass(frozen=True)
class Forwarding:
    """A compiled outcome ready to be recorded by ``forward_meeting``."""

    document: str
    sha256: str
    document_position: int
    signature: str


class _Replay(Exception):
    """A signal inside ``_change_once``: the key was used by the event of this version."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


SQLITE_CONNECTIONS = 48
"""Connections a SQLite store keeps open: as many as threads may read at once (FastAPI's
thread pool has 40), since the library's default keeps 5 and opens and closes the rest
for every read."""


def keep_connections(factory: object) -> None:
    pool = getattr(getattr(factory, "datastore", None), "pool", None)
    if isinstance(pool, SQLiteConnectionPool):
        pool.pool_size = SQLITE_CONNECTIONS
        pool.max_overflow = SQLITE_CONNECTIONS


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_type(event: object) -> str:
    return type(event).__qualname__.replace(".", "")


def event_data(event: object) -> dict[str, Any]:
    data = {}
    for name, value in vars(event).items():
        if name in BASE_FIELDS or name in REDACTED_FIELDS:
            continue
        data[name] = str(value) if isinstance(value, UUID) else value
    return data


def new(cls: type[A], created: type[Any], id_: UUID | None, **kwargs: Any) -> A:
    """A new aggregate with the given id (a fresh one when ``None``)."""
    return cls._create(created, id=id_, **kwargs)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


NUMBERED_TOPICS = (get_topic(ProposalLogged),)
"""Topics of the events a store may number at commit: the log entries."""


@dataclass(frozen=True)
class DraftAccess:
    """A meeting read for a draft, its access checked: what ``check_draft`` hands to
    ``draft_proposal``, which then need not read the meeting again."""

    actor: str
    meeting: Meeting
    forwardings: int
    """This process's forwardings of the meeting before it was read (``_forwardings``)."""


@dataclass(frozen=True)
class ProposalAccess:
    """A proposal and its meeting read for an action, access checked: what
    ``check_proposal`` hands to the command of that action, which then need not read them
    again before it reads the proposal under the meeting's lock."""

    actor: str
    action: str
    proposal: Proposal
    meeting: Meeting
    forwardings: int
    """This process's forwardings of the meeting before it was read (``_forwardings``)."""


class PreparatoryMeetings(Application[UUID]):
    """Meetings, their participants and proposals, and the people who act on them."""

    name = "prepmeet"
    env = {"COMPRESSOR_TOPIC": ""}

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        keep_connections(self.factory)
        self.chain = Chain(self.recorder)
        self._meeting_locks: dict[str, SharedExclusiveLock] = {}
        self._locks_lock = threading.Lock()
        self._token_holders: dict[str, UUID] = {}
        self._people: dict[str, Person] = {}
        self._aggregate_locks = KeyedLocks()
        self._group = GroupCommit(self._record, self._notify, self._log_event, self._log_head)
        stamp: Callable[[], bytes | None] | None = getattr(self.recorder, "change_stamp", None)
        self._stamp = stamp or (lambda: None)
        self._position_seen: tuple[bytes, int] | None = None
        self._aggregates = AggregateCache(
            lambda i: self.repository.get(i, projector_func=apply_events),
            lambda i, v: self.events.get(originator_id=i, gt=v),
            stamp=self._stamp,
        )

    # --- infrastructure helpers ----------------------------------------------------

    def _get(self, cls: type[A], kind: str, id_: UUID | str, *, shared: bool = False) -> A:
        """The aggregate, current; a copy of the caller's own unless ``shared``, for reads
        that change nothing (a shared aggregate must never be changed)."""
        try:
            uid = id_ if isinstance(id_, UUID) else UUID(str(id_))
        except ValueError:
            raise NotFound(kind, id_) from None
        try:
            agg: object = self._aggregates.get(uid, copy=not shared)
        except AggregateNotFoundError:
            raise NotFound(kind, id_) from None
        if not isinstance(agg, cls):
            raise NotFound(kind, id_)
        return agg

    def _find(self, cls: type[A], id_: UUID, *, shared: bool = False) -> A | None:
        try:
            agg: object = self._aggregates.get(id_, copy=not shared)
        except AggregateNotFoundError:
            return None
        return agg if isinstance(agg, cls) else None

    def _save(self, *items: Aggregate | DomainEvent | LogEntry | None) -> int:
        """Record the items' new events, in a commit shared with concurrent commands."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        entry = None
        for item in items:
            # the library's collect_events tells aggregates from events by runtime protocols,
            # whose checks cost more than the rest of collecting: our classes are known
            if isinstance(item, LogEntry):
                entry = item
            elif isinstance(item, Aggregate):
                processing.events.extend(item.collect_events())
                processing.aggregates[item.id] = item
            elif isinstance(item, DomainEvent):
                processing.events.append(item)
            elif item is not None:
                processing.collect_events(item)
        if not processing.events and entry is None:
            return self.last_position()
        recordings = self._group.save(processing, entry)
        return max(r.notification.id for r in recordings)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Record the events; a store that can number a sequence at commit (PostgreSQL)
        numbers the log entries there, so that processes appending to one meeting's log
        never conflict on its versions (the events are given the versions recorded)."""
        insert = getattr(self.recorder, "insert_numbered_events", None)
        events = processing_event.events
        if (
            insert is None
            or processing_event.tracking is not None
            or processing_event.saved_kwargs
            or not any(type(e) is ProposalLogged for e in events)
        ):
            return super()._record(processing_event)
        stored = [self.mapper.to_stored_event(e) for e in events]
        recordings: list[Recording[UUID]] = []
        for event, s, (position, version) in zip(
            events, stored, insert(stored, NUMBERED_TOPICS), strict=True
        ):
            if version != event.originator_version:
                object.__setattr__(event, "originator_version", version)
            recordings.append(
                Recording(
                    event,
                    Notification(
                        id=position,
                        originator_id=s.originator_id,
                        originator_version=version,
                        topic=s.topic,
                        state=s.state,
                    ),
                )
            )
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        return recordings

    def _log_event(self, entry: LogEntry, version: int) -> DomainEvent:
        log = self._proposal_log(entry.meeting_id)
        return log.trigger_event(
            next_originator_version=version,
            proposal_id=entry.proposal_id,
            theme=entry.theme,
            actor=entry.actor,
        )

    def _log_head(self, meeting_id: UUID) -> int:
        last = self._proposal_log(meeting_id).get_last()
        return last.originator_version if last is not None else 0

    def last_position(self) -> int:
        """The position of the last event recorded, by any process: read again only when
        the store's change stamp says that something was recorded since."""
        stamp = self._stamp()
        seen = self._position_seen
        if stamp is not None and seen is not None and seen[0] == stamp:
            return seen[1]
        position = self.recorder.max_notification_id() or 0
        self._position_seen = None if stamp is None else (stamp, position)
        return position

    def _meeting_lock(self, meeting_id: str) -> SharedExclusiveLock:
        """Decisions on a meeting's proposals hold it shared; forwarding holds it alone, so
        that nothing changes between compiling the outcome and recording it."""
        with self._locks_lock:
            return self._meeting_locks.setdefault(meeting_id, SharedExclusiveLock())

    def _forwardings(self, meeting_id: UUID | str) -> int:
        """How many times this process has held the meeting's lock alone (forwarding it):
        read before the meeting and again under its shared lock, the same count says that
        no forwarding in this process came in between (see ``draft_proposal``)."""
        try:
            key = str(meeting_id if isinstance(meeting_id, UUID) else UUID(str(meeting_id)))
        except ValueError:
            return 0
        with self._locks_lock:
            lock = self._meeting_locks.get(key)
        return 0 if lock is None else lock.exclusive_holds

    def _meeting_under_lock(self, meeting: Meeting, forwardings: int) -> Callable[[], Meeting]:
        """For a command under the meeting's shared lock, called on each attempt: the meeting
        as its access check read it, or read again on a retry or when this process has
        forwarded it since the check (``forwardings`` as ``_forwardings`` gave it then)."""
        attempts = 0

        def current() -> Meeting:
            nonlocal attempts
            attempts += 1
            if attempts > 1 or self._forwardings(meeting.id) != forwardings:
                return self._get(Meeting, "meeting", meeting.id, shared=True)
            return meeting

        return current

    def _change(
        self,
        cls: type[A],
        kind: str,
        id_: UUID | str,
        expected_version: int | None,
        decide: Callable[[A], list[Aggregate | DomainEvent] | None],
    ) -> tuple[A, int]:
        """Load, decide and save; retry on a concurrent change unless a version was expected.

        Commands on one aggregate take turns in this process; a conflict can then only come
        from another process."""
        for _ in range(RETRIES):
            with self._aggregate_locks.hold(str(id_).lower()):
                agg = self._get(cls, kind, id_)
                if expected_version is not None and agg.version != expected_version:
                    raise VersionConflict(kind, id_, expected_version, agg.version)
                others = decide(agg) or []
                try:
                    return agg, self._save(agg, *others)
                except IntegrityError:
                    if expected_version is not None:
                        raise VersionConflict(kind, id_, expected_version, None) from None
        raise VersionConflict(kind, id_, None, None)

    def _create_once(
        self,
        cls: type[A],
        kind: str,
        actor: str,
        scope: str,
        key: str | None,
        payload: dict[str, Any],
        build: Callable[[UUID | None, str | None], list[Aggregate | DomainEvent]],
    ) -> tuple[A, int, bool]:
        """Create an object, once per idempotency key: a retry returns the first result."""
        if key is None:
            items = build(None, None)
            return items[0], self._save(*items), True  # type: ignore[return-value]
        if not isinstance(key, str) or not 0 < len(key) <= 255:
            raise InvalidInput("Idempotency-Key must be 1 to 255 characters", "Idempotency-Key")
        hashed = request_hash(payload)
        id_ = uuid5(IDEMPOTENCY_NAMESPACE, f"{kind}|{actor}|{scope}|{key}")
        for _ in range(RETRIES):
            existing = self._find(cls, id_)
            if existing is not None:
                if getattr(existing, "request_hash", None) != hashed:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used before with a different request"
                    )
                return existing, self.last_position(), False
            items = build(id_, hashed)
            try:
                return items[0], self._save(*items), True  # type: ignore[return-value]
            except IntegrityError:
                continue
        raise VersionConflict(kind, id_, None, None)

    @staticmethod
    def _idempotency(
        kind: str, actor: str, scope: str, key: str | None, payload: dict[str, Any]
    ) -> dict[str, str] | None:
        """What the created event records of its Idempotency-Key: the hash of the key in its
        scope (never the key) and the hash of the request."""
        if key is None:
            return None
        if not isinstance(key, str) or not 0 < len(key) <= 255:
            raise InvalidInput("Idempotency-Key must be 1 to 255 characters", "Idempotency-Key")
        scoped = hashlib.sha256(f"{kind}|{actor}|{scope}|{key}".encode()).hexdigest()
        return {"key": scoped, "request": request_hash(payload)}

    @staticmethod
    def _first_use(agg: Aggregate, mark: dict[str, str] | None) -> int | None:
        """The version of the event recorded with this key, if any; a different request with
        the same key is refused."""
        if mark is None:
            return None
        found = recorded(agg, mark["key"])
        if found is None:
            return None
        if found[0] != mark["request"]:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used before with a different request"
            )
        return found[1]

    def _change_once(
        self,
        cls: type[A],
        kind: str,
        id_: UUID | str,
        expected_version: int | None,
        mark: dict[str, str] | None,
        decide: Callable[[A], list[Aggregate | DomainEvent] | None],
    ) -> tuple[A, int, bool]:
        """``_change``, once per idempotency key: a retry gets the aggregate as the first
        request left it, the position of that request's event, and ``False``. The key is
        looked up before the version is checked, so a retry answers as the first did."""

        def replay(version: int) -> tuple[A, int, bool]:
            uid = self._get(cls, kind, id_).id
            agg: A = self.repository.get(uid, version=version, projector_func=apply_events)
            return agg, self.event_positions(uid)[version], False

        def earlier() -> int | None:
            return self._first_use(self._get(cls, kind, id_), mark)

        if mark is not None and (version := earlier()) is not None:
            return replay(version)

        def checked(agg: A) -> list[Aggregate | DomainEvent] | None:
            version = self._first_use(agg, mark)
            if version is not None:
                raise _Replay(version)
            return decide(agg)

        try:
            agg, position = self._change(cls, kind, id_, expected_version, checked)
        except _Replay as done:
            return replay(done.version)
        except VersionConflict:
            # a concurrent request with the same key may be the change that won
            if mark is None or (version := earlier()) is None:
                raise
            return replay(version)
        return agg, position, True

    # --- people ------------------------------------------------------------------

    def authenticate(self, token: str) -> User:
        """The user holding this bearer token; revoked and unknown tokens are refused.

        The user returned may be shared with other callers: treat it as read-only."""
        if not token or len(token) > 512:
            raise Unauthenticated("invalid bearer token")
        hashed = token_hash(token)
        # a token's index never changes once issued, so whose token it is is read once; the
        # user is read on every request (one query for what is newer than the cached copy),
        # so a revocation recorded by any process refuses the token at once
        holder = self._token_holders.get(hashed)
        if holder is None:
            index = self._find(ApiToken, token_index_id(hashed), shared=True)
            if index is None:
                raise Unauthenticated("invalid bearer token")
            holder = UUID(index.user_id)
            if len(self._token_holders) >= TOKEN_HOLDERS_MAX:
                self._token_holders.clear()
            self._token_holders[hashed] = holder
        user = self._find(User, holder, shared=True)
        if user is None or not user.holds(hashed):
            raise Unauthenticated("invalid bearer token")
        return user

    def _user(self, actor: str) -> Person | None:
        """The acting user; ``None`` for the operator at the command line.

        What a user registered with never changes, so it is loaded once per process.
        """
        if actor == SYSTEM:
            return None
        found = self._people.get(actor)
        if found is None:
            user = self._get(User, "user", actor)
            found = Person(user.id, user.name, user.delegation, user.secretariat, user.ministerial)
            if len(self._people) >= PEOPLE_MAX:
                self._people.clear()
            self._people[actor] = self._people[str(user.id)] = found
        return found

    def _person(self, user_id: str) -> Person | None:
        """A user's registered facts, or ``None`` when there is no such user."""
        try:
            return self._user(user_id)
        except NotFound:
            return None

    def require_secretariat(self, actor: str, action: str) -> None:
        user = self._user(actor)
        if user is not None and not user.secretariat:
            raise Forbidden(f"only the secretariat may {action}")

    def get_user(self, user_id: UUID | str) -> User:
        return self._get(User, "user", user_id)

    def create_user(
        self,
        actor: str,
        name: str,
        delegation: str,
        secretariat: bool = False,
        ministerial: bool = False,
        idempotency_key: str | None = None,
    ) -> Result:
        self.require_secretariat(actor, "create users")
        rules.text(name, "name", rules.NAME_MAX)
        rules.text(delegation, "delegation", rules.NAME_MAX)
        if not isinstance(secretariat, bool) or not isinstance(ministerial, bool):
            raise InvalidInput("secretariat and ministerial must be booleans")
        payload: dict[str, Any] = {
            "name": name,
            "delegation": delegation,
            "secretariat": secretariat,
            "ministerial": ministerial,
        }
        issued: dict[str, str] = {}

        def build(id_: UUID | None, hashed: str | None) -> list[Aggregate | DomainEvent]:
            user = new(User, User.Registered, id_, actor=actor, request_hash=hashed, **payload)
            token, th = user.issue_token(actor)
            issued["token"] = token
            index = self._token_index(actor, user, th)
            return [user, index]

        user, position, created = self._create_once(
            User, "user", actor, "users", idempotency_key, payload, build
        )
        token = issued["token"] if created else None
        return Result(user.as_dict(), position, created, {"token": token})

    @staticmethod
    def _token_index(actor: str, user: User, hashed: str) -> ApiToken:
        return new(
            ApiToken,
            ApiToken.Issued,
            token_index_id(hashed),
            actor=actor,
            user_id=str(user.id),
            token_hash=hashed,
        )

    def issue_token(
        self, actor: str, user_id: UUID | str, idempotency_key: str | None = None
    ) -> Result:
        """Issue a token. Only its hash is stored, so a retry with the same key cannot show
        it again: it is refused (``AlreadyIssued``) and records nothing."""
        self.require_secretariat(actor, "issue tokens")
        mark = self._idempotency("token", actor, str(user_id), idempotency_key, {})
        issued: dict[str, str] = {}

        def decide(user: User) -> list[Aggregate | DomainEvent]:
            token, th = user.issue_token(actor, mark)
            issued["token"] = token
            return [self._token_index(actor, user, th)]

        user, position, created = self._change_once(User, "user", user_id, None, mark, decide)
        if not created:
            raise AlreadyIssued(
                f"a token was already issued for this Idempotency-Key (at position {position});"
                " tokens are shown only once, so it cannot be shown again: if it was lost,"
                " revoke the user's tokens and issue a new one with a new key"
            )
        return Result(user.as_dict(), position, True, {"token": issued["token"]})

    def revoke_tokens(self, actor: str, user_id: UUID | str) -> Result:
        self.require_secretariat(actor, "revoke tokens")

        def decide(user: User) -> list[Aggregate | DomainEvent]:
            user.revoke_tokens(actor)
            return []

        user, position = self._change(User, "user", user_id, None, decide)
        return Result(user.as_dict(), position, False)

    # --- meetings ----------------------------------------------------------------

    def can_read_meeting(self, actor: str, meeting: Meeting) -> bool:
        user = self._user(actor)
        if user is None or user.secretariat or user.ministerial:
            return True
        return str(user.id) in meeting.participants

    def get_meeting(self, actor: str, meeting_id: UUID | str) -> Meeting:
        """The meeting, when the actor may read it; otherwise it is not found."""
        meeting = self._get(Meeting, "meeting", meeting_id, shared=True)
        if not self.can_read_meeting(actor, meeting):
            raise NotFound("meeting", meeting_id)
        return meeting

    def schedule_meeting(
        self,
        actor: str,
        title: str,
        venue: str,
        starts_on: str,
        ends_on: str,
        hosts: Sequence[str],
        ministerial: str,
        themes: Sequence[dict[str, str]],
        idempotency_key: str | None = None,
    ) -> Result:
        self.require_secretariat(actor, "schedule meetings")
        rules.text(title, "title", rules.TITLE_MAX)
        rules.text(venue, "venue", rules.NAME_MAX)
        start = rules.iso_date(starts_on, "starts_on")
        end = rules.iso_date(ends_on, "ends_on")
        if end < start:
            raise InvalidInput("ends_on is before starts_on", "ends_on")
        if not hosts or len(hosts) > 20:
            raise InvalidInput("hosts must name 1 to 20 hosts", "hosts")
        for host in hosts:
            rules.text(host, "hosts", rules.NAME_MAX)
        rules.key(ministerial, "ministerial")
        if not themes or len(themes) > 20:
            raise InvalidInput("themes must list 1 to 20 themes", "themes")
        clean_themes = []
        for theme in themes:
            if not isinstance(theme, dict) or set(theme) != {"key", "title"}:
                raise InvalidInput("each theme is {key, title}", "themes")
            clean_themes.append(
                {
                    "key": rules.key(theme["key"], "themes.key"),
                    "title": rules.text(theme["title"], "themes.title", rules.TITLE_MAX),
                }
            )
        if len({t["key"] for t in clean_themes}) != len(clean_themes):
            raise InvalidInput("theme keys must be unique", "themes")
        payload: dict[str, Any] = {
            "title": title,
            "venue": venue,
            "starts_on": start,
            "ends_on": end,
            "hosts": list(hosts),
            "ministerial": ministerial,
            "themes": clean_themes,
        }

        def build(id_: UUID | None, hashed: str | None) -> list[Aggregate | DomainEvent]:
            meeting = new(
                Meeting, Meeting.Scheduled, id_, actor=actor, request_hash=hashed, **payload
            )
            return [meeting]

        meeting, position, created = self._create_once(
            Meeting, "meeting", actor, "meetings", idempotency_key, payload, build
        )
        return Result(meeting.as_dict(), position, created)

    def _meeting_command(
        self,
        actor: str,
        meeting_id: UUID | str,
        expected_version: int | None,
        decide: Callable[[Meeting], list[Aggregate | DomainEvent] | None],
    ) -> Result:
        meeting, position = self._change(Meeting, "meeting", meeting_id, expected_version, decide)
        return Result(meeting.as_dict(), position, False)

    def check_meeting_action(self, actor: str, meeting_id: UUID | str, action: str) -> Meeting:
        """Existence, read access, then role: the checks of a meeting command, in that order."""
        meeting = self.get_meeting(actor, meeting_id)
        self.require_secretariat(actor, action)
        return meeting

    def open_meeting(
        self, actor: str, meeting_id: UUID | str, expected_version: int | None = None
    ) -> Result:
        self.check_meeting_action(actor, meeting_id, "open a meeting")
        return self._meeting_command(actor, meeting_id, expected_version, lambda m: m.open(actor))

    def close_meeting(
        self, actor: str, meeting_id: UUID | str, expected_version: int | None = None
    ) -> Result:
        self.check_meeting_action(actor, meeting_id, "close a meeting")
        return self._meeting_command(actor, meeting_id, expected_version, lambda m: m.close(actor))

    def reopen_meeting(
        self,
        actor: str,
        meeting_id: UUID | str,
        reason: str,
        expected_version: int | None = None,
    ) -> Result:
        self.check_meeting_action(actor, meeting_id, "reopen a meeting")
        rules.reason(reason)
        return self._meeting_command(
            actor, meeting_id, expected_version, lambda m: m.reopen(actor, reason)
        )

    def enrol_participant(
        self,
        actor: str,
        meeting_id: UUID | str,
        user_id: UUID | str,
        role: str,
        themes: Sequence[str],
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        self.check_meeting_action(actor, meeting_id, "enrol participants")
        try:
            user = self._get(User, "user", user_id)
        except NotFound:
            raise InvalidInput(f"no user {user_id} to enrol", "user_id") from None
        if not isinstance(themes, list | tuple):
            raise InvalidInput("themes must be a list", "themes")
        payload = {"user_id": str(user_id), "role": role, "themes": list(themes)}
        mark = self._idempotency("participant", actor, str(meeting_id), idempotency_key, payload)
        meeting, position, created = self._change_once(
            Meeting,
            "meeting",
            meeting_id,
            expected_version,
            mark,
            lambda m: m.enrol(actor, str(user.id), role, list(themes), mark),
        )
        return Result(meeting.as_dict(), position, created)

    def forward_meeting(
        self,
        actor: str,
        meeting_id: UUID | str,
        compile_outcome: Callable[[Meeting], Forwarding],
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        """Record the compiled outcome as the meeting's next forwarded version; a retry with
        the same Idempotency-Key answers with the version that it recorded."""
        checked = self.check_meeting_action(actor, meeting_id, "forward a meeting")
        lock = self._meeting_lock(str(checked.id))  # the id as decisions spell it
        mark = self._idempotency("forward", actor, str(meeting_id), idempotency_key, {})
        record: dict[str, Any] = {}

        def decide(meeting: Meeting) -> list[Aggregate | DomainEvent]:
            if meeting.status != CLOSED:
                meeting.forward(actor, "", "", 0, "", None)  # raises the lifecycle refusal
            outcome = compile_outcome(meeting)
            record.update(
                meeting.forward(
                    actor,
                    outcome.document,
                    outcome.sha256,
                    outcome.document_position,
                    outcome.signature,
                    self.chain.head(outcome.document_position),
                    mark,
                )
            )
            return []

        with lock.exclusive():
            meeting, position, created = self._change_once(
                Meeting, "meeting", meeting_id, expected_version, mark, decide
            )
        if not created:
            record = meeting.outcome_versions[-1]
        result = Result(meeting.as_dict(), position, created)
        result.extra["record"] = self.version_record(record)
        return result

    @staticmethod
    def version_record(record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        at = out.get("forwarded_at")
        if isinstance(at, datetime):
            out["forwarded_at"] = iso(at)
        return out

    def get_forwarded_document(
        self, actor: str, meeting_id: UUID | str, version: int
    ) -> tuple[str, str]:
        """The canonical JSON and signature recorded when this version was forwarded."""
        meeting = self.get_meeting(actor, meeting_id)
        for ev in self.events.get(meeting.id):
            if isinstance(ev, Meeting.OutcomeForwarded) and ev.version_number == version:
                return ev.document, ev.signature
        raise NotFound("outcome version", version)

    @staticmethod
    def require_chair(actor: str, meeting: Meeting, theme: str) -> None:
        """The theme must exist (else not found) and the actor must chair it (else forbidden)."""
        if theme not in meeting.theme_keys:
            raise NotFound("theme", theme)
        if actor != SYSTEM and not meeting.has_role(actor, "chair", theme):
            raise Forbidden(f"only a chair of the theme {theme} may order its recommendations")

    def order_theme(
        self,
        actor: str,
        meeting_id: UUID | str,
        theme: str,
        proposal_ids: Sequence[str],
        expected_version: int | None = None,
    ) -> Result:
        meeting = self.get_meeting(actor, meeting_id)
        self.require_chair(actor, meeting, theme)
        ids = [str(p) for p in proposal_ids]

        def decide(m: Meeting) -> list[Aggregate | DomainEvent]:
            approved = {str(p.id) for p in self._proposals_of(m, theme) if p.status == APPROVED}
            m.order_theme(actor, theme, ids, approved)
            return []

        return self._meeting_command(actor, meeting_id, expected_version, decide)

    # --- proposals ---------------------------------------------------------------

    def _proposal_log(self, meeting_id: UUID | str) -> EventSourcedLog[ProposalLogged]:
        return EventSourcedLog(
            self.events, uuid5(PROPOSAL_LOG_NAMESPACE, str(meeting_id)), ProposalLogged
        )

    def proposal_ids(self, meeting_id: UUID | str) -> Iterator[ProposalLogged]:
        return self._proposal_log(meeting_id).get()

    def _proposals_of(self, meeting: Meeting, theme: str) -> list[Proposal]:
        return [
            self._get(Proposal, "proposal", entry.proposal_id)
            for entry in self.proposal_ids(meeting.id)
            if entry.theme == theme
        ]

    def get_proposal(self, actor: str, proposal_id: UUID | str) -> tuple[Proposal, Meeting]:
        """The proposal and its meeting, when the actor may read them."""
        proposal = self._get(Proposal, "proposal", proposal_id, shared=True)
        meeting = self._get(Meeting, "meeting", proposal.meeting_id, shared=True)
        if not self.can_read_meeting(actor, meeting):
            raise NotFound("proposal", proposal_id)
        return proposal, meeting

    def proposal_state(self, proposal: Proposal) -> dict[str, Any]:
        state = proposal.as_dict()
        proposer = self._person(proposal.proposer_id)
        state["proposer"] = {
            "id": proposal.proposer_id,
            "name": proposer.name if proposer else None,
            "delegation": proposer.delegation if proposer else None,
        }
        del state["proposer_id"]
        return state

    @staticmethod
    def require_rapporteur(actor: str, meeting: Meeting) -> None:
        if actor != SYSTEM and not meeting.has_role(actor, "rapporteur"):
            raise Forbidden("only a rapporteur of this meeting may propose")

    def check_draft(self, actor: str, meeting_id: UUID | str) -> DraftAccess:
        """The meeting, if the actor may draft in it: it exists and they may read it, and
        they are one of its rapporteurs."""
        forwardings = self._forwardings(meeting_id)  # before the meeting is read
        meeting = self.get_meeting(actor, meeting_id)
        self.require_rapporteur(actor, meeting)
        return DraftAccess(actor, meeting, forwardings)

    def draft_proposal(
        self,
        actor: str,
        meeting_id: UUID | str,
        theme: str,
        title: str,
        text: str,
        rationale: str | None = None,
        submit: bool = False,
        idempotency_key: str | None = None,
        access: DraftAccess | None = None,
    ) -> Result:
        """Draft a proposal in the meeting, submitted at once with ``submit``. ``access``
        is the caller's ``check_draft`` of the same meeting, if it made one."""
        if (
            access is None
            or access.actor != actor
            or str(access.meeting.id) != str(meeting_id).lower()
        ):
            access = self.check_draft(actor, meeting_id)
        meeting, forwardings = access.meeting, access.forwardings
        if not isinstance(theme, str):
            raise InvalidInput("theme must be a string", "theme")
        meeting.require_theme(theme)
        if not meeting.has_role(actor, "rapporteur", theme):
            raise Forbidden(f"you are not a rapporteur of the theme {theme}")
        rules.text(title, "title", rules.TITLE_MAX)
        rules.text(text, "text", rules.TEXT_MAX)
        rules.optional_text(rationale, "rationale", rules.TEXT_MAX)
        if not isinstance(submit, bool):
            raise InvalidInput("submit must be a boolean", "submit")
        payload = {
            "theme": theme,
            "title": title,
            "text": text,
            "rationale": rationale,
            "submit": submit,
        }

        current_meeting = self._meeting_under_lock(meeting, forwardings)

        def build(id_: UUID | None, hashed: str | None) -> list[Aggregate | DomainEvent]:
            # checked only when creating: a retry of a recorded draft returns it whatever
            # the meeting's state now
            current_meeting().require_status("draft", OPEN)
            proposal = new(
                Proposal,
                Proposal.Drafted,
                id_,
                actor=actor,
                meeting_id=str(meeting.id),
                theme=theme,
                title=title,
                text=text,
                rationale=rationale,
                request_hash=hashed,
            )
            if submit:
                proposal.submit(actor)
            entry = LogEntry(meeting.id, str(proposal.id), theme, actor)
            return [proposal, entry]  # type: ignore[list-item]

        with self._meeting_lock(str(meeting.id)).shared():
            for _ in range(RETRIES):
                try:
                    proposal, position, created = self._create_once(
                        Proposal,
                        "proposal",
                        actor,
                        str(meeting.id),
                        idempotency_key,
                        payload,
                        build,
                    )
                    break
                except VersionConflict:
                    continue
                except IntegrityError:
                    continue
            else:
                raise VersionConflict("meeting", meeting.id, None, None)
        return Result(self.proposal_state(proposal), position, created)

    def check_proposal_action(
        self, actor: str, proposal_id: UUID | str, action: str
    ) -> tuple[Proposal, Meeting]:
        """Existence, read access, then role and ownership, in that order."""
        access = self.check_proposal(actor, proposal_id, action)
        return access.proposal, access.meeting

    def _proposal_access(
        self, actor: str, proposal_id: UUID | str, action: str, given: ProposalAccess | None
    ) -> ProposalAccess:
        """``given`` when it is the caller's check of this action by this actor on this
        proposal; otherwise the check, made now."""
        if (
            given is not None
            and given.actor == actor
            and given.action == action
            and str(given.proposal.id) == str(proposal_id).lower()
        ):
            return given
        return self.check_proposal(actor, proposal_id, action)

    def check_proposal(self, actor: str, proposal_id: UUID | str, action: str) -> ProposalAccess:
        """Existence, read access, then role and ownership, in that order; the proposal and
        its meeting as read, for the command of ``action``."""
        proposal = self._get(Proposal, "proposal", proposal_id, shared=True)
        forwardings = self._forwardings(proposal.meeting_id)  # before the meeting is read
        meeting = self._get(Meeting, "meeting", proposal.meeting_id, shared=True)
        if not self.can_read_meeting(actor, meeting):
            raise NotFound("proposal", proposal_id)
        access = ProposalAccess(actor, action, proposal, meeting, forwardings)
        if actor == SYSTEM:
            return access
        if action in ("revise", "submit", "withdraw"):
            if proposal.proposer_id != actor:
                raise Forbidden(f"only the proposer may {action} this proposal")
            if not meeting.has_role(actor, "rapporteur", proposal.theme):
                raise Forbidden(f"you are no longer a rapporteur of the theme {proposal.theme}")
        elif action in ("approve", "reject", "request_revision", "merge", "reconsider"):
            if not meeting.has_role(actor, "chair", proposal.theme):
                raise Forbidden(f"only a chair of the theme {proposal.theme} may decide on it")
        elif action == "comment":
            if meeting.role_of(actor) not in ("chair", "rapporteur"):
                raise Forbidden("only chairs and rapporteurs of the meeting may comment")
        elif action == "endorse":
            if meeting.role_of(actor) != "rapporteur":
                raise Forbidden("only rapporteurs of the meeting may endorse")
        else:  # pragma: no cover - a programming error
            raise ValueError(action)
        return access

    def _proposal_command(
        self,
        access: ProposalAccess,
        proposal_id: UUID | str,
        action: str,
        expected_version: int | None,
        meeting_states: tuple[str, ...],
        decide: Callable[[Proposal], list[Aggregate | DomainEvent] | None],
        mark: dict[str, str] | None = None,
    ) -> Result:
        """Decide on the proposal under its meeting's lock and record the decision.

        The caller must first check access (``check_proposal`` or ``_proposal_access``:
        access is checked before input, so that 404 and 403 answer before 422) and pass
        what it returns. The proposal is read again under the lock; the meeting, for its
        status, only if this process forwarded it since the check, or on a retry."""
        current_meeting = self._meeting_under_lock(access.meeting, access.forwardings)

        def checked(proposal: Proposal) -> list[Aggregate | DomainEvent]:
            proposal.check(action)
            current_meeting().require_status(action.replace("_", " "), *meeting_states)
            return decide(proposal) or []

        with self._meeting_lock(str(access.meeting.id)).shared():
            proposal, position, created = self._change_once(
                Proposal, "proposal", proposal_id, expected_version, mark, checked
            )
        return Result(self.proposal_state(proposal), position, created and mark is not None)

    def revise_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        title: str | None = None,
        text: str | None = None,
        rationale: str | None = None,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "revise", access)
        if title is None and text is None and rationale is None:
            raise InvalidInput("give at least one of title, text, rationale")
        if title is not None:
            rules.text(title, "title", rules.TITLE_MAX)
        if text is not None:
            rules.text(text, "text", rules.TEXT_MAX)
        rules.optional_text(rationale, "rationale", rules.TEXT_MAX)
        return self._proposal_command(
            access,
            proposal_id,
            "revise",
            expected_version,
            (OPEN,),
            lambda p: p.revise(actor, title, text, rationale),
        )

    def submit_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "submit", access)
        return self._proposal_command(
            access,
            proposal_id,
            "submit",
            expected_version,
            (OPEN,),
            lambda p: p.submit(actor),
        )

    def withdraw_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        reason: str | None = None,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "withdraw", access)
        rules.optional_text(reason, "reason", rules.REASON_MAX)
        return self._proposal_command(
            access,
            proposal_id,
            "withdraw",
            expected_version,
            (OPEN, CLOSED),
            lambda p: p.withdraw(actor, reason),
        )

    def approve_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        final_text: str | None = None,
        note: str | None = None,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "approve", access)
        if final_text is not None:
            rules.text(final_text, "final_text", rules.TEXT_MAX)
        rules.optional_text(note, "note", rules.REASON_MAX)
        return self._proposal_command(
            access,
            proposal_id,
            "approve",
            expected_version,
            (OPEN, CLOSED),
            lambda p: p.approve(actor, final_text, note),
        )

    def reject_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        reason: str,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "reject", access)
        rules.reason(reason)
        return self._proposal_command(
            access,
            proposal_id,
            "reject",
            expected_version,
            (OPEN, CLOSED),
            lambda p: p.reject(actor, reason),
        )

    def request_revision(
        self,
        actor: str,
        proposal_id: UUID | str,
        reason: str,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "request_revision", access)
        rules.reason(reason)
        return self._proposal_command(
            access,
            proposal_id,
            "request_revision",
            expected_version,
            (OPEN, CLOSED),
            lambda p: p.request_revision(actor, reason),
        )

    def reconsider_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        reason: str,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "reconsider", access)
        rules.reason(reason)
        return self._proposal_command(
            access,
            proposal_id,
            "reconsider",
            expected_version,
            (OPEN, CLOSED),
            lambda p: p.reconsider(actor, reason),
        )

    def merge_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        into: UUID | str,
        reason: str,
        expected_version: int | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "merge", access)
        rules.reason(reason)
        try:
            target_id = UUID(str(into))
            self._get(Proposal, "proposal", target_id)
        except (ValueError, NotFound):
            raise InvalidInput(f"no proposal {into} to merge into", "into") from None

        def decide(p: Proposal) -> list[Aggregate | DomainEvent]:
            target = self._get(Proposal, "proposal", target_id)
            seen = {str(p.id)}
            cursor: Proposal | None = target
            while cursor is not None and cursor.merged_into is not None:
                if cursor.merged_into in seen:
                    raise RuleViolation("merging into that proposal would make a cycle")
                seen.add(cursor.merged_into)
                cursor = self._find(Proposal, UUID(cursor.merged_into))
            p.merge_into(actor, target, reason)
            return []

        return self._proposal_command(
            access, proposal_id, "merge", expected_version, (OPEN, CLOSED), decide
        )

    def comment_on_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        text: str,
        idempotency_key: str | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        """Comment; ``extra["comment"]`` is the comment (the first one, on a retry)."""
        access = self._proposal_access(actor, proposal_id, "comment", access)
        rules.text(text, "text", rules.TEXT_MAX)
        mark = self._idempotency(
            "comment", actor, str(proposal_id), idempotency_key, {"text": text}
        )
        made: dict[str, Any] = {}

        def decide(p: Proposal) -> None:
            p.comment(actor, str(uuid.uuid4()), text, mark)
            made.update(p.comments[-1])

        result = self._proposal_command(
            access, proposal_id, "comment", None, (OPEN, CLOSED), decide, mark
        )
        if mark is not None and not result.created:
            # a retry: the first comment is the last one as of the version it made
            first: Proposal = self.repository.get(
                UUID(result.state["id"]),
                version=result.state["version"],
                projector_func=apply_events,
            )
            made.update(first.comments[-1])
        result.created = mark is None or result.created
        result.extra["comment_id"] = made["id"]
        result.extra["comment"] = made
        return result

    def endorse_proposal(
        self,
        actor: str,
        proposal_id: UUID | str,
        delegation: str,
        idempotency_key: str | None = None,
        access: ProposalAccess | None = None,
    ) -> Result:
        access = self._proposal_access(actor, proposal_id, "endorse", access)
        proposal = access.proposal
        rules.text(delegation, "delegation", rules.NAME_MAX)
        payload = {"delegation": delegation}
        mark = self._idempotency("endorsement", actor, str(proposal_id), idempotency_key, payload)
        self._first_use(proposal, mark)  # a reused key answers before the delegation rules
        user = self._user(actor)
        if user is not None and delegation != user.delegation:
            raise Forbidden("a rapporteur endorses only in the name of their own delegation")
        proposer = self._person(proposal.proposer_id)
        if proposer is not None and proposer.delegation == delegation:
            raise RuleViolation(f"{delegation} is the proposing delegation")
        result = self._proposal_command(
            access,
            proposal_id,
            "endorse",
            None,
            (OPEN, CLOSED),
            lambda p: p.endorse(actor, delegation, mark),
            mark,
        )
        result.created = mark is None or result.created
        return result

    # --- the record --------------------------------------------------------------

    def history(self, actor: str, proposal_id: UUID | str) -> list[dict[str, Any]]:
        """Every event of the proposal, oldest first, with its position in the log."""
        proposal, _ = self.get_proposal(actor, proposal_id)
        positions = self.event_positions(proposal.id)
        return [
            self.describe(ev, positions.get(ev.originator_version, 0))
            for ev in self.events.get(proposal.id)
        ]

    def describe(self, ev: Any, position: int) -> dict[str, Any]:
        return {
            "position": position,
            "type": event_type(ev),
            "at": iso(ev.timestamp),
            "actor": getattr(ev, "actor", None),
            "aggregate_id": str(ev.originator_id),
            "data": event_data(ev),
        }

    def event_positions(self, originator_id: UUID) -> dict[int, int]:
        """Map each stored version of an aggregate to its position in the log."""
        recorder: Any = self.recorder
        datastore = getattr(recorder, "datastore", None)
        table = getattr(recorder, "events_table_name", "stored_events")
        if datastore is not None and hasattr(datastore, "schema"):
            from psycopg.sql import SQL, Identifier

            stmt = SQL(
                "SELECT originator_version, notification_id FROM {}.{} WHERE originator_id=%s"
            ).format(Identifier(datastore.schema), Identifier(table))
            with datastore.transaction(commit=False) as curs:
                curs.execute(stmt, (originator_id,))
                return {r["originator_version"]: r["notification_id"] for r in curs.fetchall()}
        if datastore is not None:
            with datastore.transaction(commit=False) as c:
                c.execute(
                    f"SELECT originator_version, rowid FROM {table} WHERE originator_id=?",
                    (originator_id.hex,),
                )
                return {r[0]: r[1] for r in c.fetchall()}
        return {
            n.originator_version: n.id
            for n in self._scan_notifications()
            if n.originator_id == originator_id
        }

    def _scan_notifications(self) -> Iterator[Notification]:
        start = 1
        while True:
            batch = self.recorder.select_notifications(start, 1000)
            if not batch:
                return
            yield from batch
            start = batch[-1].id + 1

    def feed(self, since: int, limit: int) -> list[dict[str, Any]]:
        """Events whose position is greater than ``since``, oldest first."""
        notes = self.recorder.select_notifications(since, limit, inclusive_of_start=False)
        return [self.describe(self.mapper.to_domain_event(n), n.id) for n in notes]
