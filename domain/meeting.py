"""The meeting: its themes, participants, lifecycle and forwarded outcome versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.base import Event, remember
from domain.errors import InvalidInput, InvalidTransition, RuleViolation

SCHEDULED, OPEN, CLOSED, FORWARDED = "scheduled", "open", "closed", "forwarded"
ROLES = ("chair", "rapporteur", "observer")


def _version_record(record: dict[str, Any]) -> dict[str, Any]:
    """A forwarded version as data: its time as an RFC 3339 UTC string."""
    out = dict(record)
    at = out.get("forwarded_at")
    if isinstance(at, datetime):
        out["forwarded_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


class Meeting(Aggregate):
    class Scheduled(Aggregate.Created):
        actor: str
        title: str
        venue: str
        starts_on: str
        ends_on: str
        hosts: list[str]
        ministerial: str
        themes: list[dict[str, str]]
        request_hash: str | None

    @event(Scheduled)
    def __init__(
        self,
        actor: str,
        title: str,
        venue: str,
        starts_on: str,
        ends_on: str,
        hosts: list[str],
        ministerial: str,
        themes: list[dict[str, str]],
        request_hash: str | None,
    ) -> None:
        self.title = title
        self.venue = venue
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.hosts = list(hosts)
        self.ministerial = ministerial
        self.themes = [dict(t) for t in themes]
        self.request_hash = request_hash
        self.status = SCHEDULED
        self.participants: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, list[str]] = {}
        self.outcome_versions: list[dict[str, Any]] = []

    # --- queries -----------------------------------------------------------------

    @property
    def theme_keys(self) -> list[str]:
        return [t["key"] for t in self.themes]

    def role_of(self, user_id: str) -> str | None:
        p = self.participants.get(user_id)
        return None if p is None else str(p["role"])

    def has_role(self, user_id: str, role: str, theme: str | None = None) -> bool:
        p = self.participants.get(user_id)
        if p is None or p["role"] != role:
            return False
        return theme is None or theme in p["themes"]

    def require_theme(self, theme: str) -> None:
        if theme not in self.theme_keys:
            raise InvalidInput(f"theme {theme!r} is not a theme of this meeting", "theme")

    def _transition(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise InvalidTransition("meeting", self.status, action)

    def require_status(self, action: str, *allowed: str) -> None:
        """Refuse ``action`` on the meeting's proposals unless the meeting is in ``allowed``."""
        if self.status not in allowed:
            raise InvalidTransition(
                "proposal",
                f"in a {self.status} meeting",
                action,
                f"the meeting must be {' or '.join(allowed)}",
            )

    # --- commands ----------------------------------------------------------------

    def open(self, actor: str) -> None:
        self._transition("open", (SCHEDULED,))
        self._opened(actor=actor)

    def close(self, actor: str) -> None:
        self._transition("close", (OPEN,))
        self._closed(actor=actor)

    def reopen(self, actor: str, reason: str) -> None:
        self._transition("reopen", (FORWARDED,))
        self._reopened(actor=actor, reason=reason)

    def enrol(
        self,
        actor: str,
        user_id: str,
        role: str,
        themes: list[str],
        idempotency: dict[str, str] | None = None,
    ) -> None:
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}", "role")
        for theme in themes:
            self.require_theme(theme)
        if len(set(themes)) != len(themes):
            raise InvalidInput("themes must not repeat", "themes")
        if role in ("chair", "rapporteur") and not themes:
            raise InvalidInput(f"a {role} needs at least one theme", "themes")
        if self.status == FORWARDED:
            raise InvalidTransition("meeting", self.status, "enrol a participant")
        self._enrolled(
            actor=actor, user_id=user_id, role=role, themes=list(themes), idempotency=idempotency
        )

    def order_theme(
        self, actor: str, theme: str, proposal_ids: list[str], approved: set[str]
    ) -> None:
        self.require_theme(theme)
        if self.status not in (OPEN, CLOSED):
            raise InvalidTransition("meeting", self.status, "order recommendations")
        if len(set(proposal_ids)) != len(proposal_ids):
            raise RuleViolation("the order names a proposal more than once")
        given = set(proposal_ids)
        if given != approved:
            missing = sorted(approved - given)
            extra = sorted(given - approved)
            parts = []
            if missing:
                parts.append(f"approved proposals missing: {', '.join(missing)}")
            if extra:
                parts.append(f"not approved proposals of this theme: {', '.join(extra)}")
            raise RuleViolation(
                "the order must name every approved proposal of the theme once; " + "; ".join(parts)
            )
        self._ordered(actor=actor, theme=theme, proposal_ids=list(proposal_ids))

    def forward(
        self,
        actor: str,
        document: str,
        sha256: str,
        document_position: int,
        signature: str,
        chain_head: str | None,
        idempotency: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self._transition("forward", (CLOSED,))
        self._forwarded(
            actor=actor,
            version_number=len(self.outcome_versions) + 1,
            document=document,
            sha256=sha256,
            document_position=document_position,
            signature=signature,
            chain_head=chain_head,
            idempotency=idempotency,
        )
        return self.outcome_versions[-1]

    # --- events ------------------------------------------------------------------

    class Opened(Event):
        actor: str

    @event(Opened)
    def _opened(self, actor: str) -> None:
        self.status = OPEN

    class Closed(Event):
        actor: str

    @event(Closed)
    def _closed(self, actor: str) -> None:
        self.status = CLOSED

    class Reopened(Event):
        actor: str
        reason: str

    @event(Reopened)
    def _reopened(self, actor: str, reason: str) -> None:
        self.status = CLOSED

    class ParticipantEnrolled(Event):
        class_version = 2

        actor: str
        user_id: str
        role: str
        themes: list[str]
        idempotency: dict[str, str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["idempotency"] = None

    @event(ParticipantEnrolled)
    def _enrolled(
        self,
        actor: str,
        user_id: str,
        role: str,
        themes: list[str],
        idempotency: dict[str, str] | None,
    ) -> None:
        remember(self, idempotency)
        self.participants[user_id] = {"role": role, "themes": list(themes)}

    class RecommendationsOrdered(Event):
        actor: str
        theme: str
        proposal_ids: list[str]

    @event(RecommendationsOrdered)
    def _ordered(self, actor: str, theme: str, proposal_ids: list[str]) -> None:
        self.orders[theme] = list(proposal_ids)

    class OutcomeForwarded(Event):
        class_version = 2

        actor: str
        version_number: int
        document: str
        sha256: str
        document_position: int
        signature: str
        chain_head: str | None
        idempotency: dict[str, str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["idempotency"] = None

    @event(OutcomeForwarded)
    def _forwarded(
        self,
        actor: str,
        version_number: int,
        document: str,
        sha256: str,
        document_position: int,
        signature: str,
        chain_head: str | None,
        idempotency: dict[str, str] | None,
    ) -> None:
        remember(self, idempotency)
        self.status = FORWARDED
        self.outcome_versions.append(
            {
                "version": version_number,
                "sha256": sha256,
                "document_position": document_position,
                "forwarded_at": self.modified_on,
                "forwarded_by": actor,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "title": self.title,
            "venue": self.venue,
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "hosts": list(self.hosts),
            "ministerial": self.ministerial,
            "themes": [dict(t) for t in self.themes],
            "status": self.status,
            "outcome_versions": [_version_record(v) for v in self.outcome_versions],
            "version": self.version,
        }
