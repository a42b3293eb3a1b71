"""Random sequences of commands against a plain model of the rules.

A meeting with two themes, a chair per theme, two rapporteurs (one of them in both themes)
and the secretariat. Hypothesis tries sequences of drafting, revising, submitting,
withdrawing, deciding, merging, reconsidering, commenting, endorsing, closing, forwarding
and reopening, each by the person entitled to it or by anyone else. The model, written from
the rules in ``docs/domain.md`` and knowing nothing of the aggregates, says whether a step
is allowed (and what it changes) or refused (and with which error). After every step, every
proposal's status, revision, text, endorsements, final wording, merge target and comments,
the meeting's status and the meeting's log of proposals equal the model; a refused step
records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.application import SYSTEM, Forwarding, PreparatoryMeetings
from domain.errors import DomainError, Forbidden, InvalidTransition, RuleViolation
from domain.meeting import Meeting
from domain.proposal import Proposal

TECH, SAFETY = "technology", "safety-security"
THEMES = [
    {"key": TECH, "title": "Use of technology in peacekeeping"},
    {"key": SAFETY, "title": "Safety and security of peacekeepers"},
]
PEOPLE = {
    # name: (delegation, role in the meeting, its themes)
    "secretariat": ("UN DPO", None, ()),
    "chair_tech": ("Norway", "chair", (TECH,)),
    "chair_safety": ("Uruguay", "chair", (SAFETY,)),
    "rapporteur_pk": ("Pakistan", "rapporteur", (TECH,)),
    "rapporteur_kr": ("Republic of Korea", "rapporteur", (TECH, SAFETY)),
}
CHAIR_OF = {TECH: "chair_tech", SAFETY: "chair_safety"}
NAMES = sorted(PEOPLE)
ENTITLED = "entitled"  # the proposer, the chair of the theme or the secretariat, as fits
WHO = st.sampled_from([ENTITLED, ENTITLED, *NAMES])
INDEX = st.integers(0, 15)
TEXTS = ["Use drones for patrols.", "Share early-warning data.", "Train medics."]
OPEN, CLOSED, FORWARDED = "open", "closed", "forwarded"
NOT_LIVE = ("withdrawn", "rejected", "merged")


@dataclass
class Modelled:
    """What the rules say a proposal is: nothing but plain values."""

    theme: str
    proposer: str
    status: str
    text: str
    revision: int = 1
    endorsements: list[str] = field(default_factory=list)
    final_text: str | None = None
    merged_into: int | None = None
    comments: int = 0


# A refusal (the error class expected) or an allowed step (what it changes in the model).
Outcome = type[DomainError] | Callable[[], None]


class MeetingRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = PreparatoryMeetings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.ids: dict[str, str] = {}
        self.proposal_ids: list[str] = []
        self.model: list[Modelled] = []
        self.meeting_status = OPEN
        self.meeting = ""

    def teardown(self) -> None:
        self.app.close()

    @initialize()
    def a_meeting_is_open_with_its_people_and_three_proposals(self) -> None:
        app = self.app
        for name, (delegation, _, _) in PEOPLE.items():
            result = app.create_user(SYSTEM, name, delegation, secretariat=name == "secretariat")
            self.ids[name] = str(result.state["id"])
        self.meeting = str(
            app.schedule_meeting(
                SYSTEM, "Preparatory", "Islamabad", "2025-04-15", "2025-04-16", ["PK"], "b", THEMES
            ).state["id"]
        )
        for name, (_, role, themes) in PEOPLE.items():
            if role is not None:
                app.enrol_participant(SYSTEM, self.meeting, self.ids[name], role, list(themes))
        app.open_meeting(SYSTEM, self.meeting)
        self.draft("rapporteur_pk", TECH, False)
        self.draft("rapporteur_kr", TECH, True)
        self.draft("rapporteur_kr", SAFETY, True)

    # --- the model's reading of the rules ----------------------------------------------

    @staticmethod
    def role(name: str) -> str | None:
        return PEOPLE[name][1]

    @staticmethod
    def themes(name: str) -> tuple[str, ...]:
        return PEOPLE[name][2]

    def pick(self, index: int) -> tuple[str, Modelled]:
        index %= len(self.model)
        return self.proposal_ids[index], self.model[index]

    def by_proposer(
        self, who: str, p: Modelled, states: tuple[str, ...], meeting: tuple[str, ...]
    ) -> type[DomainError] | None:
        """The refusal of a proposer's step, if any."""
        if who != p.proposer or p.theme not in self.themes(who):
            return Forbidden
        if p.status not in states or self.meeting_status not in meeting:
            return InvalidTransition
        return None

    def by_chair(self, who: str, p: Modelled, states: tuple[str, ...]) -> type[DomainError] | None:
        """The refusal of a chair's decision, if any."""
        if self.role(who) != "chair" or p.theme not in self.themes(who):
            return Forbidden
        if p.status not in states or self.meeting_status not in (OPEN, CLOSED):
            return InvalidTransition
        return None

    def attempt(self, step: str, expected: Outcome, command: Callable[[], Any]) -> None:
        before = self.app.last_position()
        event(f"{step}: {expected.__name__ if isinstance(expected, type) else 'allowed'}")
        if isinstance(expected, type):
            try:
                command()
            except DomainError as e:
                assert type(e) is expected, f"{step}: expected {expected.__name__}, got {e!r}"
            else:
                raise AssertionError(f"{step}: expected {expected.__name__}, but was allowed")
            assert self.app.last_position() == before, f"{step}: a refusal recorded events"
        else:
            command()
            expected()
            assert self.app.last_position() > before, f"{step}: recorded nothing"

    # --- proposals ---------------------------------------------------------------------

    @rule(who=st.sampled_from(NAMES), theme=st.sampled_from([TECH, SAFETY]), submit=st.booleans())
    def draft(self, who: str, theme: str, submit: bool) -> None:
        text = TEXTS[len(self.model) % len(TEXTS)]
        made: list[str] = []

        def drafted() -> None:
            status = "submitted" if submit else "draft"
            self.model.append(Modelled(theme=theme, proposer=who, status=status, text=text))
            self.proposal_ids.append(made[0])

        def command() -> None:
            result = self.app.draft_proposal(
                self.ids[who], self.meeting, theme, "A title", text, submit=submit
            )
            made.append(str(result.state["id"]))

        expected: Outcome = drafted
        if self.role(who) != "rapporteur" or theme not in self.themes(who):
            expected = Forbidden
        elif self.meeting_status != OPEN:
            expected = InvalidTransition
        self.attempt("draft", expected, command)

    @rule(who=WHO, index=INDEX, text=st.sampled_from(TEXTS))
    def revise(self, who: str, index: int, text: str) -> None:
        pid, p = self.pick(index)
        who = p.proposer if who == ENTITLED else who

        def revised() -> None:
            if text != p.text:
                p.text, p.revision = text, p.revision + 1

        refusal = self.by_proposer(who, p, ("draft", "revision_requested"), (OPEN,))
        self.attempt(
            "revise",
            refusal or revised,
            lambda: self.app.revise_proposal(self.ids[who], pid, text=text),
        )

    @rule(who=WHO, index=INDEX)
    def submit(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        who = p.proposer if who == ENTITLED else who

        def submitted() -> None:
            p.status = "submitted"

        refusal = self.by_proposer(who, p, ("draft", "revision_requested"), (OPEN,))
        self.attempt(
            "submit", refusal or submitted, lambda: self.app.submit_proposal(self.ids[who], pid)
        )

    @rule(who=WHO, index=INDEX)
    def withdraw(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        who = p.proposer if who == ENTITLED else who

        def withdrawn() -> None:
            p.status = "withdrawn"

        states = ("draft", "submitted", "revision_requested")
        refusal = self.by_proposer(who, p, states, (OPEN, CLOSED))
        self.attempt(
            "withdraw", refusal or withdrawn, lambda: self.app.withdraw_proposal(self.ids[who], pid)
        )

    @rule(who=WHO, index=INDEX, final_text=st.sampled_from([None, "The chair's wording."]))
    def approve(self, who: str, index: int, final_text: str | None) -> None:
        pid, p = self.pick(index)
        who = CHAIR_OF[p.theme] if who == ENTITLED else who

        def approved() -> None:
            p.status, p.final_text = "approved", final_text

        self.attempt(
            "approve",
            self.by_chair(who, p, ("submitted",)) or approved,
            lambda: self.app.approve_proposal(self.ids[who], pid, final_text=final_text),
        )

    @rule(who=WHO, index=INDEX)
    def reject(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        who = CHAIR_OF[p.theme] if who == ENTITLED else who

        def rejected() -> None:
            p.status = "rejected"

        self.attempt(
            "reject",
            self.by_chair(who, p, ("submitted",)) or rejected,
            lambda: self.app.reject_proposal(self.ids[who], pid, reason="Out of scope"),
        )

    @rule(who=WHO, index=INDEX)
    def request_revision(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        who = CHAIR_OF[p.theme] if who == ENTITLED else who

        def requested() -> None:
            p.status = "revision_requested"

        self.attempt(
            "request_revision",
            self.by_chair(who, p, ("submitted",)) or requested,
            lambda: self.app.request_revision(self.ids[who], pid, reason="Be specific"),
        )

    @rule(who=WHO, index=INDEX, into=INDEX)
    def merge(self, who: str, index: int, into: int) -> None:
        pid, p = self.pick(index)
        target_id, target = self.pick(into)
        target_index = into % len(self.model)
        who = CHAIR_OF[p.theme] if who == ENTITLED else who

        def merged() -> None:
            p.status, p.merged_into = "merged", target_index

        expected: Outcome = self.by_chair(who, p, ("submitted",)) or merged
        if not isinstance(expected, type) and (
            target is p or target.theme != p.theme or target.status in NOT_LIVE
        ):
            expected = RuleViolation
        self.attempt(
            "merge",
            expected,
            lambda: self.app.merge_proposal(self.ids[who], pid, target_id, reason="Same idea"),
        )

    @rule(who=WHO, index=INDEX)
    def reconsider(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        who = CHAIR_OF[p.theme] if who == ENTITLED else who

        def reconsidered() -> None:
            p.status, p.final_text, p.merged_into = "submitted", None, None

        self.attempt(
            "reconsider",
            self.by_chair(who, p, ("approved", "rejected", "merged")) or reconsidered,
            lambda: self.app.reconsider_proposal(self.ids[who], pid, reason="New facts"),
        )

    @rule(who=WHO, index=INDEX)
    def comment(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        who = CHAIR_OF[p.theme] if who == ENTITLED else who

        def commented() -> None:
            p.comments += 1

        expected: Outcome = commented
        if self.role(who) not in ("chair", "rapporteur"):
            expected = Forbidden
        elif p.status == "withdrawn" or self.meeting_status == FORWARDED:
            expected = InvalidTransition
        self.attempt(
            "comment", expected, lambda: self.app.comment_on_proposal(self.ids[who], pid, "Yes.")
        )

    @rule(who=WHO, index=INDEX)
    def endorse(self, who: str, index: int) -> None:
        pid, p = self.pick(index)
        if who == ENTITLED:
            who = "rapporteur_kr" if p.proposer == "rapporteur_pk" else "rapporteur_pk"
        delegation = PEOPLE[who][0]

        def endorsed() -> None:
            p.endorsements.append(delegation)

        expected: Outcome = endorsed
        if self.role(who) != "rapporteur":
            expected = Forbidden
        elif PEOPLE[p.proposer][0] == delegation:
            expected = RuleViolation  # the proposing delegation does not endorse itself
        elif p.status == "withdrawn" or self.meeting_status == FORWARDED:
            expected = InvalidTransition
        elif delegation in p.endorsements:
            expected = RuleViolation
        self.attempt(
            "endorse",
            expected,
            lambda: self.app.endorse_proposal(self.ids[who], pid, delegation),
        )

    # --- the meeting ---------------------------------------------------------------------

    @rule(who=WHO, step=st.sampled_from(["next", "next", "open", "close", "forward", "reopen"]))
    def meeting_step(self, who: str, step: str) -> None:
        """A step of the meeting's lifecycle: ``next`` is the one its state leads to."""
        if step == "next":
            step = {OPEN: "close", CLOSED: "forward", FORWARDED: "reopen"}[self.meeting_status]
        who = "secretariat" if who == ENTITLED else who
        app, m, actor = self.app, self.meeting, self.ids[who]
        start, end = {
            "open": ("scheduled", OPEN),
            "close": (OPEN, CLOSED),
            "forward": (CLOSED, FORWARDED),
            "reopen": (FORWARDED, CLOSED),
        }[step]
        command: Callable[[], Any] = {
            "open": lambda: app.open_meeting(actor, m),
            "close": lambda: app.close_meeting(actor, m),
            "forward": lambda: app.forward_meeting(actor, m, self.outcome),
            "reopen": lambda: app.reopen_meeting(actor, m, reason="A correction"),
        }[step]

        def moved() -> None:
            self.meeting_status = end

        expected: Outcome = moved
        if who != "secretariat":
            expected = Forbidden
        elif self.meeting_status != start:
            expected = InvalidTransition
        self.attempt(step, expected, command)

    def outcome(self, meeting: Meeting) -> Forwarding:
        return Forwarding("{}", "0" * 64, self.app.last_position(), "signature")

    # --- after every step --------------------------------------------------------------

    @invariant()
    def the_record_equals_the_model(self) -> None:
        if not self.meeting:
            return
        assert self.app.get_meeting(SYSTEM, self.meeting).status == self.meeting_status
        for pid, p in zip(self.proposal_ids, self.model, strict=True):
            proposal: Proposal = self.app.repository.get(UUID(pid))
            merged_into = None if p.merged_into is None else self.proposal_ids[p.merged_into]
            assert (
                proposal.status,
                proposal.revision,
                proposal.text,
                proposal.endorsements,
                proposal.final_text,
                proposal.merged_into,
                len(proposal.comments),
                proposal.proposer_id,
                proposal.theme,
            ) == (
                p.status,
                p.revision,
                p.text,
                p.endorsements,
                p.final_text,
                merged_into,
                p.comments,
                self.ids[p.proposer],
                p.theme,
            )
        logged = [e.proposal_id for e in self.app.proposal_ids(self.meeting)]
        assert logged == self.proposal_ids


MeetingRules.TestCase.settings = settings(
    max_examples=250,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_commands_in_any_order_follow_the_rules = MeetingRules.TestCase
