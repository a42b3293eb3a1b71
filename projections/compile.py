"""The compiled recommendations of a meeting: one fold over events, one function to the document.

The same fold serves the live view (its state is kept per meeting, as JSON, and advanced
batch by batch) and time travel (the log replayed up to a position): so a document compiled
``as_of`` the position it reflects is the live document, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from domain.meeting import Meeting
from domain.proposal import APPROVED, MERGED, Proposal
from projections.documents.canonical import seal

Person = tuple[str, str]
"""A person as documents show them: (name, delegation)."""

People = Callable[[str], Person | None]
"""Finds a person by user id; ``None`` for an actor who is not a user (the operator)."""

State = dict[str, Any]


def rfc3339(moment: datetime) -> str:
    """An RFC 3339 UTC time with microseconds, as every resource of the service writes it."""
    offset = moment.utcoffset()
    if offset:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@lru_cache(maxsize=1 << 12)
def id_text(value: UUID | str) -> str:
    """The canonical text of an aggregate id, given as a ``UUID`` or as that text."""
    return str(value)


def _meeting_scheduled(state: State, ev: Any, position: int, at: str, people: People) -> None:
    state.clear()
    state.update(
        {
            "id": str(ev.originator_id),
            "title": ev.title,
            "venue": ev.venue,
            "starts_on": ev.starts_on,
            "ends_on": ev.ends_on,
            "hosts": list(ev.hosts),
            "ministerial": ev.ministerial,
            "themes": [{"key": t["key"], "title": t["title"]} for t in ev.themes],
            "status": "scheduled",
            "orders": {},
            "proposals": {},
        }
    )


def _status(value: str) -> Callable[[State, Any, int, str, People], None]:
    def apply(state: State, ev: Any, position: int, at: str, people: People) -> None:
        state["status"] = value

    return apply


def _unchanged(state: State, ev: Any, position: int, at: str, people: People) -> None:
    return None


def _ordered(state: State, ev: Any, position: int, at: str, people: People) -> None:
    state["orders"][ev.theme] = {"ids": list(ev.proposal_ids), "position": position}


def _drafted(state: State, ev: Any, position: int, at: str, people: People) -> None:
    person = people(ev.actor)
    state["proposals"][str(ev.originator_id)] = {
        "theme": ev.theme,
        "title": ev.title,
        "text": ev.text,
        "status": "draft",
        "final_text": None,
        "proposer": {
            "name": person[0] if person else None,
            "delegation": person[1] if person else None,
        },
        "endorsements": [],
        "approved_by": None,
        "approved_at": None,
        "approved_position": None,
        "merged_into": None,
        "merged_position": None,
    }


def _proposal(state: State, ev: Any) -> dict[str, Any]:
    proposal: dict[str, Any] = state["proposals"][id_text(ev.originator_id)]
    return proposal


def _revised(state: State, ev: Any, position: int, at: str, people: People) -> None:
    p = _proposal(state, ev)
    if ev.title is not None:
        p["title"] = ev.title
    if ev.text is not None:
        p["text"] = ev.text


def _proposal_status(value: str) -> Callable[[State, Any, int, str, People], None]:
    def apply(state: State, ev: Any, position: int, at: str, people: People) -> None:
        _proposal(state, ev)["status"] = value

    return apply


def _approved(state: State, ev: Any, position: int, at: str, people: People) -> None:
    p = _proposal(state, ev)
    person = people(ev.actor)
    p["status"] = APPROVED
    p["final_text"] = ev.final_text
    p["approved_by"] = person[0] if person else ev.actor
    p["approved_at"] = at
    p["approved_position"] = position


def _merged(state: State, ev: Any, position: int, at: str, people: People) -> None:
    p = _proposal(state, ev)
    p["status"] = MERGED
    p["merged_into"] = ev.into
    p["merged_position"] = position


def _reconsidered(state: State, ev: Any, position: int, at: str, people: People) -> None:
    p = _proposal(state, ev)
    p["status"] = "submitted"
    p["final_text"] = None
    p["approved_by"] = None
    p["approved_at"] = None
    p["approved_position"] = None
    p["merged_into"] = None
    p["merged_position"] = None


def _endorsed(state: State, ev: Any, position: int, at: str, people: People) -> None:
    _proposal(state, ev)["endorsements"].append(ev.delegation)


Handler = Callable[[State, Any, int, str, People], None]

MEETING_HANDLERS: dict[type[Any], Handler] = {
    Meeting.Scheduled: _meeting_scheduled,
    Meeting.Opened: _status("open"),
    Meeting.Closed: _status("closed"),
    Meeting.Reopened: _status("closed"),
    Meeting.OutcomeForwarded: _status("forwarded"),
    Meeting.ParticipantEnrolled: _unchanged,
    Meeting.RecommendationsOrdered: _ordered,
}
"""The events of a meeting aggregate that move its document's position."""

