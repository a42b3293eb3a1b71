"""The meeting lifecycle, and what may happen to proposals in each state of their meeting.

Given a meeting in a state (with proposals ready for every action), when an action, then
exactly the expected events, or ``InvalidTransition`` and nothing recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import pytest

from domain.application import SYSTEM, PreparatoryMeetings, ProposalLogged, Result
from domain.errors import InvalidInput, InvalidTransition, NotFound, RuleViolation
from domain.meeting import CLOSED, FORWARDED, OPEN, SCHEDULED, Meeting
from domain.proposal import APPROVED, DRAFT, SUBMITTED, Proposal
from tests.given import OTHER_DELEGATION, SAFETY, TECH, Given, forwarding, kinds, recorded_since

# y = allowed, - = refused with InvalidTransition.
TABLE = """
action            scheduled  open  closed  forwarded
open              y          -     -       -
close             -          y     -       -
forward           -          -     y       -
reopen            -          -     -       y
enrol             y          y     y       -
order             -          y     y       -
draft             -          y     -       -
submit            -          y     -       -
revise            -          y     -       -
withdraw          -          y     y       -
approve           -          y     y       -
reject            -          y     y       -
request_revision  -          y     y       -
merge             -          y     y       -
reconsider        -          y     y       -
comment           -          y     y       -
endorse           -          y     y       -
"""
MEETING_ACTIONS = ("open", "close", "forward", "reopen", "enrol", "order")
# The meeting's state after an allowed meeting action.
MEETING_STATE_AFTER = {"open": OPEN, "close": CLOSED, "forward": FORWARDED, "reopen": CLOSED}
EVENTS = {
    "open": [Meeting.Opened],
    "close": [Meeting.Closed],
    "forward": [Meeting.OutcomeForwarded],
    "reopen": [Meeting.Reopened],
    "enrol": [Meeting.ParticipantEnrolled],
    "order": [Meeting.RecommendationsOrdered],
    "draft": [Proposal.Drafted, ProposalLogged],
    "submit": [Proposal.Submitted],
    "revise": [Proposal.Revised],
    "withdraw": [Proposal.Withdrawn],
    "approve": [Proposal.Approved],
    "reject": [Proposal.Rejected],
    "request_revision": [Proposal.RevisionRequested],
    "merge": [Proposal.Merged],
    "reconsider": [Proposal.Reconsidered],
    "comment": [Proposal.Commented],
    "endorse": [Proposal.Endorsed],
}


def parse(table: str) -> list[tuple[str, str, bool]]:
    lines = [line.split() for line in table.strip().splitlines()]
    states = lines[0][1:]
    return [
        (state, action, cell == "y")
        for action, *row in lines[1:]
        for state, cell in zip(states, row, strict=True)
    ]


CELLS = parse(TABLE)


def test_the_table_covers_every_meeting_state_and_action() -> None:
    assert {s for s, _, _ in CELLS} == {SCHEDULED, OPEN, CLOSED, FORWARDED}
    assert {a for _, a, _ in CELLS} == set(EVENTS)


@dataclass
class World:
    """A meeting in a state, and the proposals each action needs."""

    g: Given
    draft: str
    submitted: str
    target: str
    approved: str
    newcomer: str


def world_in(app: PreparatoryMeetings, state: str) -> World:
    g = Given(app)
    newcomer = g.user("Late arrival", "Brazil")
    if state == SCHEDULED:
        # Commands cannot put proposals into a scheduled meeting: record their events.
        w = World(
            g,
            g.proposal_by_events(DRAFT),
            g.proposal_by_events(SUBMITTED),
            g.proposal_by_events(SUBMITTED),
            g.proposal_by_events(APPROVED),
            newcomer,
        )
    else:
        g.open()
        w = World(
            g,
            g.proposal(DRAFT),
            g.proposal(SUBMITTED),
            g.proposal(SUBMITTED, by=g.other_rapporteur),
            g.proposal(APPROVED),
            newcomer,
        )
    if state in (CLOSED, FORWARDED):
        g.close()
    if state == FORWARDED:
        g.forward()
    assert g.meeting_status() == state
    return w


def action(w: World, name: str) -> Callable[[], Result]:
    g, app, m = w.g, w.g.app, w.g.meeting
    commands: dict[str, Callable[[], Result]] = {
        "open": lambda: app.open_meeting(g.secretariat, m),
        "close": lambda: app.close_meeting(g.secretariat, m),
        "forward": lambda: app.forward_meeting(g.secretariat, m, forwarding(app)),
        "reopen": lambda: app.reopen_meeting(g.secretariat, m, reason="A late correction"),
        "enrol": lambda: app.enrol_participant(g.secretariat, m, w.newcomer, "observer", []),
        "order": lambda: app.order_theme(g.chair, m, TECH, [w.approved]),
        "draft": lambda: app.draft_proposal(g.proposer, m, TECH, "Drones", "Use drones."),
        "submit": lambda: app.submit_proposal(g.proposer, w.draft),
        "revise": lambda: app.revise_proposal(g.proposer, w.draft, text="Use more drones."),
        "withdraw": lambda: app.withdraw_proposal(g.proposer, w.draft),
        "approve": lambda: app.approve_proposal(g.chair, w.submitted),
        "reject": lambda: app.reject_proposal(g.chair, w.submitted, reason="Out of scope"),
        "request_revision": lambda: app.request_revision(g.chair, w.submitted, reason="Why?"),
        "merge": lambda: app.merge_proposal(g.chair, w.submitted, w.target, reason="Same"),
        "reconsider": lambda: app.reconsider_proposal(g.chair, w.approved, reason="Again"),
        "comment": lambda: app.comment_on_proposal(g.chair, w.submitted, "Agreed."),
        "endorse": lambda: app.endorse_proposal(g.other_rapporteur, w.submitted, OTHER_DELEGATION),
    }
    return commands[name]


def aggregate_states(w: World) -> list[dict[str, object]]:
    meeting = w.g.app.get_meeting(SYSTEM, w.g.meeting).as_dict()
    proposals = [w.g.state(p) for p in (w.draft, w.submitted, w.target, w.approved)]
    return [meeting, *proposals]


@pytest.mark.parametrize(
    ("state", "name"), [(s, a) for s, a, allowed in CELLS if allowed], ids=lambda v: v
)
def test_an_allowed_action_in_this_meeting_state_records_exactly_its_events(
    app: PreparatoryMeetings, state: str, name: str
) -> None:
    w = world_in(app, state)
    command = action(w, name)
    before = app.last_position()

    result = command()

    recorded = recorded_since(app, before)
    assert kinds(recorded) == EVENTS[name]
    assert result.position == app.last_position()
    if name in MEETING_ACTIONS:
        assert {e.originator_id for e in recorded} == {UUID(w.g.meeting)}
    else:
        assert recorded[0].originator_id == UUID(result.state["id"])
    assert w.g.meeting_status() == MEETING_STATE_AFTER.get(name, state)


@pytest.mark.parametrize(
    ("state", "name"), [(s, a) for s, a, allowed in CELLS if not allowed], ids=lambda v: v
)
def test_a_refused_action_in_this_meeting_state_raises_and_records_nothing(
    app: PreparatoryMeetings, state: str, name: str
) -> None:
    w = world_in(app, state)
    command = action(w, name)
    before, snapshot = app.last_position(), aggregate_states(w)

    with pytest.raises(InvalidTransition):
        command()

    assert app.last_position() == before
    assert aggregate_states(w) == snapshot


# --- forwarding and reopening ---------------------------------------------------------------


def test_each_forwarding_records_the_next_outcome_version(app: PreparatoryMeetings) -> None:
    g = Given(app).open().close().forward().reopen()
    g.forward()
    versions = app.get_meeting(SYSTEM, g.meeting).outcome_versions
    assert [v["version"] for v in versions] == [1, 2]
    assert [v["forwarded_by"] for v in versions] == [SYSTEM, SYSTEM]
    document, signature = app.get_forwarded_document(SYSTEM, g.meeting, 1)
    assert (signature, versions[0]["sha256"]) == (
        "signed-for-tests",
        hashlib.sha256(document.encode()).hexdigest(),
    )
    with pytest.raises(NotFound):
        app.get_forwarded_document(SYSTEM, g.meeting, 3)


def test_a_reopened_meeting_is_closed_and_records_its_reason(app: PreparatoryMeetings) -> None:
    g = Given(app).open().close().forward()
    before = app.last_position()
    app.reopen_meeting(g.secretariat, g.meeting, reason="A late correction")
    [reopened] = recorded_since(app, before)
    assert isinstance(reopened, Meeting.Reopened)
    assert (reopened.reason, reopened.actor) == ("A late correction", g.secretariat)
    assert g.meeting_status() == CLOSED


@pytest.mark.parametrize("reason", [None, "", "  \n", "x" * 5_001])
def test_a_meeting_is_not_reopened_without_a_proper_reason(
    app: PreparatoryMeetings, reason: str | None
) -> None:
    g = Given(app).open().close().forward()
    before = app.last_position()
    with pytest.raises(InvalidInput):
        app.reopen_meeting(g.secretariat, g.meeting, reason=reason)  # type: ignore[arg-type]
    assert app.last_position() == before
    assert g.meeting_status() == FORWARDED


def test_the_outcome_is_compiled_only_for_a_closed_meeting(app: PreparatoryMeetings) -> None:
    g = Given(app).open()
    compiled: list[Meeting] = []

    def compile_outcome(meeting: Meeting) -> object:
        compiled.append(meeting)
        raise AssertionError("must not compile the outcome of an open meeting")

    with pytest.raises(InvalidTransition):
        app.forward_meeting(g.secretariat, g.meeting, compile_outcome)  # type: ignore[arg-type]
    assert compiled == []


# --- enrolment ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "themes"),
    [
        ("moderator", [TECH]),
        ("chair", []),
        ("rapporteur", []),
        ("chair", ["no-such-theme"]),
        ("rapporteur", [TECH, TECH]),
    ],
)
def test_an_enrolment_needs_a_known_role_and_known_themes(
    app: PreparatoryMeetings, role: str, themes: list[str]
) -> None:
    g = Given(app)
    newcomer = g.user("Late arrival", "Brazil")
    before = app.last_position()
    with pytest.raises(InvalidInput):
        app.enrol_participant(g.secretariat, g.meeting, newcomer, role, themes)
    assert app.last_position() == before


def test_a_new_enrolment_replaces_the_participants_former_role(app: PreparatoryMeetings) -> None:
    g = Given(app)
    app.enrol_participant(g.secretariat, g.meeting, g.observer, "chair", [TECH, SAFETY])
    meeting = app.get_meeting(SYSTEM, g.meeting)
    assert meeting.participants[g.observer] == {"role": "chair", "themes": [TECH, SAFETY]}


# --- the order of recommendations -----------------------------------------------------------


def test_the_order_must_name_every_approved_proposal_of_the_theme_once(
    app: PreparatoryMeetings,
) -> None:
    g = Given(app).open()
    first, second = g.proposal(APPROVED), g.proposal(APPROVED)
    submitted = g.proposal(SUBMITTED)
    before = app.last_position()
    for refused in ([first], [first, second, second], [first, second, submitted]):
        with pytest.raises(RuleViolation):
            app.order_theme(g.chair, g.meeting, TECH, refused)
    assert app.last_position() == before

    app.order_theme(g.chair, g.meeting, TECH, [second, first])
    assert app.get_meeting(SYSTEM, g.meeting).orders == {TECH: [second, first]}


@pytest.mark.parametrize(
    "spelling",
    [str, str.upper, UUID, lambda s: UUID(s).hex],
    ids=["canonical", "upper-case", "uuid", "hex"],
)
def test_no_decision_can_slip_in_while_the_outcome_is_compiled_however_the_id_is_spelt(
    app: PreparatoryMeetings, spelling: Callable[[str], object]
) -> None:
    g = Given(app).open()
    g.proposal(SUBMITTED)
    g.close()
    held: list[bool] = []

    def compile_outcome(meeting: Meeting) -> object:
        # decisions on the meeting's proposals take this lock (see _proposal_command)
        held.append(app._meeting_lock(str(meeting.id)).locked())
        return forwarding(app)(meeting)

    app.forward_meeting(g.secretariat, spelling(g.meeting), compile_outcome)  # type: ignore[arg-type]
    assert held == [True]
