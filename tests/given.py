"""Given: the world a test starts from, built with the application's own commands.

The cast of the Islamabad preparatory meeting, enrolled in a meeting with three themes:

- ``chair``: chairs ``technology``; ``chair_other``: chairs ``safety-security``
- ``proposer`` (Pakistan) and ``other_rapporteur`` (Republic of Korea): rapporteurs of
  ``technology``; ``rapporteur_other_theme`` (Ghana): rapporteur of ``safety-security``
- ``observer`` (Indonesia); ``ministerial`` (Germany, the Berlin team, not enrolled);
  ``outsider`` (France, a user who takes no part in the meeting)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import DomainEvent

from domain.application import SYSTEM, Forwarding, PreparatoryMeetings, new
from domain.meeting import Meeting
from domain.proposal import (
    APPROVED,
    DRAFT,
    MERGED,
    REJECTED,
    REVISION_REQUESTED,
    SUBMITTED,
    WITHDRAWN,
    Proposal,
)

TECH = "technology"
SAFETY = "safety-security"
REGIONAL = "regional-cooperation"
THEMES = [
    {"key": TECH, "title": "Use of technology in peacekeeping"},
    {"key": SAFETY, "title": "Safety and security of peacekeepers"},
    {"key": REGIONAL, "title": "Cooperation between regional organizations and the UN"},
]
PROPOSER_DELEGATION = "Pakistan"
OTHER_DELEGATION = "Republic of Korea"


def recorded_since(app: PreparatoryMeetings, position: int) -> list[DomainEvent]:
    """Every event recorded after ``position``, oldest first."""
    notes = app.recorder.select_notifications(position + 1, 10_000)
    return [app.mapper.to_domain_event(n) for n in notes]  # type: ignore[misc]


def kinds(events: list[DomainEvent]) -> list[type]:
    return [type(e) for e in events]


def aggregate_reads(
    app: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch, *ids: str
) -> list[str]:
    """A list that grows by the id of each read of one of these aggregates."""
    reads: list[str] = []
    real = app._aggregates.get

    def get(aggregate_id: UUID, copy: bool = True) -> Any:
        if str(aggregate_id) in ids:
            reads.append(str(aggregate_id))
        return real(aggregate_id, copy=copy)

    monkeypatch.setattr(app._aggregates, "get", get)
    return reads


def forwarding(app: PreparatoryMeetings) -> Callable[[Meeting], Forwarding]:
    """A stand-in for the compiler of the outcome document."""

    def compile_outcome(meeting: Meeting) -> Forwarding:
        position = app.last_position()
        document = json.dumps({"meeting": str(meeting.id), "position": position})
        digest = hashlib.sha256(document.encode()).hexdigest()
        return Forwarding(document, digest, position, signature="signed-for-tests")

    return compile_outcome


class Given:
    """A meeting with its people, and proposals in any state, made through commands."""

    def __init__(self, app: PreparatoryMeetings) -> None:
        self.app = app
        self.secretariat = self.user("Secretariat officer", "UN DPO", secretariat=True)
        self.ministerial = self.user("Berlin team", "Germany", ministerial=True)
        self.chair = self.user("Chair of technology", "Norway")
        self.chair_other = self.user("Chair of safety", "Uruguay")
        self.proposer = self.user("Rapporteur A", PROPOSER_DELEGATION)
        self.other_rapporteur = self.user("Rapporteur B", OTHER_DELEGATION)
        self.rapporteur_other_theme = self.user("Rapporteur C", "Ghana")
        self.observer = self.user("Observer", "Indonesia")
        self.outsider = self.user("Not a participant", "France")
        self.meeting = self.schedule()
        self.enrol(self.chair, "chair", [TECH])
        self.enrol(self.chair_other, "chair", [SAFETY])
        self.enrol(self.proposer, "rapporteur", [TECH])
        self.enrol(self.other_rapporteur, "rapporteur", [TECH])
        self.enrol(self.rapporteur_other_theme, "rapporteur", [SAFETY])
        self.enrol(self.observer, "observer", [])

    # --- people and meetings -------------------------------------------------------

    def user(self, name: str, delegation: str, **roles: bool) -> str:
        return str(self.app.create_user(SYSTEM, name, delegation, **roles).state["id"])

    def schedule(self, themes: list[dict[str, str]] | None = None) -> str:
        result = self.app.schedule_meeting(
            SYSTEM,
            "Third UN Peacekeeping Ministerial Preparatory Meeting",
            "CIPS, NUST, Islamabad",
            "2025-04-15",
            "2025-04-16",
            ["Pakistan", "Republic of Korea"],
            "berlin-2025",
            themes or THEMES,
        )
        return str(result.state["id"])

    def enrol(self, user: str, role: str, themes: list[str], meeting: str | None = None) -> None:
        self.app.enrol_participant(SYSTEM, meeting or self.meeting, user, role, themes)

    def open(self) -> Given:
        self.app.open_meeting(SYSTEM, self.meeting)
        return self

    def close(self) -> Given:
        self.app.close_meeting(SYSTEM, self.meeting)
        return self

    def forward(self) -> Given:
        self.app.forward_meeting(SYSTEM, self.meeting, forwarding(self.app))
        return self

    def reopen(self) -> Given:
        self.app.reopen_meeting(SYSTEM, self.meeting, reason="A correction arrived late")
        return self

    def meeting_status(self) -> str:
        return str(self.app.get_meeting(SYSTEM, self.meeting).status)

    def chair_of(self, theme: str) -> str:
        return {TECH: self.chair, SAFETY: self.chair_other}.get(theme, SYSTEM)

    # --- proposals -----------------------------------------------------------------

    def proposal(
        self,
        state: str = DRAFT,
        theme: str = TECH,
        by: str | None = None,
        text: str = "Equip every mission with a common situational-awareness platform.",
    ) -> str:
        """A proposal of the (open) meeting, brought into ``state`` by the usual commands."""
        app = self.app
        if by is None:
            by = self.proposer if theme == TECH else self.rapporteur_other_theme
        title = "Situational awareness"
        pid = str(app.draft_proposal(by, self.meeting, theme, title, text).state["id"])
        chair = self.chair_of(theme)
        if state == WITHDRAWN:
            app.withdraw_proposal(by, pid)
        if state in (SUBMITTED, REVISION_REQUESTED, APPROVED, REJECTED, MERGED):
            app.submit_proposal(by, pid)
        if state == REVISION_REQUESTED:
            app.request_revision(chair, pid, reason="Say which missions")
        elif state == APPROVED:
            app.approve_proposal(chair, pid)
        elif state == REJECTED:
            app.reject_proposal(chair, pid, reason="Outside the mandate of the meeting")
        elif state == MERGED:
            other = self.other_rapporteur if theme == TECH else None
            target = self.proposal(SUBMITTED, theme, by=other)
            app.merge_proposal(chair, pid, target, reason="The same idea, better put")
        assert self.get(pid).status == state
        return pid

    def proposal_by_events(self, state: str, theme: str = TECH) -> str:
        """A proposal recorded straight from its events, bypassing every command rule.

        Used only for situations that commands cannot reach (a proposal in a meeting that
        is still scheduled), to show the meeting's rules hold whatever the history.
        """
        by = self.proposer
        proposal: Proposal = new(
            Proposal,
            Proposal.Drafted,
            None,
            actor=by,
            meeting_id=self.meeting,
            theme=theme,
            title="Given by events",
            text="A proposal that exists in the record.",
            rationale=None,
            request_hash=None,
        )
        if state in (SUBMITTED, APPROVED):
            proposal._submitted(actor=by)
        if state == APPROVED:
            proposal._approved(actor=self.chair, final_text=None, note=None)
        self.app.save(proposal)
        return str(proposal.id)

    def get(self, pid: str) -> Proposal:
        proposal: Proposal = self.app.repository.get(UUID(pid))
        return proposal

    def state(self, pid: str) -> dict[str, Any]:
        return self.get(pid).as_dict()