PROPOSAL_HANDLERS: dict[type[Any], Handler] = {
    Proposal.Drafted: _drafted,
    Proposal.Revised: _revised,
    Proposal.Submitted: _proposal_status("submitted"),
    Proposal.Withdrawn: _proposal_status("withdrawn"),
    Proposal.Approved: _approved,
    Proposal.Rejected: _proposal_status("rejected"),
    Proposal.RevisionRequested: _proposal_status("revision_requested"),
    Proposal.Merged: _merged,
    Proposal.Reconsidered: _reconsidered,
    Proposal.Endorsed: _endorsed,
}
"""The events of a proposal that move its meeting's document (comments do not)."""

HANDLERS: dict[type[Any], Handler] = {**MEETING_HANDLERS, **PROPOSAL_HANDLERS}


class RecommendationsFold:
    """Applies the events of one meeting and of its proposals to a plain, JSON-ready state.

    The caller routes events: the meeting's own events and the events of its proposals,
    in log order, each with its position and its RFC 3339 time. ``people`` gives the name
    and delegation of proposers and approving chairs (both are fixed when a user registers).
    """

    def __init__(self, state: State | None = None) -> None:
        self.state: State = state if state is not None else {}

    @staticmethod
    def affects(event: object) -> bool:
        return type(event) in HANDLERS

    def apply(
        self,
        event: Any,
        position: int,
        at: str,
        people: People,
        kind: type[Any] | None = None,
    ) -> bool:
        """Apply one event; whether it moved the document (and so its position).

        ``kind`` is the event's class when ``event`` stands in for it with only its
        aggregate id and version (for events whose class says all the fold needs).
        """
        kind = kind or type(event)
        handler = HANDLERS.get(kind)
        if handler is None:
            return False
        if not self.state and kind is not Meeting.Scheduled:
            return False
        handler(self.state, event, position, at, people)
        self.state["position"] = position
        self.state["position_at"] = at
        return True


def _recommendation(number: str, pid: str, p: dict[str, Any], merged: list[str]) -> dict[str, Any]:
    final_text = p["final_text"]
    return {
        "number": number,
        "proposal_id": pid,
        "title": p["title"],
        "text": final_text if final_text is not None else p["text"],
        "proposer": {"name": p["proposer"]["name"], "delegation": p["proposer"]["delegation"]},
        "endorsements": list(p["endorsements"]),
        "approved_by": p["approved_by"],
        "approved_at": p["approved_at"],
        "merged_from": merged,
    }


def compile_document(state: State, outcome_version: int | None = None) -> dict[str, Any]:
    """The compiled document of a fold's state, sealed with its SHA-256."""
    if not state:
        raise ValueError("the state holds no meeting")
    proposals: dict[str, dict[str, Any]] = state["proposals"]
    approved_by_theme: dict[str, list[tuple[int, str]]] = {}
    merged_into: dict[str, list[tuple[int, str]]] = {}
    for pid, p in proposals.items():
        status = p["status"]
        if status == APPROVED:
            approved_by_theme.setdefault(p["theme"], []).append((p["approved_position"], pid))
        elif status == MERGED and p["merged_into"] is not None:
            merged_into.setdefault(p["merged_into"], []).append((p["merged_position"], pid))
    themes = []
    for index, theme in enumerate(state["themes"], start=1):
        key = theme["key"]
        approved = dict((pid, pos) for pos, pid in approved_by_theme.get(key, ()))
        order = state["orders"].get(key)
        first: list[str] = []
        if order is not None:
            set_at = order["position"]
            first = [pid for pid in order["ids"] if pid in approved and approved[pid] < set_at]
        placed = set(first)
        rest = sorted((pos, pid) for pid, pos in approved.items() if pid not in placed)
        ids = first + [pid for _, pid in rest]
        recommendations = [
            _recommendation(
                f"{index}.{n}",
                pid,
                proposals[pid],
                [m for _, m in sorted(merged_into.get(pid, ()))],
            )
            for n, pid in enumerate(ids, start=1)
        ]
        themes.append(
            {
                "number": index,
                "key": key,
                "title": theme["title"],
                "recommendations": recommendations,
            }
        )
    document = {
        "meeting": {
            "id": state["id"],
            "title": state["title"],
            "venue": state["venue"],
            "starts_on": state["starts_on"],
            "ends_on": state["ends_on"],
            "hosts": list(state["hosts"]),
            "ministerial": state["ministerial"],
        },
        "status": state["status"],
        "outcome_version": outcome_version,
        "position": state["position"],
        "position_at": state["position_at"],
        "themes": themes,
    }
    return seal(document)


def forwarded_form(document: dict[str, Any], version: int) -> dict[str, Any]:
    """The document as forwarded as version ``version``: status forwarded, sealed anew."""
    body = {k: v for k, v in document.items() if k not in ("sha256", "signature")}
    body["status"] = "forwarded"
    body["outcome_version"] = version
    return seal(body)
