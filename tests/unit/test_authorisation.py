"""Who may do what, checked at the application service: each action x each kind of person.

Given the Islamabad meeting and its cast (see ``tests/given.py``), when a person attempts an
action, then it is allowed (and records its events), or refused as ``Forbidden``, or, for a
person who may not even read the meeting, ``NotFound`` (nothing is revealed). A refusal
records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.application import SYSTEM, PreparatoryMeetings, ProposalLogged
from domain.errors import Forbidden, NotFound, RuleViolation, Unauthenticated
from domain.meeting import Meeting
from domain.proposal import APPROVED, DRAFT, SUBMITTED, Proposal
from tests.given import TECH, THEMES, Given, forwarding, recorded_since

# ok = allowed, F = Forbidden, NF = NotFound, RV = RuleViolation (allowed to try, but the
# proposing delegation may not endorse its own proposal).
# Columns: secretariat, chair of the theme, chair of another theme, the proposer, another
# rapporteur of the theme, a rapporteur of another theme, observer, ministerial user, a
# user who is not a participant, and the operator at the command line.
TABLE = """
action                     secretariat chair chair_other proposer other_rapporteur rapporteur_other_theme observer ministerial outsider operator
read_meeting               ok          ok    ok          ok       ok               ok                     ok       ok          NF       ok
read_proposal              ok          ok    ok          ok       ok               ok                     ok       ok          NF       ok
read_history               ok          ok    ok          ok       ok               ok                     ok       ok          NF       ok
read_proposal_ids          ok          ok    ok          ok       ok               ok                     ok       ok          NF       ok
download_outcome           ok          ok    ok          ok       ok               ok                     ok       ok          NF       ok
schedule_meeting           ok          F     F           F        F                F                      F        F           F        ok
create_user                ok          F     F           F        F                F                      F        F           F        ok
issue_token                ok          F     F           F        F                F                      F        F           F        ok
revoke_tokens              ok          F     F           F        F                F                      F        F           F        ok
open_meeting               ok          F     F           F        F                F                      F        F           NF       ok
close_meeting              ok          F     F           F        F                F                      F        F           NF       ok
forward_meeting            ok          F     F           F        F                F                      F        F           NF       ok
reopen_meeting             ok          F     F           F        F                F                      F        F           NF       ok
enrol_participant          ok          F     F           F        F                F                      F        F           NF       ok
order_theme                F           ok    F           F        F                F                      F        F           NF       ok
draft_proposal             F           F     F           ok       ok               F                      F        F           NF       F
revise_proposal            F           F     F           ok       F                F                      F        F           NF       ok
submit_proposal            F           F     F           ok       F                F                      F        F           NF       ok
withdraw_proposal          F           F     F           ok       F                F                      F        F           NF       ok
approve_proposal           F           ok    F           F        F                F                      F        F           NF       ok
reject_proposal            F           ok    F           F        F                F                      F        F           NF       ok
request_revision           F           ok    F           F        F                F                      F        F           NF       ok
merge_proposal             F           ok    F           F        F                F                      F        F           NF       ok
reconsider_proposal        F           ok    F           F        F                F                      F        F           NF       ok
comment_on_proposal        F           ok    ok          ok       ok               ok                     F        F           NF       ok
endorse_in_own_name        F           F     F           RV       ok               ok                     F        F           NF       ok
endorse_in_another_name    F           F     F           F        F                F                      F        F           NF       ok
"""  # noqa: E501
OUTCOME = {"ok": None, "F": Forbidden, "NF": NotFound, "RV": RuleViolation}
READS = {"read_meeting", "read_proposal", "read_history", "read_proposal_ids", "download_outcome"}

Attempt = Callable[[str], Any]


def parse(table: str) -> list[tuple[str, str, str]]:
    lines = [line.split() for line in table.strip().splitlines()]
    people = lines[0][1:]
    return [
        (name, person, cell)
        for name, *row in lines[1:]
        for person, cell in zip(people, row, strict=True)
    ]


CELLS = parse(TABLE)


def actor_id(g: Given, person: str) -> str:
    return SYSTEM if person == "operator" else str(getattr(g, person))


def delegation_of(g: Given, actor: str) -> str:
    return "African Union" if actor == SYSTEM else g.app.get_user(actor).delegation


def attempt(g: Given, name: str) -> Attempt:
    """Bring the world to where ``name`` would succeed for the right person; return it."""
    app, m = g.app, g.meeting
    if name == "open_meeting":
        return lambda a: app.open_meeting(a, m)
    g.open()
    if name == "read_meeting":
        return lambda a: app.get_meeting(a, m)
    if name == "read_proposal_ids":
        return lambda a: list(app.proposal_ids(app.get_meeting(a, m).id))
    if name == "schedule_meeting":
        return lambda a: app.schedule_meeting(
            a, "Another meeting", "Accra", "2025-03-01", "2025-03-02", ["Ghana"], "b", THEMES
        )
    if name == "create_user":
        return lambda a: app.create_user(a, "Someone", "Chile")
    if name == "issue_token":
        return lambda a: app.issue_token(a, g.proposer)
    if name == "revoke_tokens":
        return lambda a: app.revoke_tokens(a, g.proposer)
    if name == "close_meeting":
        return lambda a: app.close_meeting(a, m)
    if name == "enrol_participant":
        newcomer = g.user("Late arrival", "Brazil")
        return lambda a: app.enrol_participant(a, m, newcomer, "observer", [])
    if name == "draft_proposal":
        return lambda a: app.draft_proposal(a, m, TECH, "Drones", "Use drones for patrols.")
    if name == "order_theme":
        approved = g.proposal(APPROVED)
        return lambda a: app.order_theme(a, m, TECH, [approved])
    draft, submitted, approved = g.proposal(DRAFT), g.proposal(SUBMITTED), g.proposal(APPROVED)
    target = g.proposal(SUBMITTED, by=g.other_rapporteur)
    simple: dict[str, Attempt] = {
        "read_proposal": lambda a: app.get_proposal(a, submitted),
        "read_history": lambda a: app.history(a, submitted),
        "revise_proposal": lambda a: app.revise_proposal(a, draft, text="Use more drones."),
        "submit_proposal": lambda a: app.submit_proposal(a, draft),
        "withdraw_proposal": lambda a: app.withdraw_proposal(a, submitted),
        "approve_proposal": lambda a: app.approve_proposal(a, submitted),
        "reject_proposal": lambda a: app.reject_proposal(a, submitted, reason="No"),
        "request_revision": lambda a: app.request_revision(a, submitted, reason="Why?"),
        "merge_proposal": lambda a: app.merge_proposal(a, submitted, target, reason="Same"),
        "reconsider_proposal": lambda a: app.reconsider_proposal(a, approved, reason="Again"),
        "comment_on_proposal": lambda a: app.comment_on_proposal(a, submitted, "Agreed."),
        "endorse_in_own_name": lambda a: app.endorse_proposal(a, submitted, delegation_of(g, a)),
        "endorse_in_another_name": lambda a: app.endorse_proposal(a, submitted, "Chile"),
    }
    if name in simple:
        return simple[name]
    g.close()
    if name == "forward_meeting":
        return lambda a: app.forward_meeting(a, m, forwarding(app))
    g.forward()
    if name == "reopen_meeting":
        return lambda a: app.reopen_meeting(a, m, reason="A late correction")
    if name == "download_outcome":
        return lambda a: app.get_forwarded_document(a, m, 1)
    raise AssertionError(name)


def test_the_table_names_every_command_of_the_application() -> None:
    commands = {
        name
        for name in vars(PreparatoryMeetings)
        if not name.startswith(("_", "get_", "can_", "check_", "require"))
        and callable(getattr(PreparatoryMeetings, name))
    }
    queries = {"authenticate", "describe", "event_positions", "feed", "history"}
    queries |= {"last_position", "proposal_ids", "proposal_state", "version_record"}
    tabled = {name for name, _, _ in CELLS} | {"endorse_proposal"}
    assert commands - queries - tabled == set()


@pytest.mark.parametrize(("name", "person", "expected"), CELLS)
def test_each_person_may_do_only_what_their_role_allows(
    app: PreparatoryMeetings, name: str, person: str, expected: str
) -> None:
    g = Given(app)
    act = attempt(g, name)
    actor = actor_id(g, person)
    before = app.last_position()

    error = OUTCOME[expected]
    if error is None:
        act(actor)
        recorded = recorded_since(app, before)
        if name in READS:
            assert recorded == []
        else:
            assert recorded, "an allowed command records its events"
            assert {getattr(e, "actor", actor) for e in recorded} == {actor}
    else:
        with pytest.raises(error):
            act(actor)
        assert app.last_position() == before


def test_a_reader_who_may_not_read_the_meeting_learns_nothing_more_than_a_wrong_id(
    app: PreparatoryMeetings,
) -> None:
    g = Given(app).open()
    pid = g.proposal(SUBMITTED)
    with pytest.raises(NotFound) as hidden:
        app.get_proposal(g.outsider, pid)
    with pytest.raises(NotFound) as missing:
        app.get_proposal(g.outsider, "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d")
    assert (hidden.value.kind, missing.value.kind) == ("proposal", "proposal")


def test_an_actor_who_is_not_a_user_is_not_found(app: PreparatoryMeetings) -> None:
    g = Given(app).open()
    before = app.last_position()
    for actor in ("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "nobody"):
        with pytest.raises(NotFound):
            app.open_meeting(actor, g.meeting)
        with pytest.raises(NotFound):
            app.create_user(actor, "Someone", "Chile")
    assert app.last_position() == before


def test_a_rapporteur_enrolled_again_as_observer_no_longer_acts_on_their_proposals(
    app: PreparatoryMeetings,
) -> None:
    g = Given(app).open()
    pid = g.proposal(DRAFT)
    g.enrol(g.proposer, "observer", [])
    before = app.last_position()
    with pytest.raises(Forbidden):
        app.submit_proposal(g.proposer, pid)
    with pytest.raises(Forbidden):
        app.draft_proposal(g.proposer, g.meeting, TECH, "Drones", "Use drones.")
    assert app.last_position() == before
    assert app.get_proposal(g.proposer, pid)[0].status == DRAFT


def test_a_chair_decides_only_on_proposals_of_their_own_themes(app: PreparatoryMeetings) -> None:
    g = Given(app).open()
    safety = g.proposal(SUBMITTED, theme="safety-security")
    with pytest.raises(Forbidden):
        app.approve_proposal(g.chair, safety)
    app.approve_proposal(g.chair_other, safety)
    assert g.get(safety).status == APPROVED


def test_every_event_carries_the_acting_user(app: PreparatoryMeetings) -> None:
    g = Given(app).open()
    before = app.last_position()
    pid = g.proposal(APPROVED)
    recorded = recorded_since(app, before)
    actors = [(type(e), e.actor) for e in recorded]  # type: ignore[attr-defined]
    assert actors[0] == (Proposal.Drafted, g.proposer)
    assert (ProposalLogged, g.proposer) in actors, "the meeting's log entry names the drafter"
    assert (Proposal.Submitted, g.proposer) in actors
    assert (Proposal.Approved, g.chair) in actors
    assert g.get(pid).decision["by"] == g.chair  # type: ignore[index]


# --- authentication ----------------------------------------------------------------------


def test_a_token_authenticates_its_user_until_revoked(app: PreparatoryMeetings) -> None:
    created = app.create_user(SYSTEM, "Rapporteur", "Pakistan")
    token = created.extra["token"]
    second = app.issue_token(SYSTEM, created.state["id"]).extra["token"]
    assert str(app.authenticate(token).id) == created.state["id"]
    assert str(app.authenticate(second).id) == created.state["id"]

    app.revoke_tokens(SYSTEM, created.state["id"])

    for revoked in (token, second):
        with pytest.raises(Unauthenticated):
            app.authenticate(revoked)


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 513])
def test_an_unknown_token_is_not_authenticated(app: PreparatoryMeetings, token: str) -> None:
    app.create_user(SYSTEM, "Rapporteur", "Pakistan")
    with pytest.raises(Unauthenticated):
        app.authenticate(token)


def test_the_token_is_never_recorded_only_its_hash(app: PreparatoryMeetings) -> None:
    created = app.create_user(SYSTEM, "Rapporteur", "Pakistan")
    token = created.extra["token"]
    stored = b"".join(n.state for n in app.recorder.select_notifications(1, 1000))
    assert token.encode() not in stored
    assert all("token_hash" not in entry["data"] for entry in app.feed(0, 1000)), (
        "the feed must not show token hashes"
    )


def test_the_meeting_is_recorded_as_scheduled_by_the_secretariat(
    app: PreparatoryMeetings,
) -> None:
    g = Given(app)
    scheduled = app.events.get(app.get_meeting(SYSTEM, g.meeting).id)
    first = next(iter(scheduled))
    assert isinstance(first, Meeting.Scheduled)
    assert first.actor == SYSTEM
