"""The projection: turns batches of notifications into view rows, written in one transaction.

Rows touched by a batch are read once (or found in a bounded in-memory working set, valid
while this projection is the views' only writer), changed in memory event by event, and
written once, together with the new tracking position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from eventsourcing.persistence import Mapper

from domain.application import ProposalLogged
from domain.audit import SHORT, event_digest
from domain.meeting import Meeting
from domain.proposal import MeetingProposals, Proposal
from domain.users import ApiToken, User
from projections.compile import PROPOSAL_HANDLERS, Person, RecommendationsFold, id_text
from projections.decoding import EventDecoder, Note, NoteRow
from projections.views import (
    COMMENT_COLUMNS,
    MEETING_COLUMNS,
    MEETING_JSON,
    OUTCOME_COLUMNS,
    PARTICIPANT_COLUMNS,
    POSITION_CHUNK_BITS,
    PROPOSAL_COLUMNS,
    PROPOSAL_JSON,
    USER_COLUMNS,
    ReadModel,
    Statement,
    insert,
    upsert,
)

log = logging.getLogger("prepmeet.projections")

CACHE_LIMIT = 4_000
"""Rows kept in memory between batches, beyond which the working set is dropped. Catching
up on 200,000 events in batches of 500, the process grows by about 17 MB with 4,000 (at
32,700 events/s) against 32 MB with 10,000 (35,900 events/s)."""

MEETING_UPSERT = upsert(
    "pm_meetings",
    MEETING_COLUMNS,
    ("id",),
    (
        "title",
        "venue",
        "starts_on",
        "ends_on",
        "hosts",
        "ministerial",
        "themes",
        "created_position",
    ),
)
PROPOSAL_UPSERT = upsert(
    "pm_proposals",
    PROPOSAL_COLUMNS,
    ("id",),
    (
        "meeting_id",
        "theme",
        "proposer_id",
        "proposer_name",
        "proposer_delegation",
        "created_position",
    ),
)
USER_UPSERT = upsert("pm_users", USER_COLUMNS, ("id",))
PARTICIPANT_UPSERT = upsert(
    "pm_participants", PARTICIPANT_COLUMNS, ("meeting_id", "user_id"), ("starts_on",)
)
STATE_UPSERT = upsert("pm_recommendations", ("meeting_id", "position", "state"), ("meeting_id",))
FOLD_PROPOSAL_UPSERT = upsert(
    "pm_fold_proposals", ("meeting_id", "proposal_id", "state"), ("meeting_id", "proposal_id")
)
OUTCOME_INSERT = insert("pm_outcomes", OUTCOME_COLUMNS)
COMMENT_INSERT = insert("pm_comments", COMMENT_COLUMNS)
POSITION_UPSERT = upsert(
    "pm_positions", ("chunk", "last", "at_max", "positions", "times", "digests"), ("chunk",)
)

PROPOSAL_EVENTS = frozenset(
    {
        Proposal.Revised,
        Proposal.Submitted,
        Proposal.Withdrawn,
        Proposal.Approved,
        Proposal.Rejected,
        Proposal.RevisionRequested,
        Proposal.Merged,
        Proposal.Reconsidered,
        Proposal.Commented,
        Proposal.Endorsed,
    }
)
MEETING_EVENTS = frozenset(
    {
        Meeting.Opened,
        Meeting.Closed,
        Meeting.Reopened,
        Meeting.ParticipantEnrolled,
        Meeting.RecommendationsOrdered,
        Meeting.OutcomeForwarded,
    }
)


UNREAD_EVENTS = frozenset(
    {
        Meeting.Opened,
        Meeting.Closed,
        Meeting.Reopened,
        Proposal.Submitted,
        Proposal.Withdrawn,
        User.TokenIssued,
        User.TokensRevoked,
        ApiToken.Issued,
        ProposalLogged,
        MeetingProposals.ProposalRegistered,
    }
)
"""Events whose data no view shows (their class says it all): only their aggregate, version
and time are read."""


Decoded = tuple[int, type[Any], Any, str]


class _Chunk:
    """One row of the position index: the times of up to 1,024 consecutive positions."""

    __slots__ = ("at_max", "digests", "number", "positions", "times")

    def __init__(
        self,
        number: int,
        at_max: str,
        positions: list[int],
        times: list[str],
        digests: list[str],
    ):
        self.number = number
        self.at_max = at_max
        self.positions = positions
        self.times = times
        self.digests = digests


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(value: Any) -> str:
    """Compact JSON text of a view's value: orjson's, or the standard library's for what
    orjson refuses (a non-text key, an integer beyond 64 bits, a lone surrogate)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _encode(value)


