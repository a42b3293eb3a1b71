"""The proposal: drafted by a rapporteur, revised, submitted, decided by a chair."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.base import Event, remember
from domain.errors import InvalidTransition, RuleViolation

DRAFT = "draft"
SUBMITTED = "submitted"
REVISION_REQUESTED = "revision_requested"
APPROVED = "approved"
REJECTED = "rejected"
MERGED = "merged"
WITHDRAWN = "withdrawn"
STATES = (DRAFT, SUBMITTED, REVISION_REQUESTED, APPROVED, REJECTED, MERGED, WITHDRAWN)
NOT_LIVE = (WITHDRAWN, REJECTED, MERGED)

# Which states each action may start from.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "revise": (DRAFT, REVISION_REQUESTED),
    "submit": (DRAFT, REVISION_REQUESTED),
    "withdraw": (DRAFT, SUBMITTED, REVISION_REQUESTED),
    "approve": (SUBMITTED,),
    "reject": (SUBMITTED,),
    "request_revision": (SUBMITTED,),
    "merge": (SUBMITTED,),
    "reconsider": (APPROVED, REJECTED, MERGED),
    "comment": (DRAFT, SUBMITTED, REVISION_REQUESTED, APPROVED, REJECTED, MERGED),
    "endorse": (DRAFT, SUBMITTED, REVISION_REQUESTED, APPROVED, REJECTED, MERGED),
}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Proposal(Aggregate):
    class Drafted(Aggregate.Created):
        class_version = 2

        actor: str
        meeting_id: str
        theme: str
        title: str
        text: str
        rationale: str | None
        request_hash: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["request_hash"] = None

    @event(Drafted)
    def __init__(
        self,
        actor: str,
        meeting_id: str,
        theme: str,
        title: str,
        text: str,
        rationale: str | None,
        request_hash: str | None,
    ) -> None:
        self.meeting_id = meeting_id
        self.theme = theme
        self.title = title
        self.text = text
        self.rationale = rationale
        self.request_hash = request_hash
        self.proposer_id = actor
        self.status = DRAFT
        self.revision = 1
        self.final_text: str | None = None
        self.decision: dict[str, Any] | None = None
        self.merged_into: str | None = None
        self.endorsements: list[str] = []
        self.comments: list[dict[str, Any]] = []
        self.approved_at: datetime | None = None

    @property
    def is_live(self) -> bool:
        return self.status not in NOT_LIVE

    def check(self, action: str) -> None:
        """Refuse ``action`` unless the lifecycle allows it from the current state."""
        if self.status not in ALLOWED_FROM[action]:
            raise InvalidTransition("proposal", self.status, action.replace("_", " "))

    # --- commands ----------------------------------------------------------------

    def revise(
        self, actor: str, title: str | None, text: str | None, rationale: str | None
    ) -> None:
        self.check("revise")
        self._revised(actor=actor, title=title, text=text, rationale=rationale)

    def submit(self, actor: str) -> None:
        self.check("submit")
        self._submitted(actor=actor)

    def withdraw(self, actor: str, reason: str | None) -> None:
        self.check("withdraw")
        self._withdrawn(actor=actor, reason=reason)

    def approve(self, actor: str, final_text: str | None, note: str | None) -> None:
        self.check("approve")
        self._approved(actor=actor, final_text=final_text, note=note)

    def reject(self, actor: str, reason: str) -> None:
        self.check("reject")
        self._rejected(actor=actor, reason=reason)

    def request_revision(self, actor: str, reason: str) -> None:
        self.check("request_revision")
        self._revision_requested(actor=actor, reason=reason)

    def merge_into(self, actor: str, target: Proposal, reason: str) -> None:
        self.check("merge")
        if target.id == self.id:
            raise RuleViolation("a proposal cannot be merged into itself")
        if target.meeting_id != self.meeting_id or target.theme != self.theme:
            raise RuleViolation("a proposal can only be merged into one of the same theme")
        if not target.is_live:
            raise RuleViolation(f"cannot merge into a proposal that is {target.status}")
        if target.merged_into is not None:
            raise RuleViolation("merging into that proposal would make a cycle")
        self._merged(actor=actor, into=str(target.id), reason=reason)

    def reconsider(self, actor: str, reason: str) -> None:
        self.check("reconsider")
        self._reconsidered(actor=actor, reason=reason)

    def comment(
        self,
        actor: str,
        comment_id: str,
        text: str,
        idempotency: dict[str, str] | None = None,
    ) -> None:
        self.check("comment")
        self._commented(actor=actor, comment_id=comment_id, text=text, idempotency=idempotency)

    def endorse(
        self, actor: str, delegation: str, idempotency: dict[str, str] | None = None
    ) -> None:
        self.check("endorse")
        if delegation in self.endorsements:
            raise RuleViolation(f"{delegation} has already endorsed this proposal")
        self._endorsed(actor=actor, delegation=delegation, idempotency=idempotency)

    # --- events ------------------------------------------------------------------

    def _decide(self, action: str, actor: str, reason: str | None) -> None:
        self.decision = {
            "action": action,
            "by": actor,
            "at": _iso(self.modified_on),
            "reason": reason,
        }

    class Revised(Event):
        actor: str
        title: str | None
        text: str | None
        rationale: str | None

    @event(Revised)
    def _revised(
        self, actor: str, title: str | None, text: str | None, rationale: str | None
    ) -> None:
        if title is not None:
            self.title = title
        if text is not None and text != self.text:
            self.text = text
            self.revision += 1
        if rationale is not None:
            self.rationale = rationale

    class Submitted(Event):
        actor: str

    @event(Submitted)
    def _submitted(self, actor: str) -> None:
        self.status = SUBMITTED

    class Withdrawn(Event):
        actor: str
        reason: str | None

    @event(Withdrawn)
    def _withdrawn(self, actor: str, reason: str | None) -> None:
        self.status = WITHDRAWN

    class Approved(Event):
        actor: str
        final_text: str | None
        note: str | None

    @event(Approved)
    def _approved(self, actor: str, final_text: str | None, note: str | None) -> None:
        self.status = APPROVED
        self.final_text = final_text
        self.approved_at = self.modified_on
        self._decide("approve", actor, note)

    class Rejected(Event):
        actor: str
        reason: str

    @event(Rejected)
    def _rejected(self, actor: str, reason: str) -> None:
        self.status = REJECTED
        self._decide("reject", actor, reason)

    class RevisionRequested(Event):
        actor: str
        reason: str

    @event(RevisionRequested)
    def _revision_requested(self, actor: str, reason: str) -> None:
        self.status = REVISION_REQUESTED
        self._decide("request_revision", actor, reason)

    class Merged(Event):
        actor: str
        into: str
        reason: str

    @event(Merged)
    def _merged(self, actor: str, into: str, reason: str) -> None:
        self.status = MERGED
        self.merged_into = into
        self._decide("merge", actor, reason)

    class Reconsidered(Event):
        actor: str
        reason: str

    @event(Reconsidered)
    def _reconsidered(self, actor: str, reason: str) -> None:
        self.status = SUBMITTED
        self.final_text = None
        self.merged_into = None
        self.approved_at = None
        self._decide("reconsider", actor, reason)

    class Commented(Event):
        class_version = 2

        actor: str
        comment_id: str
        text: str
        idempotency: dict[str, str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["idempotency"] = None

    @event(Commented)
    def _commented(
        self, actor: str, comment_id: str, text: str, idempotency: dict[str, str] | None
    ) -> None:
        remember(self, idempotency)
        self.comments.append(
            {"id": comment_id, "author": actor, "text": text, "at": _iso(self.modified_on)}
        )

    class Endorsed(Event):
        class_version = 2

        actor: str
        delegation: str
        idempotency: dict[str, str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["idempotency"] = None

    @event(Endorsed)
    def _endorsed(self, actor: str, delegation: str, idempotency: dict[str, str] | None) -> None:
        remember(self, idempotency)
        self.endorsements.append(delegation)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "meeting_id": self.meeting_id,
            "theme": self.theme,
            "title": self.title,
            "text": self.text,
            "rationale": self.rationale,
            "status": self.status,
            "proposer_id": self.proposer_id,
            "endorsements": list(self.endorsements),
            "revision": self.revision,
            "final_text": self.final_text,
            "decision": dict(self.decision) if self.decision else None,
            "merged_into": self.merged_into,
            "version": self.version,
        }


class MeetingProposals(Aggregate):
    """Placeholder namespace for the per-meeting log of proposal ids."""

    class ProposalRegistered(Event):
        proposal_id: str
        theme: str
