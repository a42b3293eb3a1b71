"""The proposal lifecycle: given a proposal in a state, when an action, then events or a refusal.

Every cell of the state x action table below is a test of its own. An allowed cell records
exactly one event of the expected class and leaves the proposal in the expected state; a
refused cell raises ``InvalidTransition`` and records nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from domain.application import SYSTEM, PreparatoryMeetings, ProposalLogged, Result
from domain.errors import InvalidInput, InvalidTransition, RuleViolation
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
from tests.given import OTHER_DELEGATION, SAFETY, TECH, Given, kinds, recorded_since

# The lifecycle as the domain describes it: the state an action leads to, or "-" if refused.
# dr = draft, sub = submitted, rr = revision_requested, ap = approved, rj = rejected,
# mg = merged, wd = withdrawn.
TABLE = """
state               revise  submit  withdraw  approve  reject  request_revision  merge  reconsider  comment  endorse
draft               dr      sub     wd        -        -       -                 -      -           dr       dr
submitted           -       -       wd        ap       rj      rr                mg     -           sub      sub
revision_requested  rr      sub     wd        -        -       -                 -      -           rr       rr
approved            -       -       -         -        -       -                 -      sub         ap       ap
rejected            -       -       -         -        -       -                 -      sub         rj       rj
merged              -       -       -         -        -       -                 -      sub         mg       mg
withdrawn           -       -       -         -        -       -                 -      -           -        -
"""  # noqa: E501
SHORT = {
    "dr": DRAFT,
    "sub": SUBMITTED,
    "rr": REVISION_REQUESTED,
    "ap": APPROVED,
    "rj": REJECTED,
    "mg": MERGED,
    "wd": WITHDRAWN,
}
EVENT = {
    "revise": Proposal.Revised,
    "submit": Proposal.Submitted,
    "withdraw": Proposal.Withdrawn,
    "approve": Proposal.Approved,
    "reject": Proposal.Rejected,
    "request_revision": Proposal.RevisionRequested,
    "merge": Proposal.Merged,
    "reconsider": Proposal.Reconsidered,
    "comment": Proposal.Commented,
    "endorse": Proposal.Endorsed,
}


def parse(table: str) -> list[tuple[str, str, str | None]]:
    lines = [line.split() for line in table.strip().splitlines()]
    actions = lines[0][1:]
    cells = []
    for state, *row in lines[1:]:
        assert len(row) == len(actions), state
        for action, cell in zip(actions, row, strict=True):
            cells.append((state, action, None if cell == "-" else SHORT[cell]))
    return cells


CELLS = parse(TABLE)
ALLOWED = [(s, a, to) for s, a, to in CELLS if to is not None]
REFUSED = [(s, a) for s, a, to in CELLS if to is None]


def test_the_table_covers_every_state_and_every_action() -> None:
    states = {s for s, _, _ in CELLS}
    actions = {a for _, a, _ in CELLS}
    assert states == {DRAFT, SUBMITTED, REVISION_REQUESTED, APPROVED, REJECTED, MERGED, WITHDRAWN}
    assert actions == set(EVENT)
    assert len(CELLS) == 70


def action(g: Given, name: str, pid: str) -> Callable[[], Result]:
    """The command for ``name`` on ``pid`` by the actor entitled to it, with valid input.

    Anything the command needs beforehand (a merge target) is made here, before it runs.
    """
    app = g.app
    if name == "revise":
        return lambda: app.revise_proposal(g.proposer, pid, text="Equip every mission better.")
    if name == "submit":
        return lambda: app.submit_proposal(g.proposer, pid)
    if name == "withdraw":
        return lambda: app.withdraw_proposal(g.proposer, pid)
    if name == "approve":
        return lambda: app.approve_proposal(g.chair, pid, final_text="Final wording.")
    if name == "reject":
        return lambda: app.reject_proposal(g.chair, pid, reason="Outside the mandate")
    if name == "request_revision":
        return lambda: app.request_revision(g.chair, pid, reason="Say which missions")
    if name == "merge":
        target = g.proposal(SUBMITTED, by=g.other_rapporteur)
        return lambda: app.merge_proposal(g.chair, pid, target, reason="The same idea")
    if name == "reconsider":
        return lambda: app.reconsider_proposal(g.chair, pid, reason="New information")
    if name == "comment":
        return lambda: app.comment_on_proposal(g.chair, pid, "Which missions first?")
    if name == "endorse":
        return lambda: app.endorse_proposal(g.other_rapporteur, pid, OTHER_DELEGATION)
    raise AssertionError(name)


@pytest.fixture
def given(app: PreparatoryMeetings) -> Given:
    return Given(app).open()


@pytest.mark.parametrize(("state", "name", "new_state"), ALLOWED)
def test_an_allowed_action_records_exactly_its_event(
    given: Given, state: str, name: str, new_state: str
) -> None:
    pid = given.proposal(state)
    command = action(given, name, pid)
    before, version = given.app.last_position(), given.get(pid).version

    result = command()

    recorded = recorded_since(given.app, before)
    assert kinds(recorded) == [EVENT[name]]
    assert recorded[0].originator_id == UUID(pid)
    assert kinds(list(given.app.events.get(UUID(pid), gt=version))) == [EVENT[name]]
    assert result.position == given.app.last_position()
    assert given.get(pid).status == new_state
    assert result.state["status"] == new_state


@pytest.mark.parametrize(("state", "name"), REFUSED)
def test_a_refused_action_raises_invalid_transition_and_records_nothing(
    given: Given, state: str, name: str
) -> None:
    pid = given.proposal(state)
    command = action(given, name, pid)
    before, snapshot = given.app.last_position(), given.state(pid)

    with pytest.raises(InvalidTransition) as refusal:
        command()

    assert refusal.value.state == state
    assert given.app.last_position() == before
    assert given.state(pid) == snapshot


# --- what each transition does to the proposal -------------------------------------------


def test_a_revision_of_the_text_counts_a_new_revision_but_a_new_title_does_not(
    given: Given,
) -> None:
    pid = given.proposal(DRAFT)
    given.app.revise_proposal(given.proposer, pid, title="A better title")
    assert given.get(pid).revision == 1
    given.app.revise_proposal(given.proposer, pid, text="A new text.")
    given.app.revise_proposal(given.proposer, pid, text="A new text.")
    assert given.get(pid).revision == 2
    assert (given.get(pid).title, given.get(pid).text) == ("A better title", "A new text.")


def test_a_revision_requested_proposal_is_revised_then_submitted_again(given: Given) -> None:
    pid = given.proposal(REVISION_REQUESTED)
    given.app.revise_proposal(given.proposer, pid, text="Name the missions.")
    given.app.submit_proposal(given.proposer, pid)
    proposal = given.get(pid)
    assert (proposal.status, proposal.revision, proposal.text) == (
        SUBMITTED,
        2,
        "Name the missions.",
    )


def test_an_approval_keeps_the_final_wording_and_a_reconsideration_clears_it(
    given: Given,
) -> None:
    pid = given.proposal(SUBMITTED)
    given.app.approve_proposal(given.chair, pid, final_text="The chair's wording.")
    assert given.get(pid).final_text == "The chair's wording."
    given.app.reconsider_proposal(given.chair, pid, reason="Wording to be agreed")
    proposal = given.get(pid)
    assert (proposal.status, proposal.final_text, proposal.approved_at) == (SUBMITTED, None, None)
    assert proposal.decision is not None
    assert proposal.decision["action"] == "reconsider"
    assert proposal.decision["reason"] == "Wording to be agreed"


def test_a_reconsidered_merge_is_no_longer_merged_into_anything(given: Given) -> None:
    pid = given.proposal(MERGED)
    assert given.get(pid).merged_into is not None
    given.app.reconsider_proposal(given.chair, pid, reason="Distinct after all")
    assert (given.get(pid).status, given.get(pid).merged_into) == (SUBMITTED, None)


def test_drafting_with_submit_records_the_draft_its_submission_and_the_meeting_log_entry(
    given: Given,
) -> None:
    before = given.app.last_position()
    result = given.app.draft_proposal(given.proposer, given.meeting, TECH, "T", "X", submit=True)
    assert kinds(recorded_since(given.app, before)) == [
        Proposal.Drafted,
        Proposal.Submitted,
        ProposalLogged,
    ]
    assert result.state["status"] == SUBMITTED
    assert [e.proposal_id for e in given.app.proposal_ids(given.meeting)] == [result.state["id"]]


# --- limits of text fields --------------------------------------------------------------

Call = Callable[[Given, str, Any], Callable[[], Result]]


def _draft(field: str) -> Call:
    def call(g: Given, _pid: str, value: Any) -> Callable[[], Result]:
        fields = {"title": "A title", "text": "A text", field: value}
        return lambda: g.app.draft_proposal(g.proposer, g.meeting, TECH, **fields)

    return call


def _revise(field: str) -> Call:
    return lambda g, pid, value: lambda: g.app.revise_proposal(g.proposer, pid, **{field: value})


def _approve(field: str) -> Call:
    return lambda g, pid, value: lambda: g.app.approve_proposal(g.chair, pid, **{field: value})


def _merge(g: Given, pid: str, value: Any) -> Callable[[], Result]:
    target = g.proposal(SUBMITTED, by=g.other_rapporteur)
    return lambda: g.app.merge_proposal(g.chair, pid, target, reason=value)


def _reopen(g: Given, _pid: str, value: Any) -> Callable[[], Result]:
    g.close().forward()
    return lambda: g.app.reopen_meeting(g.secretariat, g.meeting, reason=value)


# command: (state of the proposal, the call, the field, its limit, required, events if allowed)
LIMITED: dict[str, tuple[str, Call, str, int, bool, list[type]]] = {
    "draft title": (DRAFT, _draft("title"), "title", 200, True, [Proposal.Drafted, ProposalLogged]),
    "draft text": (DRAFT, _draft("text"), "text", 20_000, True, [Proposal.Drafted, ProposalLogged]),
    "revise title": (DRAFT, _revise("title"), "title", 200, False, [Proposal.Revised]),
    "revise text": (DRAFT, _revise("text"), "text", 20_000, False, [Proposal.Revised]),
    "approve final_text": (
        SUBMITTED,
        _approve("final_text"),
        "final_text",
        20_000,
        False,
        [Proposal.Approved],
    ),
    "approve note": (SUBMITTED, _approve("note"), "note", 5_000, False, [Proposal.Approved]),
    "reject reason": (
        SUBMITTED,
        lambda g, pid, v: lambda: g.app.reject_proposal(g.chair, pid, reason=v),
        "reason",
        5_000,
        True,
        [Proposal.Rejected],
    ),
    "request revision reason": (
        SUBMITTED,
        lambda g, pid, v: lambda: g.app.request_revision(g.chair, pid, reason=v),
        "reason",
        5_000,
        True,
        [Proposal.RevisionRequested],
    ),
    "merge reason": (SUBMITTED, _merge, "reason", 5_000, True, [Proposal.Merged]),
    "reconsider reason": (
        APPROVED,
        lambda g, pid, v: lambda: g.app.reconsider_proposal(g.chair, pid, reason=v),
        "reason",
        5_000,
        True,
        [Proposal.Reconsidered],
    ),
    "withdraw reason": (
        SUBMITTED,
        lambda g, pid, v: lambda: g.app.withdraw_proposal(g.proposer, pid, reason=v),
        "reason",
        5_000,
        False,
        [Proposal.Withdrawn],
    ),
    "comment text": (
        SUBMITTED,
        lambda g, pid, v: lambda: g.app.comment_on_proposal(g.chair, pid, v),
        "text",
        20_000,
        True,
        [Proposal.Commented],
    ),
    "reopen reason": (APPROVED, _reopen, "reason", 5_000, True, [Meeting.Reopened]),
}

BLANKS = ["", " ", "   \t\n  "]


def limit_cases() -> list[Any]:
    cases = []
    for name, (_, _, field, limit, required, _) in LIMITED.items():
        cases.append(pytest.param(name, "x" * limit, True, id=f"{name}-{limit}-accepted"))
        cases.append(pytest.param(name, "x" * (limit + 1), False, id=f"{name}-{limit + 1}-refused"))
        if field in ("title", "text", "reason", "final_text") and (required or field != "reason"):
            # a text that is given must say something; only withdraw's reason may be blank
            for blank in BLANKS:
                cases.append(pytest.param(name, blank, False, id=f"{name}-{blank!r}-refused"))
        if name.startswith(("reject", "request", "merge", "reconsider", "reopen")):
            cases.append(pytest.param(name, None, False, id=f"{name}-missing-refused"))
        if name.startswith("withdraw"):
            cases.append(pytest.param(name, None, True, id=f"{name}-missing-accepted"))
    return cases


@pytest.mark.parametrize(("name", "value", "accepted"), limit_cases())
def test_text_fields_are_held_to_their_limits_and_must_not_be_blank(
    given: Given, name: str, value: Any, accepted: bool
) -> None:
    state, call, field, _, _, events = LIMITED[name]
    pid = given.proposal(state)
    command = call(given, pid, value)
    before = given.app.last_position()

    if accepted:
        command()
        assert kinds(recorded_since(given.app, before)) == events
    else:
        with pytest.raises(InvalidInput) as refusal:
            command()
        assert refusal.value.field == field
        assert given.app.last_position() == before


def test_a_revision_that_changes_nothing_is_refused(given: Given) -> None:
    pid = given.proposal(DRAFT)
    before = given.app.last_position()
    with pytest.raises(InvalidInput):
        given.app.revise_proposal(given.proposer, pid)
    assert given.app.last_position() == before


def test_a_withdrawal_without_a_reason_records_none_as_its_reason(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    before = given.app.last_position()
    given.app.withdraw_proposal(given.proposer, pid)
    [withdrawn] = recorded_since(given.app, before)
    assert isinstance(withdrawn, Proposal.Withdrawn)
    assert withdrawn.reason is None


def test_control_characters_in_a_text_are_refused(given: Given) -> None:
    before = given.app.last_position()
    with pytest.raises(InvalidInput):
        given.app.draft_proposal(given.proposer, given.meeting, TECH, "A\x00title", "Text")
    assert given.app.last_position() == before


# --- merging ------------------------------------------------------------------------------


def refused_merge(g: Given, pid: str, into: str, error: type[Exception]) -> str:
    """Merging ``pid`` into ``into`` raises ``error`` and records nothing; its message."""
    before, snapshot = g.app.last_position(), g.state(pid)
    with pytest.raises(error) as refused:
        g.app.merge_proposal(g.chair, pid, into, reason="The same idea")
    assert g.app.last_position() == before
    assert g.state(pid) == snapshot
    return str(refused.value)


def test_a_proposal_cannot_be_merged_into_itself(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    assert "itself" in refused_merge(given, pid, pid, RuleViolation)


def test_a_proposal_cannot_be_merged_into_one_of_another_theme(given: Given) -> None:
    given.enrol(given.chair, "chair", [TECH, SAFETY])
    pid = given.proposal(SUBMITTED)
    other_theme = given.proposal(SUBMITTED, theme=SAFETY)
    assert "same theme" in refused_merge(given, pid, other_theme, RuleViolation)


def test_a_proposal_cannot_be_merged_into_one_of_another_meeting(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    other = Given(given.app).open()
    elsewhere = other.proposal(SUBMITTED)
    assert "same theme" in refused_merge(given, pid, elsewhere, RuleViolation)


@pytest.mark.parametrize("target_state", [WITHDRAWN, REJECTED, MERGED])
def test_a_proposal_cannot_be_merged_into_one_that_is_not_live(
    given: Given, target_state: str
) -> None:
    pid = given.proposal(SUBMITTED)
    target = given.proposal(target_state, by=given.other_rapporteur)
    assert f"is {target_state}" in refused_merge(given, pid, target, RuleViolation)


@pytest.mark.parametrize("target_state", [DRAFT, SUBMITTED, REVISION_REQUESTED, APPROVED])
def test_a_proposal_can_be_merged_into_any_live_proposal_of_its_theme(
    given: Given, target_state: str
) -> None:
    pid = given.proposal(SUBMITTED)
    target = given.proposal(target_state, by=given.other_rapporteur)
    given.app.merge_proposal(given.chair, pid, target, reason="The same idea")
    assert (given.get(pid).status, given.get(pid).merged_into) == (MERGED, target)


def test_a_merge_back_into_the_proposal_merged_into_it_is_refused(given: Given) -> None:
    a = given.proposal(SUBMITTED)
    b = given.proposal(SUBMITTED, by=given.other_rapporteur)
    given.app.merge_proposal(given.chair, a, b, reason="A into B")
    assert "cycle" in refused_merge(given, b, a, RuleViolation)


def test_a_merge_that_would_close_a_chain_into_a_cycle_is_refused(given: Given) -> None:
    a = given.proposal(SUBMITTED)
    b = given.proposal(SUBMITTED, by=given.other_rapporteur)
    c = given.proposal(SUBMITTED)
    given.app.merge_proposal(given.chair, a, b, reason="A into B")
    given.app.merge_proposal(given.chair, b, c, reason="B into C")
    assert "cycle" in refused_merge(given, c, a, RuleViolation)
    assert "cycle" in refused_merge(given, c, b, RuleViolation)


def test_a_merge_into_a_proposal_that_does_not_exist_is_invalid_input(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    unknown = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
    assert f"no proposal {unknown}" in refused_merge(given, pid, unknown, InvalidInput)
    assert "no proposal not-a-uuid" in refused_merge(given, pid, "not-a-uuid", InvalidInput)


# --- endorsements and comments ------------------------------------------------------------


def test_a_delegation_endorses_a_proposal_only_once(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    given.app.endorse_proposal(given.other_rapporteur, pid, OTHER_DELEGATION)
    before = given.app.last_position()
    with pytest.raises(RuleViolation):
        given.app.endorse_proposal(given.other_rapporteur, pid, OTHER_DELEGATION)
    assert given.app.last_position() == before
    assert given.get(pid).endorsements == [OTHER_DELEGATION]


def test_the_proposing_delegation_does_not_endorse_its_own_proposal(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    before = given.app.last_position()
    with pytest.raises(RuleViolation):
        given.app.endorse_proposal(given.proposer, pid, "Pakistan")
    assert given.app.last_position() == before


def test_endorsements_keep_their_order(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    given.app.endorse_proposal(given.other_rapporteur, pid, OTHER_DELEGATION)
    given.app.endorse_proposal(SYSTEM, pid, "African Union")
    assert given.get(pid).endorsements == [OTHER_DELEGATION, "African Union"]


def test_comments_are_kept_with_their_author(given: Given) -> None:
    pid = given.proposal(SUBMITTED)
    result = given.app.comment_on_proposal(given.chair, pid, "Which missions first?")
    [comment] = given.get(pid).comments
    assert comment["id"] == result.extra["comment_id"]
    assert (comment["author"], comment["text"]) == (given.chair, "Which missions first?")


# --- reconsideration and the forwarded outcome ---------------------------------------------


@pytest.mark.parametrize("decided", [APPROVED, REJECTED, MERGED])
def test_nothing_is_reconsidered_while_the_outcome_is_forwarded(given: Given, decided: str) -> None:
    pid = given.proposal(decided)
    given.close().forward()
    before, snapshot = given.app.last_position(), given.state(pid)

    with pytest.raises(InvalidTransition):
        given.app.reconsider_proposal(given.chair, pid, reason="Too late")

    assert given.app.last_position() == before
    assert given.state(pid) == snapshot
    assert given.meeting_status() == "forwarded"


def test_a_reopened_meeting_lets_the_chair_reconsider_again(given: Given) -> None:
    pid = given.proposal(APPROVED)
    given.close().forward().reopen()
    given.app.reconsider_proposal(given.chair, pid, reason="A correction arrived late")
    assert given.get(pid).status == SUBMITTED


# --- idempotent drafting ------------------------------------------------------------------


def test_a_retried_draft_returns_the_first_result_and_records_nothing(given: Given) -> None:
    first = given.app.draft_proposal(
        given.proposer, given.meeting, TECH, "Drones", "Use drones.", idempotency_key="k1"
    )
    before = given.app.last_position()
    again = given.app.draft_proposal(
        given.proposer, given.meeting, TECH, "Drones", "Use drones.", idempotency_key="k1"
    )
    assert (again.created, again.state["id"]) == (False, first.state["id"])
    assert given.app.last_position() == before


def test_a_draft_retried_after_the_meeting_closed_still_returns_the_first_result(
    given: Given,
) -> None:
    """The first request succeeded but its answer was lost; the retry must not say 409."""
    first = given.app.draft_proposal(
        given.proposer, given.meeting, TECH, "Drones", "Use drones.", idempotency_key="k1"
    )
    given.close()
    before = given.app.last_position()
    again = given.app.draft_proposal(
        given.proposer, given.meeting, TECH, "Drones", "Use drones.", idempotency_key="k1"
    )
    assert (again.created, again.state["id"]) == (False, first.state["id"])
    assert given.app.last_position() == before
    with pytest.raises(InvalidTransition):
        given.app.draft_proposal(
            given.proposer, given.meeting, TECH, "Drones", "Use drones.", idempotency_key="k2"
        )
    assert given.app.last_position() == before