def no_pending_commit() -> None:
    return None


class ViewProjection:
    """The views' only writer: applies notifications in batches, exactly once."""

    def __init__(self, model: ReadModel, mapper: Mapper[Any], cache_limit: int = CACHE_LIMIT):
        self.model = model
        self.mapper = mapper
        self.decoder = EventDecoder(mapper)
        self.cache_limit = cache_limit
        self._people: dict[str, Person | None] = {}
        self._meetings: dict[str, dict[str, Any]] = {}
        self._folds: dict[str, RecommendationsFold] = {}
        self._proposals: dict[str, dict[str, Any]] = {}
        self._chunk: _Chunk | None = None
        self._chunk_known = False
        self._complete = False
        self.settle: Callable[[], None] = no_pending_commit
        """Called before a batch reads the views: waits for the last batch's commit."""
        self._handlers: dict[type[Any], Callable[[int, str, Any, type[Any]], None]] = {
            User.Registered: self._registered,
            Meeting.Scheduled: self._scheduled,
            Meeting.Opened: self._meeting_status("open"),
            Meeting.Closed: self._meeting_status("closed"),
            Meeting.Reopened: self._meeting_status("closed"),
            Meeting.ParticipantEnrolled: self._enrolled,
            Meeting.RecommendationsOrdered: self._meeting_touched,
            Meeting.OutcomeForwarded: self._forwarded,
            Proposal.Drafted: self._drafted,
            Proposal.Revised: self._revised,
            Proposal.Submitted: self._proposal_status("submitted"),
            Proposal.Withdrawn: self._proposal_status("withdrawn"),
            Proposal.Approved: self._approved,
            Proposal.Rejected: self._decided("rejected", "reject"),
            Proposal.RevisionRequested: self._decided("revision_requested", "request_revision"),
            Proposal.Merged: self._merged,
            Proposal.Reconsidered: self._reconsidered,
            Proposal.Commented: self._commented,
            Proposal.Endorsed: self._endorsed,
        }
        self._begin_batch()

    # --- the working set ------------------------------------------------------------------

    def forget(self) -> None:
        """Drop the in-memory working set: the next batch reads what it needs from the views."""
        self._people.clear()
        self._meetings.clear()
        self._folds.clear()
        self._proposals.clear()
        self._chunk = None
        self._chunk_known = False
        self._complete = False

    def assume_empty(self) -> None:
        """The views are empty (just reset): what is not in memory does not exist."""
        self.forget()
        self._complete = True
        self._chunk_known = True

    def _begin_batch(self) -> None:
        self._new_users: list[tuple[Any, ...]] = []
        self._dirty_meetings: set[str] = set()
        self._dirty_participants: set[tuple[str, str]] = set()
        self._dirty_proposals: set[str] = set()
        self._dirty_folds: set[str] = set()
        self._dirty_fold_proposals: set[tuple[str, str]] = set()
        self._outcomes: list[tuple[Any, ...]] = []
        self._comments: list[tuple[Any, ...]] = []

    def _person(self, user_id: str) -> Person | None:
        return self._people.get(user_id)

    def _load(self, events: Sequence[Decoded]) -> None:
        """Read what the batch's events change and the working set lacks. What the batch
        itself creates (a user, meeting or proposal whose first event it holds) is not
        looked for; each read first waits for the last batch's commit (:attr:`settle`)."""
        if self._complete:
            return
        proposal_ids: set[str] = set()
        meeting_ids: set[str] = set()
        user_ids: set[str] = set()
        born: set[str] = set()
        for _, cls, ev, _ in events:
            if cls in PROPOSAL_EVENTS:
                proposal_ids.add(id_text(ev.originator_id))
                if cls is Proposal.Approved:
                    user_ids.add(ev.actor)
            elif cls in MEETING_EVENTS:
                meeting_ids.add(id_text(ev.originator_id))
            elif cls is Proposal.Drafted:
                born.add(id_text(ev.originator_id))
                meeting_ids.add(ev.meeting_id)
                user_ids.add(ev.actor)
            elif cls is Meeting.Scheduled or cls is User.Registered:
                born.add(id_text(ev.originator_id))
        wanted = sorted(p for p in proposal_ids if p not in self._proposals and p not in born)
        if wanted:
            self.settle()
            for row in self.model.fetch_in(
                f"SELECT {', '.join(PROPOSAL_COLUMNS)} FROM pm_proposals WHERE id IN ({{ids}})",
                wanted,
            ):
                record = dict(zip(PROPOSAL_COLUMNS, row, strict=True))
                for name in PROPOSAL_JSON:
                    if record[name] is not None:
                        record[name] = json.loads(record[name])
                self._proposals[record["id"]] = record
        meeting_ids.update(
            self._proposals[p]["meeting_id"] for p in proposal_ids if p in self._proposals
        )
        wanted = sorted(m for m in meeting_ids if m not in self._meetings and m not in born)
        if wanted:
            self.settle()
            for row in self.model.fetch_in(
                f"SELECT {', '.join(MEETING_COLUMNS)} FROM pm_meetings WHERE id IN ({{ids}})",
                wanted,
            ):
                record = dict(zip(MEETING_COLUMNS, row, strict=True))
                for name in MEETING_JSON:
                    record[name] = json.loads(record[name])
                self._meetings[record["id"]] = record
            for mid, state in self.model.fetch_in(
                "SELECT meeting_id, state FROM pm_recommendations WHERE meeting_id IN ({ids})",
                wanted,
            ):
                self._folds[mid] = RecommendationsFold({**json.loads(state), "proposals": {}})
            for mid, pid, state in self.model.fetch_in(
                "SELECT meeting_id, proposal_id, state FROM pm_fold_proposals "
                "WHERE meeting_id IN ({ids})",
                wanted,
            ):
                self._folds[mid].state["proposals"][pid] = json.loads(state)
        wanted = sorted(u for u in user_ids if u not in self._people and u not in born)
        if wanted:
            self.settle()
            found = self.model.fetch_in(
                "SELECT id, name, delegation FROM pm_users WHERE id IN ({ids})", wanted
            )
            for uid, name, delegation in found:
                self._people[uid] = (name, delegation)
        if not self._chunk_known:
            self.settle()
            rows = self.model.fetch(
                "SELECT chunk, at_max, positions, times, digests FROM pm_positions "
                "ORDER BY chunk DESC LIMIT 1"
            )
            if rows:
                number, at_max, positions, times, digests = rows[0]
                self._chunk = _Chunk(
                    int(number),
                    at_max,
                    json.loads(positions),
                    times.split("\n"),
                    [digests[i : i + SHORT] for i in range(0, len(digests), SHORT)],
                )
            self._chunk_known = True

    # --- one batch --------------------------------------------------------------------------

    def _decode(self, notes: Sequence[NoteRow]) -> tuple[list[Decoded], list[str]]:
        """Each notification's position, event class, event and time; and its digest.

        Events whose data no view shows (tokens, log entries, changes of status)
        are not decoded: a :class:`Note` stands in for them, with its aggregate id and
        version.
        """
        decoder = self.decoder
        classes = decoder.classes
        class_of = decoder.class_of
        decode = decoder.decode_row
        time_in = decoder.time_in
        note = tuple.__new__
        events: list[Decoded] = []
        digests: list[str] = []
        append = events.append
        digest = digests.append
        for row in notes:
            position, originator_id, version, topic, state = row
            digest(event_digest(position, originator_id, version, topic, state)[:SHORT])
            cls = classes.get(topic) or class_of(topic)
            if cls in UNREAD_EVENTS:
                at = time_in(state)
                if at is not None:
                    append((position, cls, note(Note, row), at))
                    continue
            ev, at = decode(row, cls)
            append((position, type(ev), ev, at))
        return events, digests

    def process(self, notes: Sequence[NoteRow], expected: int) -> int:
        """Apply ``notes`` (after position ``expected``) and commit; the new position."""
        if not notes:
            return expected
        position, statements = self.prepare(notes, expected)
        try:
            self.model.commit_batch(expected, position, statements)
        except BaseException:
            self.forget()
            raise
        return position

    def prepare(self, notes: Sequence[NoteRow], expected: int) -> tuple[int, list[Statement]]:
        """Apply ``notes`` (after position ``expected``, at least one) in memory; the new
        position and the statements that write the batch, which the caller commits with
        ``model.commit_batch(expected, ...)``. Until they are committed, :attr:`settle` must
        wait for that commit: the next batch calls it before it reads the views."""
        if expected == 0:
            self.assume_empty()
        events, digests = self._decode(notes)
        try:
            self._load(events)
            self._begin_batch()
            chunk = self._chunk
            chunks: list[_Chunk] = []
            handlers = self._handlers
            for (position, cls, ev, at), digest in zip(events, digests, strict=True):
                number = position >> POSITION_CHUNK_BITS
                if chunk is None or chunk.number != number:
                    chunk = _Chunk(number, chunk.at_max if chunk else "", [], [], [])
                    chunks.append(chunk)
                elif not chunks:
                    chunks.append(chunk)
                chunk.positions.append(position)
                chunk.times.append(at)
                chunk.digests.append(digest)
                if at > chunk.at_max:
                    chunk.at_max = at
                handler = handlers.get(cls)
                if handler is not None:
                    handler(position, at, ev, cls)
            position = notes[-1][0]
            statements = self._statements(chunks)
        except BaseException:
            self.forget()
            raise
        self._chunk = chunk
        if len(self._proposals) + len(self._meetings) + len(self._people) > self.cache_limit:
            self._trim(events)
        return position, statements

    def _trim(self, events: Sequence[Decoded]) -> None:
        """Drop the working set (all of it written by now) but the meetings this batch
        touched and their folds: those are what the next batches most likely need, and a
        meeting's fold is the costliest thing to read again (every proposal's state). The
        people are kept too while they are a small part of the working set: each is a name
        and a delegation, and nearly every batch names some of them (the actors of drafts
        and approvals), so reading them again would make it wait for the last commit."""
        touched: set[str] = set()
        for _, cls, ev, _ in events:
            if cls in MEETING_EVENTS:
                touched.add(id_text(ev.originator_id))
            elif cls is Proposal.Drafted:
                touched.add(ev.meeting_id)
            elif cls in PROPOSAL_EVENTS:
                proposal = self._proposals.get(id_text(ev.originator_id))
                if proposal is not None:
                    touched.add(proposal["meeting_id"])
        meetings = {m: self._meetings[m] for m in touched if m in self._meetings}
        folds = {m: self._folds[m] for m in touched if m in self._folds}
        chunk = self._chunk
        people = dict(self._people) if len(self._people) <= self.cache_limit // 4 else {}
        self.forget()
        self._people.update(people)
        self._meetings.update(meetings)
        self._folds.update(folds)
        self._chunk, self._chunk_known = chunk, True

    def _statements(self, chunks: list[_Chunk]) -> list[Statement]:
        positions = [
            (
                c.number,
                c.positions[-1],
                c.at_max,
                _dumps(c.positions),
                "\n".join(c.times),
                "".join(c.digests),
            )
            for c in chunks
        ]
        meetings = []
        for mid in sorted(self._dirty_meetings):
            m = self._meetings[mid]
            meetings.append(
                tuple(_dumps(m[c]) if c in MEETING_JSON else m[c] for c in MEETING_COLUMNS)
            )
        participants = []
        for mid, uid in sorted(self._dirty_participants):
            participant = self._meetings[mid]["participants"][uid]
            participants.append(
                (
                    mid,
                    uid,
                    participant["role"],
                    _dumps(participant["themes"]),
                    self._meetings[mid]["starts_on"],
                )
            )
        proposals = []
        for pid in sorted(self._dirty_proposals):
            p = self._proposals[pid]
            endorsements = p["endorsements"]
            decision = p["decision"]
            proposals.append(
                (
                    p["id"],
                    p["meeting_id"],
                    p["theme"],
                    p["title"],
                    p["text"],
                    p["rationale"],
                    p["status"],
                    p["proposer_id"],
                    p["proposer_name"],
                    p["proposer_delegation"],
                    _dumps(endorsements) if endorsements else "[]",
                    p["revision"],
                    p["final_text"],
                    None if decision is None else _dumps(decision),
                    p["merged_into"],
                    p["version"],
                    p["created_position"],
                )
            )
        # a meeting's fold state is kept in two parts, so that a batch writes what it changed:
        # the meeting's own (without its proposals), and each changed proposal's
        states = []
        for mid in sorted(self._dirty_folds):
            state = self._folds[mid].state
            own = {k: v for k, v in state.items() if k != "proposals"}
            states.append((mid, state["position"], _dumps(own)))
        fold_proposals = [
            (mid, pid, _dumps(self._folds[mid].state["proposals"][pid]))
            for mid, pid in sorted(self._dirty_fold_proposals)
        ]
        return [
            (USER_UPSERT, self._new_users),
            (MEETING_UPSERT, meetings),
            (PARTICIPANT_UPSERT, participants),
            (PROPOSAL_UPSERT, proposals),
            (STATE_UPSERT, states),
            (FOLD_PROPOSAL_UPSERT, fold_proposals),
            (OUTCOME_INSERT, self._outcomes),
            (COMMENT_INSERT, self._comments),
            (POSITION_UPSERT, positions),
        ]

    # --- users ------------------------------------------------------------------------------

    def _registered(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        uid = id_text(ev.originator_id)
        self._people[uid] = (ev.name, ev.delegation)
        self._new_users.append(
            (uid, ev.name, ev.delegation, bool(ev.secretariat), bool(ev.ministerial))
        )

    # --- meetings ---------------------------------------------------------------------------

    def _meeting(self, ev: Any) -> dict[str, Any] | None:
        mid = id_text(ev.originator_id)
        meeting = self._meetings.get(mid)
        if meeting is None:
            log.warning("event of unknown meeting %s skipped", mid)
            return None
        meeting["version"] = ev.originator_version
        self._dirty_meetings.add(mid)
        return meeting

    def _fold(self, mid: str, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        fold = self._folds.get(mid)
        if fold is not None and fold.apply(ev, position, at, self._person, kind):
            self._dirty_folds.add(mid)
            if kind in PROPOSAL_HANDLERS:
                self._dirty_fold_proposals.add((mid, id_text(ev.originator_id)))

    def _scheduled(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        mid = id_text(ev.originator_id)
        self._meetings[mid] = {
            "id": mid,
            "title": ev.title,
            "venue": ev.venue,
            "starts_on": ev.starts_on,
            "ends_on": ev.ends_on,
            "hosts": list(ev.hosts),
            "ministerial": ev.ministerial,
            "themes": [dict(t) for t in ev.themes],
            "status": "scheduled",
            "outcome_versions": [],
            "version": ev.originator_version,
            "participants": {},
            "created_position": position,
        }
        self._dirty_meetings.add(mid)
        self._folds[mid] = RecommendationsFold()
        self._fold(mid, position, at, ev, kind)

    def _meeting_status(self, status: str) -> Callable[[int, str, Any, type[Any]], None]:
        def apply(position: int, at: str, ev: Any, kind: type[Any]) -> None:
            meeting = self._meeting(ev)
            if meeting is not None:
                meeting["status"] = status
                self._fold(meeting["id"], position, at, ev, kind)

        return apply

    def _meeting_touched(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        meeting = self._meeting(ev)
        if meeting is not None:
            self._fold(meeting["id"], position, at, ev, kind)

    def _enrolled(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        meeting = self._meeting(ev)
        if meeting is not None:
            meeting["participants"][ev.user_id] = {"role": ev.role, "themes": list(ev.themes)}
            self._dirty_participants.add((meeting["id"], ev.user_id))
            self._fold(meeting["id"], position, at, ev, kind)

    def _forwarded(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        meeting = self._meeting(ev)
        if meeting is None:
            return
        meeting["status"] = "forwarded"
        meeting["outcome_versions"].append(
            {
                "version": ev.version_number,
                "sha256": ev.sha256,
                "document_position": ev.document_position,
                "forwarded_at": at,
                "forwarded_by": ev.actor,
            }
        )
        self._outcomes.append(
            (
                meeting["id"],
                ev.version_number,
                ev.sha256,
                ev.document_position,
                at,
                ev.actor,
                position,
                ev.document,
                ev.signature,
            )
        )
        self._fold(meeting["id"], position, at, ev, kind)

    # --- proposals --------------------------------------------------------------------------

    def _proposal(self, ev: Any) -> dict[str, Any] | None:
        pid = id_text(ev.originator_id)
        proposal = self._proposals.get(pid)
        if proposal is None:
            log.warning("event of unknown proposal %s skipped", pid)
            return None
        proposal["version"] = ev.originator_version
        self._dirty_proposals.add(pid)
        return proposal

    def _drafted(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        pid = id_text(ev.originator_id)
        person = self._people.get(ev.actor)
        self._proposals[pid] = {
            "id": pid,
            "meeting_id": ev.meeting_id,
            "theme": ev.theme,
            "title": ev.title,
            "text": ev.text,
            "rationale": ev.rationale,
            "status": "draft",
            "proposer_id": ev.actor,
            "proposer_name": person[0] if person else None,
            "proposer_delegation": person[1] if person else None,
            "endorsements": [],
            "revision": 1,
            "final_text": None,
            "decision": None,
            "merged_into": None,
            "version": ev.originator_version,
            "created_position": position,
        }
        self._dirty_proposals.add(pid)
        self._fold(ev.meeting_id, position, at, ev, kind)

    def _revised(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        p = self._proposal(ev)
        if p is None:
            return
        if ev.title is not None:
            p["title"] = ev.title
        if ev.text is not None and ev.text != p["text"]:
            p["text"] = ev.text
            p["revision"] += 1
        if ev.rationale is not None:
            p["rationale"] = ev.rationale
        self._fold(p["meeting_id"], position, at, ev, kind)

    def _proposal_status(self, status: str) -> Callable[[int, str, Any, type[Any]], None]:
        def apply(position: int, at: str, ev: Any, kind: type[Any]) -> None:
            p = self._proposal(ev)
            if p is not None:
                p["status"] = status
                self._fold(p["meeting_id"], position, at, ev, kind)

        return apply

    @staticmethod
    def _decision(action: str, ev: Any, at: str, reason: str | None) -> dict[str, Any]:
        return {"action": action, "by": ev.actor, "at": at, "reason": reason}

    def _decided(self, status: str, action: str) -> Callable[[int, str, Any, type[Any]], None]:
        def apply(position: int, at: str, ev: Any, kind: type[Any]) -> None:
            p = self._proposal(ev)
            if p is not None:
                p["status"] = status
                p["decision"] = self._decision(action, ev, at, ev.reason)
                self._fold(p["meeting_id"], position, at, ev, kind)

        return apply

    def _approved(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        p = self._proposal(ev)
        if p is not None:
            p["status"] = "approved"
            p["final_text"] = ev.final_text
            p["decision"] = self._decision("approve", ev, at, ev.note)
            self._fold(p["meeting_id"], position, at, ev, kind)

    def _merged(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        p = self._proposal(ev)
        if p is not None:
            p["status"] = "merged"
            p["merged_into"] = ev.into
            p["decision"] = self._decision("merge", ev, at, ev.reason)
            self._fold(p["meeting_id"], position, at, ev, kind)

    def _reconsidered(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        p = self._proposal(ev)
        if p is not None:
            p["status"] = "submitted"
            p["final_text"] = None
            p["merged_into"] = None
            p["decision"] = self._decision("reconsider", ev, at, ev.reason)
            self._fold(p["meeting_id"], position, at, ev, kind)

    def _commented(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        p = self._proposal(ev)
        if p is not None:
            self._comments.append((p["id"], position, ev.comment_id, ev.actor, ev.text, at))

    def _endorsed(self, position: int, at: str, ev: Any, kind: type[Any]) -> None:
        p = self._proposal(ev)
        if p is not None:
            p["endorsements"].append(ev.delegation)
            self._fold(p["meeting_id"], position, at, ev, kind)
