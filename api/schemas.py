"""Request and response bodies of the v1 contract."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain import rules

Title = Annotated[str, StringConstraints(min_length=1, max_length=rules.TITLE_MAX)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=rules.TEXT_MAX)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=rules.REASON_MAX)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=rules.NAME_MAX)]
Key = Annotated[str, StringConstraints(pattern=rules.KEY_PATTERN.pattern)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
T = TypeVar("T")


class Body(BaseModel):
    """A request body: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- users -----------------------------------------------------------------------


class UserCreate(Body):
    name: Name
    delegation: Name
    secretariat: bool = False
    ministerial: bool = False


class UserOut(Out):
    id: str
    name: str
    delegation: str
    secretariat: bool
    ministerial: bool
    version: int


class UserCreated(UserOut):
    token: str | None = Field(
        description="the bearer token, shown once only: null when an Idempotency-Key replays "
        "the creation (issue a new one with POST /api/v1/users/{id}/tokens)"
    )
    position: int


class TokenOut(Out):
    token: str
    position: int


class RoleOut(Out):
    role: str
    meeting_id: str | None = None
    themes: list[str] | None = None


class MeOut(Out):
    id: str
    name: str
    delegation: str
    roles: list[RoleOut]


# --- meetings ----------------------------------------------------------------------


class Theme(Body):
    key: Key
    title: Title


class MeetingCreate(Body):
    title: Title
    venue: Name
    starts_on: Annotated[dt.date, Field(strict=False, description="YYYY-MM-DD")]
    ends_on: Annotated[dt.date, Field(strict=False, description="YYYY-MM-DD")]
    hosts: Annotated[list[Name], Field(min_length=1, max_length=20)]
    ministerial: Key
    themes: Annotated[list[Theme], Field(min_length=1, max_length=20)]


class ThemeOut(Out):
    key: str
    title: str


class VersionRecord(Out):
    version: int
    sha256: str
    document_position: int
    forwarded_at: str
    forwarded_by: str


class MeetingOut(Out):
    id: str
    title: str
    venue: str
    starts_on: str
    ends_on: str
    hosts: list[str]
    ministerial: str
    themes: list[ThemeOut]
    status: Literal["scheduled", "open", "closed", "forwarded"]
    outcome_versions: list[VersionRecord]
    version: int


class MeetingCommandOut(MeetingOut):
    position: int


class ForwardedOut(VersionRecord):
    position: int


class ParticipantCreate(Body):
    user_id: Id
    role: Literal["chair", "rapporteur", "observer"]
    themes: Annotated[list[Key], Field(max_length=20)] = []


class ReasonBody(Body):
    reason: Reason


class OrderBody(Body):
    proposal_ids: Annotated[list[Id], Field(max_length=2000)]


# --- proposals --------------------------------------------------------------------


class ProposalCreate(Body):
    theme: Key
    title: Title
    text: Text
    rationale: Annotated[str, StringConstraints(max_length=rules.TEXT_MAX)] | None = None
    submit: bool = False


class ProposalPatch(Body):
    title: Title | None = None
    text: Text | None = None
    rationale: Annotated[str, StringConstraints(max_length=rules.TEXT_MAX)] | None = None


class WithdrawBody(Body):
    reason: Annotated[str, StringConstraints(max_length=rules.REASON_MAX)] | None = None


class ApproveBody(Body):
    final_text: Text | None = None
    note: Annotated[str, StringConstraints(max_length=rules.REASON_MAX)] | None = None


class MergeBody(Body):
    into: Id
    reason: Reason


class CommentCreate(Body):
    text: Text


class EndorsementCreate(Body):
    delegation: Name


class PersonOut(Out):
    id: str
    name: str | None
    delegation: str | None


class DecisionOut(Out):
    action: str
    by: str
    at: str
    reason: str | None


ProposalStatus = Literal[
    "draft", "submitted", "revision_requested", "approved", "rejected", "merged", "withdrawn"
]


class ProposalOut(Out):
    id: str
    meeting_id: str
    theme: str
    title: str
    text: str
    rationale: str | None
    status: ProposalStatus
    proposer: PersonOut
    endorsements: list[str]
    revision: int
    final_text: str | None
    decision: DecisionOut | None
    merged_into: str | None
    version: int


class ProposalCommandOut(ProposalOut):
    position: int


class CommentOut(Out):
    id: str
    author: str
    text: str
    at: str


class CommentCreated(CommentOut):
    position: int


class EventOut(Out):
    position: int
    type: str
    at: str
    actor: str | None
    aggregate_id: str
    data: dict[str, Any]


class HistoryItem(Out):
    position: int
    type: str
    at: str
    actor: str | None
    data: dict[str, Any]


class Page(Out, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Health(Out):
    status: str


class Ready(Out):
    status: str
    store_position: int
    view_position: int
    lag: int


class ChangeItem(Out):
    proposal_id: str
    number: str
    title: str


class Reworded(Out):
    proposal_id: str
    number: str
    before: str
    after: str


class Renumbered(Out):
    proposal_id: str
    before: str
    after: str


class ChangesOut(Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    added: list[ChangeItem]
    removed: list[ChangeItem]
    reworded: list[Reworded]
    renumbered: list[Renumbered]


class SigningKeyOut(Out):
    algorithm: Literal["Ed25519"]
    pem: str
    raw_base64: str
