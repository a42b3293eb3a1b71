"""Optimistic concurrency (``If-Match``) and idempotent creation (``Idempotency-Key``) over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from domain.application import PreparatoryMeetings
from tests.e2e.conftest import TECH, World, assert_command, assert_problem


def meeting_ops(world: World) -> dict[str, tuple[str, str, str, Any]]:
    """Every change that accepts ``If-Match``: (actor, method, path, body), by name."""
    m, p = "/api/v1/meetings", "/api/v1/proposals"
    return {
        "enrol": (
            "secretariat",
            "POST",
            f"{m}/{world.meeting}/participants",
            {"user_id": world.spare.id, "role": "observer"},
        ),
        "open": ("secretariat", "POST", f"{m}/{world.scheduled}/open", None),
        "close": ("secretariat", "POST", f"{m}/{world.meeting}/close", None),
        "reopen": ("secretariat", "POST", f"{m}/{world.forwarded}/reopen", {"reason": "Late"}),
        "order": (
            "chair",
            "PUT",
            f"{m}/{world.meeting}/themes/{TECH}/order",
            {"proposal_ids": [world.approved]},
        ),
        "revise": ("proposer", "PATCH", f"{p}/{world.draft}", {"text": "New text"}),
        "submit": ("proposer", "POST", f"{p}/{world.draft}/submit", None),
        "withdraw": ("proposer", "POST", f"{p}/{world.draft}/withdraw", {"reason": "Gone"}),
        "approve": ("chair", "POST", f"{p}/{world.submitted}/approve", None),
        "reject": ("chair", "POST", f"{p}/{world.submitted}/reject", {"reason": "No"}),
        "request revision": (
            "chair",
            "POST",
            f"{p}/{world.submitted}/request-revision",
            {"reason": "More"},
        ),
        "reconsider": ("chair", "POST", f"{p}/{world.approved}/reconsider", {"reason": "Again"}),
        "merge": (
            "chair",
            "POST",
            f"{p}/{world.submitted}/merge",
            {"into": world.target, "reason": "Same"},
        ),
    }


OPS = [
    "enrol",
    "open",
    "close",
    "reopen",
    "order",
    "revise",
    "submit",
    "withdraw",
    "approve",
    "reject",
    "request revision",
    "reconsider",
    "merge",
]


def object_path(path: str) -> str:
    """The object a change is made to: the meeting or proposal named by its path."""
    parts = path.split("/")
    return "/".join(parts[:5])


async def current_version(client: httpx.AsyncClient, world: World, path: str) -> int:
    response = await client.get(object_path(path), headers=world.secretariat.auth)
    assert response.status_code == 200
    version = int(response.json()["version"])
    assert response.headers["etag"] == f'"{version}"'
    return version


@pytest.mark.parametrize("name", OPS)
async def test_a_stale_if_match_is_412_and_records_nothing(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str
) -> None:
    actor, method, path, body = meeting_ops(world)[name]
    version = await current_version(client, world, path)
    before = core.last_position()
    for stale in (version - 1, version + 1):
        response = await client.request(
            method,
            path,
            json=body,
            headers={**world.person(actor).auth, "If-Match": f'"{stale}"'},
        )
        problem = assert_problem(response, 412, "version-mismatch")
        assert str(stale) in problem["detail"] and str(version) in problem["detail"]
    assert core.last_position() == before
    assert await current_version(client, world, path) == version

    response = await client.request(
        method, path, json=body, headers={**world.person(actor).auth, "If-Match": f'"{version}"'}
    )
    changed = assert_command(response, 201 if name == "enrol" else 200)
    assert changed["version"] == version + 1
    assert changed["position"] == core.last_position()


@pytest.mark.readonly
@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize(
    "if_match", ["banana", '"abc"', '"-1"', "", "3", '"3', "W/", '"' + "9" * 19 + '"']
)
async def test_a_garbage_if_match_is_412(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str, if_match: str
) -> None:
    actor, method, path, body = meeting_ops(world)[name]
    before = core.last_position()
    response = await client.request(
        method, path, json=body, headers={**world.person(actor).auth, "If-Match": if_match}
    )
    assert_problem(response, 412, "version-mismatch")
    assert core.last_position() == before


@pytest.mark.parametrize("if_match", ['W/"{v}"', ' "{v}" ', "*"])
async def test_a_weak_padded_or_any_if_match_is_accepted(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, if_match: str
) -> None:
    path = f"/api/v1/proposals/{world.draft}"
    version = await current_version(client, world, path)
    response = await client.patch(
        path,
        json={"title": "Weakly matched"},
        headers={**world.proposer.auth, "If-Match": if_match.format(v=version)},
    )
    assert assert_command(response)["version"] == version + 1


@pytest.mark.readonly
async def test_the_if_match_check_comes_after_the_body_and_before_the_lifecycle(
    client: httpx.AsyncClient, world: World
) -> None:
    stale = {"If-Match": '"1"'}
    chair = {**world.chair.auth, **stale}
    # 422 before 412: a blank reason with a stale version
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/reject", json={"reason": " "}, headers=chair
    )
    assert_problem(response, 422)
    # 412 before 409: approving a proposal whose revision is requested (not allowed),
    # with a stale version, and opening an open meeting
    response = await client.post(f"/api/v1/proposals/{world.revision}/approve", headers=chair)
    assert_problem(response, 412)
    response = await client.post(
        f"/api/v1/proposals/{world.revision}/approve", headers=world.chair.auth
    )
    assert_problem(response, 409)
    response = await client.post(
        f"/api/v1/meetings/{world.meeting}/open", headers={**world.secretariat.auth, **stale}
    )
    assert_problem(response, 412)
    # 403 before 412
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/approve", headers={**world.proposer.auth, **stale}
    )
    assert_problem(response, 403)


async def test_creating_under_a_parent_does_not_check_its_version(
    client: httpx.AsyncClient, world: World
) -> None:
    stale = {"If-Match": '"1"'}
    drafted = await client.post(
        f"/api/v1/meetings/{world.meeting}/proposals",
        json={"theme": TECH, "title": "Drones", "text": "Use drones."},
        headers={**world.proposer.auth, **stale},
    )
    assert drafted.status_code == 201
    commented = await client.post(
        f"/api/v1/proposals/{world.submitted}/comments",
        json={"text": "Fine."},
        headers={**world.chair.auth, **stale},
    )
    assert commented.status_code == 201
    endorsed = await client.post(
        f"/api/v1/proposals/{world.submitted}/endorsements",
        json={"delegation": world.other_rapporteur.delegation},
        headers={**world.other_rapporteur.auth, **stale},
    )
    assert endorsed.status_code == 201


async def test_two_changes_from_one_version_one_wins_the_other_is_412(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.draft}"
    version = await current_version(client, world, path)
    headers = {**world.proposer.auth, "If-Match": f'"{version}"'}
    before = core.last_position()
    responses = await asyncio.gather(
        *(client.patch(path, json={"text": f"Text {i}"}, headers=headers) for i in range(4))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 412, 412, 412]
    assert core.last_position() == before + 1
    winner = next(r for r in responses if r.status_code == 200).json()
    final = (await client.get(path, headers=world.proposer.auth)).json()
    assert (final["text"], final["version"]) == (winner["text"], version + 1)


# --- Idempotency-Key --------------------------------------------------------------------


def creations(world: World) -> dict[str, tuple[str, str, dict[str, Any], str]]:
    """Every creation that takes an Idempotency-Key: (actor, path, body, event it records)."""
    return {
        "proposal": (
            "proposer",
            f"/api/v1/meetings/{world.meeting}/proposals",
            {"theme": TECH, "title": "Drones", "text": "Use drones for patrols."},
            "ProposalDrafted",
        ),
        "meeting": (
            "secretariat",
            "/api/v1/meetings",
            {
                "title": "Fifth preparatory meeting",
                "venue": "Accra",
                "starts_on": "2025-06-02",
                "ends_on": "2025-06-03",
                "hosts": ["Ghana"],
                "ministerial": "berlin-2025",
                "themes": [{"key": TECH, "title": "Technology"}],
            },
            "MeetingScheduled",
        ),
        "user": (
            "secretariat",
            "/api/v1/users",
            {"name": "Kofi Mensah", "delegation": "Ghana"},
            "UserRegistered",
        ),
    }


def recorded_types(core: PreparatoryMeetings, since: int) -> list[str]:
    return [e["type"] for e in core.feed(since, 10_000)]


@pytest.mark.parametrize("kind", ["proposal", "meeting", "user"])
async def test_concurrent_creations_with_one_key_create_one_object(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, kind: str
) -> None:
    actor, path, body, created = creations(world)[kind]
    headers = {**world.person(actor).auth, "Idempotency-Key": f"create-{kind}-once"}
    before = core.last_position()
    responses = await asyncio.gather(
        *(client.post(path, json=body, headers=headers) for _ in range(2))
    )
    assert [r.status_code for r in responses] == [201, 201]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    (the_id,) = ids
    location = {
        "proposal": "/api/v1/proposals",
        "meeting": "/api/v1/meetings",
        "user": "/api/v1/users",
    }
    assert {r.headers["location"] for r in responses} == {f"{location[kind]}/{the_id}"}
    assert recorded_types(core, before).count(created) == 1
    if kind == "proposal":
        logged = [e.proposal_id for e in core.proposal_ids(world.meeting)]
        assert logged.count(the_id) == 1

    after = core.last_position()
    replay = await client.post(path, json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json()["id"] == the_id
    assert replay.headers["location"] == responses[0].headers["location"]
    assert core.last_position() == after
    if kind == "user":
        tokens = [r.json()["token"] for r in (*responses, replay)]
        assert sum(t is not None for t in tokens) == 1, "the token is shown once only"


@pytest.mark.parametrize("kind", ["proposal", "meeting", "user"])
async def test_a_key_reused_with_another_body_is_422_and_records_nothing(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, kind: str
) -> None:
    actor, path, body, _ = creations(world)[kind]
    headers = {**world.person(actor).auth, "Idempotency-Key": "k-1"}
    first = await client.post(path, json=body, headers=headers)
    assert first.status_code == 201
    before = core.last_position()
    other = {**body, "title" if kind != "user" else "name": "Something else"}
    response = await client.post(path, json=other, headers=headers)
    assert_problem(response, 422, "idempotency-key-reused")
    assert core.last_position() == before


@pytest.mark.parametrize("kind", ["proposal", "meeting", "user"])
async def test_an_idempotency_key_is_at_most_255_characters(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, kind: str
) -> None:
    actor, path, body, _ = creations(world)[kind]
    auth = world.person(actor).auth
    before = core.last_position()
    response = await client.post(path, json=body, headers={**auth, "Idempotency-Key": "k" * 256})
    assert "Idempotency-Key" in assert_problem(response, 422)["detail"]
    assert core.last_position() == before
    response = await client.post(path, json=body, headers={**auth, "Idempotency-Key": "k" * 255})
    assert response.status_code == 201


async def test_a_key_is_scoped_to_the_user_and_the_path(
    client: httpx.AsyncClient, world: World
) -> None:
    key = {"Idempotency-Key": "same-key"}
    body = {"theme": TECH, "title": "Drones", "text": "Use drones for patrols."}
    path = f"/api/v1/meetings/{world.meeting}/proposals"
    mine = await client.post(path, json=body, headers={**world.proposer.auth, **key})
    theirs = await client.post(path, json=body, headers={**world.other_rapporteur.auth, **key})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["proposer"]["id"] == world.other_rapporteur.id

    user = await client.post(
        "/api/v1/users",
        json={"name": "Kofi", "delegation": "Ghana"},
        headers={**world.secretariat.auth, **key},
    )
    meeting = await client.post(
        "/api/v1/meetings",
        json=creations(world)["meeting"][2],
        headers={**world.secretariat.auth, **key},
    )
    assert (user.status_code, meeting.status_code) == (201, 201)
    assert user.json()["id"] != meeting.json()["id"]
