"""Every endpoint of the v1 API over HTTP: its success path and each refusal of the contract.

Each test starts from its own copy of the seeded world (see ``conftest.py``), except those
marked ``readonly``, which change nothing (checked) and share one. Every response any
client here receives is checked for traceback text and for 500s.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from domain.application import SYSTEM, PreparatoryMeetings
from tests.e2e.conftest import (
    LIMIT,
    PROBLEM_KEYS,
    SAFETY,
    TECH,
    THEMES,
    UNKNOWN_ID,
    World,
    assert_command,
    assert_created,
    assert_problem,
    assert_single,
    client_for,
    live_client,
    no_traceback,
    serving,
    settings_for,
    wait_for,
)
from tests.given import aggregate_reads

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PROPOSAL_FIELDS = {
    "id",
    "meeting_id",
    "theme",
    "title",
    "text",
    "rationale",
    "status",
    "proposer",
    "endorsements",
    "revision",
    "final_text",
    "decision",
    "merged_into",
    "version",
}
MEETING_FIELDS = {
    "id",
    "title",
    "venue",
    "starts_on",
    "ends_on",
    "hosts",
    "ministerial",
    "themes",
    "status",
    "outcome_versions",
    "version",
}


def meeting_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Fifth preparatory meeting",
        "venue": "Accra",
        "starts_on": "2025-06-02",
        "ends_on": "2025-06-03",
        "hosts": ["Ghana"],
        "ministerial": "berlin-2025",
        "themes": [{"key": TECH, "title": "Technology"}],
    }
    body.update(changes)
    return body


def proposal_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "theme": TECH,
        "title": "Casualty evacuation within the golden hour",
        "text": "Every mission plans casualty evacuation so that help arrives within an hour.",
    }
    body.update(changes)
    return body


def unchanged(core: PreparatoryMeetings, before: int) -> None:
    assert core.last_position() == before, "a refused request recorded something"


# --- health and the HTTP edge ---------------------------------------------------------


@pytest.mark.readonly
async def test_healthz_answers_ok_to_anyone(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


@pytest.mark.readonly
async def test_readyz_reports_the_store_position_and_the_lag_of_the_views(
    client: httpx.AsyncClient, core: PreparatoryMeetings
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["store_position"] == core.last_position()
    assert 0 <= body["view_position"] <= body["store_position"]
    assert body["lag"] == body["store_position"] - body["view_position"]


async def test_readyz_is_a_503_problem_when_the_store_is_unreachable(
    client: httpx.AsyncClient, core: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> int:
        raise OSError("disk I/O error\nwith a second line")

    monkeypatch.setattr(core, "last_position", unreachable)
    response = await client.get("/readyz")
    body = assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert "disk I/O error" in body["detail"] and "second line" not in body["detail"]


async def test_metrics_count_requests_by_route_template_never_by_concrete_path(
    world: World, data_dir: Path
) -> None:
    app = create_app(settings_for(data_dir))  # its own: the metrics count into its container
    try:
        async with client_for(app) as client:
            for pid in (world.draft, world.submitted, world.approved):
                response = await client.get(f"/api/v1/proposals/{pid}", headers=world.chair.auth)
                assert response.is_success
            await client.get(f"/api/v1/proposals/{UNKNOWN_ID}", headers=world.chair.auth)
            response = await client.get("/metrics")
    finally:
        app.state.container.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = 'method="GET",route="/api/v1/proposals/{proposal_id}"'
    assert f'prepmeet_http_requests_total{{{route},status="200"}} 3' in text
    assert f'prepmeet_http_requests_total{{{route},status="404"}} 1' in text
    for pid in (world.draft, world.submitted, world.approved, UNKNOWN_ID):
        assert pid not in text


@pytest.mark.readonly
async def test_an_accept_header_naming_no_format_served_is_a_406_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/api/v1/proposals/{world.submitted}",
        headers={**world.chair.auth, "Accept": "text/csv"},
    )
    assert_problem(response, 406)


@pytest.mark.readonly
@pytest.mark.parametrize("path", ["/nothing-here", "/api/v1/nothing-here", "/api/v2/meetings"])
async def test_an_unknown_route_is_a_404_problem(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    for headers in ({}, world.secretariat.auth):
        assert_problem(await client.get(path, headers=headers), 404)


@pytest.mark.readonly
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/healthz", {"GET"}),
        ("POST", "/api/v1/me", {"GET"}),
        ("PUT", "/api/v1/proposals/{submitted}", {"GET", "PATCH"}),
        ("GET", "/api/v1/proposals/{submitted}/approve", {"POST"}),
        ("DELETE", "/api/v1/meetings/{meeting}", {"GET"}),
    ],
)
async def test_a_wrong_method_is_a_405_problem_naming_the_allowed_ones(
    client: httpx.AsyncClient, world: World, method: str, path: str, allowed: set[str]
) -> None:
    url = path.format(submitted=world.submitted, meeting=world.meeting)
    response = await client.request(method, url, headers=world.secretariat.auth)
    body = assert_problem(response, 405)
    assert method in body["detail"]
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


@pytest.mark.readonly
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-token",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer " + "x" * 600,
        "Token abc",
    ],
)
async def test_a_missing_or_invalid_token_is_401_with_www_authenticate(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_problem(await client.get("/api/v1/me", headers=headers), 401, "unauthenticated")


async def test_an_unexpected_error_is_a_generic_500_problem_without_traceback(
    app: FastAPI, world: World, core: PreparatoryMeetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals: /srv/prepmeet/db password=hunter2")

    monkeypatch.setattr(core, "get_meeting", broken)
    async with client_for(app, hooks=[no_traceback]) as client:
        response = await client.get(
            f"/api/v1/meetings/{world.meeting}", headers=world.observer.auth
        )
    body = assert_problem(response, 500, "internal")
    assert "secret" not in response.text and "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert set(body) == PROBLEM_KEYS


# --- bodies: JSON, schema, text limits, size --------------------------------------------


WRITES = {
    "create user": ("POST", "/api/v1/users", "secretariat"),
    "schedule meeting": ("POST", "/api/v1/meetings", "secretariat"),
    "enrol": ("POST", "/api/v1/meetings/{meeting}/participants", "secretariat"),
    "reopen": ("POST", "/api/v1/meetings/{forwarded}/reopen", "secretariat"),
    "order": ("PUT", "/api/v1/meetings/{meeting}/themes/technology/order", "chair"),
    "draft": ("POST", "/api/v1/meetings/{meeting}/proposals", "proposer"),
    "revise": ("PATCH", "/api/v1/proposals/{draft}", "proposer"),
    "withdraw": ("POST", "/api/v1/proposals/{draft}/withdraw", "proposer"),
    "approve": ("POST", "/api/v1/proposals/{submitted}/approve", "chair"),
    "reject": ("POST", "/api/v1/proposals/{submitted}/reject", "chair"),
    "request revision": ("POST", "/api/v1/proposals/{submitted}/request-revision", "chair"),
    "reconsider": ("POST", "/api/v1/proposals/{approved}/reconsider", "chair"),
    "merge": ("POST", "/api/v1/proposals/{submitted}/merge", "chair"),
    "comment": ("POST", "/api/v1/proposals/{submitted}/comments", "chair"),
    "endorse": ("POST", "/api/v1/proposals/{submitted}/endorsements", "other_rapporteur"),
}


def url(world: World, template: str) -> str:
    return template.format(**{k: v for k, v in vars(world).items() if isinstance(v, str)})


def valid_body(name: str, world: World) -> dict[str, Any]:
    return {
        "create user": {"name": "Kwame Asante", "delegation": "Ghana"},
        "schedule meeting": meeting_body(),
        "enrol": {"user_id": world.spare.id, "role": "observer"},
        "reopen": {"reason": "A late correction"},
        "order": {"proposal_ids": [world.approved]},
        "draft": proposal_body(),
        "revise": {"title": "Better title"},
        "withdraw": {"reason": "No longer needed"},
        "approve": {"final_text": "Agreed wording."},
        "reject": {"reason": "Outside the mandate"},
        "request revision": {"reason": "Say which missions"},
        "reconsider": {"reason": "New information"},
        "merge": {"into": world.target, "reason": "The same idea"},
        "comment": {"text": "A fair point."},
        "endorse": {"delegation": world.other_rapporteur.delegation},
    }[name]


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_each_write_accepts_its_valid_body(
    client: httpx.AsyncClient, world: World, name: str
) -> None:
    """The positive control of the refusals below: the same requests, valid, succeed."""
    method, template, actor = WRITES[name]
    response = await client.request(
        method, url(world, template), json=valid_body(name, world), headers=world.person(actor).auth
    )
    assert response.status_code in (200, 201), response.text


@pytest.mark.readonly
@pytest.mark.parametrize("name", sorted(WRITES))
@pytest.mark.parametrize(
    "content", [b"{", b'{"title": }', b"not json", b"\xff\xfe", b'{"a": 1} trailing', b"[1, 2"]
)
async def test_malformed_json_is_a_422_problem(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str, content: bytes
) -> None:
    method, template, actor = WRITES[name]
    before = core.last_position()
    response = await client.request(
        method,
        url(world, template),
        content=content,
        headers={**world.person(actor).auth, "Content-Type": "application/json"},
    )
    assert_problem(response, 422)
    unchanged(core, before)


@pytest.mark.readonly
@pytest.mark.parametrize("name", sorted(WRITES))
async def test_unknown_fields_are_refused_not_ignored(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str
) -> None:
    method, template, actor = WRITES[name]
    before = core.last_position()
    body = {**valid_body(name, world), "colour": "blue"}
    response = await client.request(
        method, url(world, template), json=body, headers=world.person(actor).auth
    )
    problem = assert_problem(response, 422)
    assert "colour" in problem["detail"]
    unchanged(core, before)


BAD_TEXT = [
    # (write, field, value)
    ("create user", "name", ""),
    ("create user", "name", "   "),
    ("create user", "name", "n" * 201),
    ("create user", "delegation", "\t\n"),
    ("schedule meeting", "title", " "),
    ("schedule meeting", "title", "t" * 201),
    ("schedule meeting", "venue", ""),
    ("reopen", "reason", ""),
    ("reopen", "reason", "   "),
    ("reopen", "reason", "r" * 5001),
    ("draft", "title", ""),
    ("draft", "title", "   "),
    ("draft", "title", "t" * 201),
    ("draft", "text", "\n\n"),
    ("draft", "text", "x" * 20_001),
    ("draft", "rationale", "x" * 20_001),
    ("draft", "title", "bell \x07 in a title"),
    ("revise", "title", " "),
    ("revise", "text", ""),
    ("revise", "text", "x" * 20_001),
    ("withdraw", "reason", "r" * 5001),
    ("approve", "final_text", "   "),
    ("approve", "final_text", "x" * 20_001),
    ("approve", "note", "n" * 5001),
    ("reject", "reason", ""),
    ("reject", "reason", "  "),
    ("reject", "reason", "r" * 5001),
    ("request revision", "reason", " "),
    ("reconsider", "reason", ""),
    ("merge", "reason", " "),
    ("comment", "text", ""),
    ("comment", "text", " \t "),
    ("comment", "text", "c" * 20_001),
    ("endorse", "delegation", " "),
]


@pytest.mark.readonly
@pytest.mark.parametrize(("name", "field", "value"), BAD_TEXT)
async def test_blank_over_long_or_control_text_is_a_422_problem(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    name: str,
    field: str,
    value: str,
) -> None:
    method, template, actor = WRITES[name]
    before = core.last_position()
    body = {**valid_body(name, world), field: value}
    response = await client.request(
        method, url(world, template), json=body, headers=world.person(actor).auth
    )
    problem = assert_problem(response, 422)
    assert field in problem["detail"]
    unchanged(core, before)


@pytest.mark.readonly
@pytest.mark.parametrize(("name", "field"), [("reject", "reason"), ("merge", "reason")])
async def test_a_required_field_left_out_is_a_422_problem(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str, field: str
) -> None:
    method, template, actor = WRITES[name]
    before = core.last_position()
    body = {k: v for k, v in valid_body(name, world).items() if k != field}
    response = await client.request(
        method, url(world, template), json=body, headers=world.person(actor).auth
    )
    assert field in assert_problem(response, 422)["detail"]
    unchanged(core, before)


WRONG_TYPES = [
    ("create user", {"name": "Kwame", "delegation": "Ghana", "secretariat": "yes"}),
    ("create user", {"name": 7, "delegation": "Ghana"}),
    ("draft", proposal_body(submit="true")),
    ("draft", proposal_body(theme=["technology"])),
    ("draft", ["not", "an", "object"]),
    ("order", {"proposal_ids": "all of them"}),
    ("enrol", {"user_id": "x", "role": "president"}),
    ("schedule meeting", meeting_body(starts_on="15 April 2025")),
    ("schedule meeting", meeting_body(hosts="Ghana")),
]


@pytest.mark.readonly
@pytest.mark.parametrize(("name", "body"), WRONG_TYPES)
async def test_wrong_types_are_a_422_problem(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str, body: Any
) -> None:
    method, template, actor = WRITES[name]
    before = core.last_position()
    response = await client.request(
        method, url(world, template), json=body, headers=world.person(actor).auth
    )
    assert_problem(response, 422)
    unchanged(core, before)


@pytest.mark.readonly
async def test_a_body_over_256_kib_with_content_length_is_a_413_problem(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    before = core.last_position()
    content = b'{"name": "' + b"n" * LIMIT + b'", "delegation": "Ghana"}'
    response = await client.post(
        "/api/v1/users",
        content=content,
        headers={**world.secretariat.auth, "Content-Type": "application/json"},
    )
    assert int(response.request.headers["content-length"]) > LIMIT
    assert_problem(response, 413)
    unchanged(core, before)


@pytest.mark.readonly
async def test_a_streamed_body_over_256_kib_without_content_length_is_a_413_problem(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"theme": "technology", "title": "Long", "text": "'
        for _ in range(64):  # 64 x 8 KiB = 512 KiB, twice the limit
            sent += 8192
            yield b"x" * 8192
        yield b'"}'

    before = core.last_position()
    response = await client.post(
        f"/api/v1/meetings/{world.meeting}/proposals",
        content=chunks(),
        headers={**world.proposer.auth, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)
    assert sent < 2 * LIMIT, "the whole body was read before refusing it"
    unchanged(core, before)


@pytest.mark.readonly
async def test_a_body_just_under_the_limit_is_not_refused_for_its_size(
    client: httpx.AsyncClient, world: World
) -> None:
    filler = "x" * (LIMIT - 200)
    response = await client.post(
        "/api/v1/users",
        json={"name": "Kwame", "delegation": "Ghana", "filler": filler},
        headers=world.secretariat.auth,
    )
    assert len(response.request.content) <= LIMIT
    assert "filler" in assert_problem(response, 422)["detail"]


# --- users and tokens -----------------------------------------------------------------


@pytest.mark.readonly
async def test_me_describes_the_user_and_their_global_roles(
    client: httpx.AsyncClient, world: World
) -> None:
    for person, roles in (
        (world.secretariat, [{"role": "secretariat"}]),
        (world.ministerial, [{"role": "ministerial"}]),
        (world.outsider, []),
    ):
        response = await client.get("/api/v1/me", headers=person.auth)
        assert response.status_code == 200
        assert response.json() == {
            "id": person.id,
            "name": person.name,
            "delegation": person.delegation,
            "roles": roles,
        }


@pytest.mark.readonly
async def test_me_lists_the_meeting_roles_of_a_participant(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/api/v1/me", headers=world.chair.auth)
    assert response.status_code == 200
    assert response.json()["id"] == world.chair.id
    roles = response.json()["roles"]
    for meeting in (world.meeting, world.scheduled, world.forwarded):
        assert {"role": "chair", "meeting_id": meeting, "themes": [TECH]} in roles


async def test_the_secretariat_creates_a_user_whose_token_works(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    response = await client.post(
        "/api/v1/users",
        json={"name": "Kwame Asante", "delegation": "Ghana", "ministerial": True},
        headers=world.secretariat.auth,
    )
    body = assert_command(response, 201)
    assert UUID_RE.match(body["id"])
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert body["position"] == core.last_position()
    assert {k: body[k] for k in ("name", "delegation", "secretariat", "ministerial")} == {
        "name": "Kwame Asante",
        "delegation": "Ghana",
        "secretariat": False,
        "ministerial": True,
    }
    assert isinstance(body["token"], str) and len(body["token"]) >= 32
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["id"] == body["id"]
    read = await client.get(response.headers["location"], headers=world.secretariat.auth)
    assert "token" not in assert_single(read)


@pytest.mark.readonly
async def test_only_the_secretariat_creates_users_and_that_is_checked_before_the_body(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    before = core.last_position()
    for body in ({"name": "Kwame", "delegation": "Ghana"}, {"name": ""}, {"x": 1}):
        response = await client.post("/api/v1/users", json=body, headers=world.chair.auth)
        assert_problem(response, 403, "forbidden")
    response = await client.post("/api/v1/users", content=b"{", headers=world.chair.auth)
    assert_problem(response, 403)
    response = await client.post("/api/v1/users", json={"name": ""})
    assert_problem(response, 401)
    unchanged(core, before)


@pytest.mark.readonly
async def test_the_secretariat_reads_a_user(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"/api/v1/users/{world.spare.id}", headers=world.secretariat.auth)
    assert assert_single(response) == {
        "id": world.spare.id,
        "name": world.spare.name,
        "delegation": world.spare.delegation,
        "secretariat": False,
        "ministerial": False,
        "version": 2,
    }
    for missing in (UNKNOWN_ID, "not-a-uuid", world.meeting):
        response = await client.get(f"/api/v1/users/{missing}", headers=world.secretariat.auth)
        assert_problem(response, 404, "not-found")
    response = await client.get(f"/api/v1/users/{world.spare.id}", headers=world.chair.auth)
    assert_problem(response, 403)


async def test_issuing_a_token_gives_a_new_working_one_and_keeps_the_old(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    response = await client.post(
        f"/api/v1/users/{world.spare.id}/tokens", headers=world.secretariat.auth
    )
    assert response.status_code == 201
    assert response.headers["location"] == f"/api/v1/users/{world.spare.id}"
    body = response.json()
    assert set(body) == {"token", "position"}
    assert body["position"] == core.last_position()
    assert body["token"] != world.spare.token
    for token in (body["token"], world.spare.token):
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["id"] == world.spare.id
    before = core.last_position()
    response = await client.post(
        f"/api/v1/users/{UNKNOWN_ID}/tokens", headers=world.secretariat.auth
    )
    assert_problem(response, 404)
    response = await client.post(f"/api/v1/users/{world.spare.id}/tokens", headers=world.chair.auth)
    assert_problem(response, 403)
    unchanged(core, before)


async def test_revoking_tokens_makes_them_401_and_a_new_token_works_again(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    assert (await client.get("/api/v1/me", headers=world.spare.auth)).status_code == 200
    response = await client.delete(
        f"/api/v1/users/{world.spare.id}/tokens", headers=world.secretariat.auth
    )
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get("/api/v1/me", headers=world.spare.auth), 401)
    assert_problem(
        await client.get(f"/api/v1/meetings/{world.meeting}", headers=world.spare.auth), 401
    )
    assert (await client.get("/api/v1/me", headers=world.outsider.auth)).status_code == 200
    issued = await client.post(
        f"/api/v1/users/{world.spare.id}/tokens", headers=world.secretariat.auth
    )
    fresh = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert (await client.get("/api/v1/me", headers=fresh)).json()["id"] == world.spare.id
    assert_problem(await client.get("/api/v1/me", headers=world.spare.auth), 401)

    before = core.last_position()
    response = await client.delete(
        f"/api/v1/users/{UNKNOWN_ID}/tokens", headers=world.secretariat.auth
    )
    assert_problem(response, 404)
    response = await client.delete(
        f"/api/v1/users/{world.spare.id}/tokens", headers=world.chair.auth
    )
    assert_problem(response, 403)
    unchanged(core, before)


# --- meetings -----------------------------------------------------------------------


async def test_the_secretariat_schedules_a_meeting(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    response = await client.post(
        "/api/v1/meetings", json=meeting_body(themes=THEMES), headers=world.secretariat.auth
    )
    body = assert_command(response, 201)
    assert response.headers["location"] == f"/api/v1/meetings/{body['id']}"
    assert body["position"] == core.last_position()
    assert set(body) == MEETING_FIELDS | {"position"}
    assert body["status"] == "scheduled"
    assert body["outcome_versions"] == []
    assert body["themes"] == THEMES
    assert (body["starts_on"], body["ends_on"]) == ("2025-06-02", "2025-06-03")
    read = assert_single(
        await client.get(response.headers["location"], headers=world.secretariat.auth)
    )
    assert read == {k: v for k, v in body.items() if k != "position"}


@pytest.mark.readonly
@pytest.mark.parametrize(
    "changes",
    [
        {"ends_on": "2025-06-01"},
        {"starts_on": "2025-02-30"},
        {"hosts": []},
        {"themes": []},
        {"themes": [{"key": "Tech Nology", "title": "Technology"}]},
        {"themes": [{"key": TECH, "title": "A"}, {"key": TECH, "title": "B"}]},
        {"themes": [{"key": TECH}]},
        {"ministerial": "Berlin 2025"},
        {"hosts": [" "]},
    ],
)
async def test_scheduling_refuses_an_invalid_meeting(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, changes: dict[str, Any]
) -> None:
    before = core.last_position()
    response = await client.post(
        "/api/v1/meetings", json=meeting_body(**changes), headers=world.secretariat.auth
    )
    assert_problem(response, 422)
    unchanged(core, before)


@pytest.mark.readonly
async def test_a_reader_reads_a_meeting_and_others_find_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/v1/meetings/{world.meeting}", headers=world.observer.auth)
    body = assert_single(response)
    assert set(body) == MEETING_FIELDS
    assert body["id"] == world.meeting
    assert body["status"] == "open"
    assert body["hosts"] == ["Pakistan", "Republic of Korea"]
    assert body["ministerial"] == "berlin-2025"
    forwarded = assert_single(
        await client.get(f"/api/v1/meetings/{world.forwarded}", headers=world.ministerial.auth)
    )
    (record,) = forwarded["outcome_versions"]
    assert set(record) == {"version", "sha256", "document_position", "forwarded_at", "forwarded_by"}
    assert record["version"] == 1 and record["forwarded_by"] == SYSTEM
    assert RFC3339_UTC.match(record["forwarded_at"])
    for missing in (UNKNOWN_ID, "nope", world.submitted):
        response = await client.get(f"/api/v1/meetings/{missing}", headers=world.secretariat.auth)
        assert_problem(response, 404, "not-found")
    hidden = await client.get(f"/api/v1/meetings/{world.meeting}", headers=world.outsider.auth)
    unknown = await client.get(f"/api/v1/meetings/{UNKNOWN_ID}", headers=world.outsider.auth)
    assert_problem(hidden, 404)
    assert_problem(unknown, 404)
    assert hidden.json()["title"] == unknown.json()["title"]


async def test_enrolling_a_participant_lets_them_read_the_meeting(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/meetings/{world.meeting}"
    assert_problem(await client.get(path, headers=world.spare.auth), 404)
    version = int((await client.get(path, headers=world.secretariat.auth)).json()["version"])
    response = await client.post(
        f"{path}/participants",
        json={"user_id": world.spare.id, "role": "rapporteur", "themes": [SAFETY]},
        headers=world.secretariat.auth,
    )
    body = assert_created(response, path)
    assert body["id"] == world.meeting
    assert body["version"] == version + 1
    assert body["position"] == core.last_position()
    assert assert_single(await client.get(path, headers=world.spare.auth))["id"] == world.meeting
    drafted = await client.post(
        f"{path}/proposals", json=proposal_body(theme=SAFETY), headers=world.spare.auth
    )
    assert drafted.status_code == 201


@pytest.mark.readonly
@pytest.mark.parametrize(
    ("meeting", "body", "status"),
    [
        ("meeting", {"user_id": "{spare}", "role": "president", "themes": []}, 422),
        ("meeting", {"user_id": "{spare}", "role": "chair", "themes": []}, 422),
        ("meeting", {"user_id": "{spare}", "role": "rapporteur"}, 422),
        ("meeting", {"user_id": "{spare}", "role": "chair", "themes": ["culture"]}, 422),
        ("meeting", {"user_id": "{spare}", "role": "chair", "themes": [TECH, TECH]}, 422),
        ("meeting", {"user_id": UNKNOWN_ID, "role": "observer"}, 422),
        ("meeting", {"user_id": "not-a-user", "role": "observer"}, 422),
        ("meeting", {"role": "observer"}, 422),
        ("forwarded", {"user_id": "{spare}", "role": "observer"}, 409),
    ],
)
async def test_enrolment_refusals(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    meeting: str,
    body: dict[str, Any],
    status: int,
) -> None:
    before = core.last_position()
    if body.get("user_id") == "{spare}":
        body = {**body, "user_id": world.spare.id}
    response = await client.post(
        f"/api/v1/meetings/{getattr(world, meeting)}/participants",
        json=body,
        headers=world.secretariat.auth,
    )
    assert_problem(response, status)
    unchanged(core, before)


async def test_the_meeting_lifecycle_over_http(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    auth = world.secretariat.auth
    path = f"/api/v1/meetings/{world.scheduled}"

    async def step(action: str, status: str, **kw: Any) -> dict[str, Any]:
        response = await client.post(f"{path}/{action}", headers=auth, **kw)
        body = assert_command(response)
        assert set(body) == MEETING_FIELDS | {"position"}
        assert body["status"] == status
        assert body["position"] == core.last_position()
        assert "location" not in response.headers
        return body

    async def refused(action: str, state: str, **kw: Any) -> None:
        before = core.last_position()
        problem = assert_problem(
            await client.post(f"{path}/{action}", headers=auth, **kw), 409, "invalid-transition"
        )
        assert state in problem["detail"] and action in problem["detail"]
        assert (problem["state"], problem["action"]) == (state, action)
        unchanged(core, before)

    await refused("close", "scheduled")
    await refused("reopen", "scheduled", json={"reason": "Why not"})
    opened = await step("open", "open")
    await refused("open", "open")
    closed = await step("close", "closed")
    assert closed["version"] == opened["version"] + 1
    await refused("close", "closed")

    path = f"/api/v1/meetings/{world.forwarded}"
    before = core.last_position()
    assert_problem(await client.post(f"{path}/reopen", headers=auth), 422)
    assert_problem(await client.post(f"{path}/reopen", json={}, headers=auth), 422)
    assert_problem(await client.post(f"{path}/reopen", json={"reason": " "}, headers=auth), 422)
    unchanged(core, before)
    reopened = await step("reopen", "closed", json={"reason": "A late correction"})
    assert len(reopened["outcome_versions"]) == 1
    await refused("reopen", "closed", json={"reason": "Again"})


@pytest.mark.readonly
async def test_lifecycle_actions_on_a_missing_meeting_are_404(
    client: httpx.AsyncClient, world: World
) -> None:
    for action in ("open", "close", "reopen"):
        response = await client.post(
            f"/api/v1/meetings/{UNKNOWN_ID}/{action}",
            json={"reason": "x"},
            headers=world.secretariat.auth,
        )
        assert_problem(response, 404)


async def test_a_chair_orders_the_approved_proposals_of_their_theme(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/meetings/{world.meeting}/themes/{TECH}/order"
    # a second approved proposal, so that an order means something
    approve = await client.post(
        f"/api/v1/proposals/{world.target}/approve", headers=world.chair.auth
    )
    assert approve.status_code == 200
    order = [world.target, world.approved]
    body = assert_command(
        await client.put(path, json={"proposal_ids": order}, headers=world.chair.auth)
    )
    assert body["id"] == world.meeting and set(body) == MEETING_FIELDS | {"position"}
    assert body["position"] == core.last_position()

    before = core.last_position()
    for ids in (
        [world.approved],  # one approved proposal missing
        [world.approved, world.approved, world.target],  # twice
        [world.approved, world.target, world.submitted],  # not approved
        [world.approved, world.target, UNKNOWN_ID],  # unknown
        [],
    ):
        response = await client.put(path, json={"proposal_ids": ids}, headers=world.chair.auth)
        assert_problem(response, 409, "rule-violation")
    response = await client.put(
        f"/api/v1/meetings/{world.meeting}/themes/culture/order",
        json={"proposal_ids": []},
        headers=world.chair.auth,
    )
    assert_problem(response, 404)
    response = await client.put(
        f"/api/v1/meetings/{world.scheduled}/themes/{TECH}/order",
        json={"proposal_ids": []},
        headers=world.chair.auth,
    )
    assert_problem(response, 409, "invalid-transition")
    unchanged(core, before)


# --- proposals --------------------------------------------------------------------------


async def test_a_rapporteur_drafts_a_proposal(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    response = await client.post(
        f"/api/v1/meetings/{world.meeting}/proposals",
        json=proposal_body(rationale="Lives are lost in the first hour."),
        headers=world.proposer.auth,
    )
    body = assert_command(response, 201)
    assert response.headers["location"] == f"/api/v1/proposals/{body['id']}"
    assert set(body) == PROPOSAL_FIELDS | {"position"}
    assert body["position"] == core.last_position()
    assert body["meeting_id"] == world.meeting
    assert body["status"] == "draft"
    assert body["revision"] == 1
    assert body["rationale"] == "Lives are lost in the first hour."
    assert body["proposer"] == {
        "id": world.proposer.id,
        "name": world.proposer.name,
        "delegation": world.proposer.delegation,
    }
    assert (body["endorsements"], body["final_text"], body["decision"], body["merged_into"]) == (
        [],
        None,
        None,
        None,
    )
    read = assert_single(
        await client.get(response.headers["location"], headers=world.observer.auth)
    )
    assert read == {k: v for k, v in body.items() if k != "position"}


async def test_drafting_with_submit_true_submits_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/meetings/{world.meeting}/proposals",
        json=proposal_body(submit=True),
        headers=world.other_rapporteur.auth,
    )
    body = assert_command(response, 201)
    assert body["status"] == "submitted"
    assert body["revision"] == 1


@pytest.mark.readonly
@pytest.mark.parametrize(
    ("meeting", "actor", "body", "status", "kind"),
    [
        ("meeting", "proposer", proposal_body(theme="culture"), 422, "invalid-input"),
        ("meeting", "proposer", proposal_body(theme="Not A Key"), 422, None),
        ("meeting", "proposer", proposal_body(theme=SAFETY), 403, "forbidden"),
        ("meeting", "chair", proposal_body(), 403, "forbidden"),
        ("scheduled", "proposer", proposal_body(), 409, "invalid-transition"),
        ("forwarded", "proposer", proposal_body(), 409, "invalid-transition"),
        ("unknown", "proposer", proposal_body(), 404, "not-found"),
    ],
)
async def test_drafting_refusals(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    meeting: str,
    actor: str,
    body: dict[str, Any],
    status: int,
    kind: str | None,
) -> None:
    before = core.last_position()
    meeting_id = UNKNOWN_ID if meeting == "unknown" else getattr(world, meeting)
    response = await client.post(
        f"/api/v1/meetings/{meeting_id}/proposals", json=body, headers=world.person(actor).auth
    )
    assert_problem(response, status, kind)
    unchanged(core, before)


@pytest.mark.readonly
async def test_reading_a_proposal(client: httpx.AsyncClient, world: World) -> None:
    body = assert_single(
        await client.get(f"/api/v1/proposals/{world.approved}", headers=world.ministerial.auth)
    )
    assert set(body) == PROPOSAL_FIELDS
    assert body["status"] == "approved"
    decision = body["decision"]
    assert set(decision) == {"action", "by", "at", "reason"}
    assert (decision["action"], decision["by"]) == ("approve", world.chair.id)
    assert RFC3339_UTC.match(decision["at"])
    for missing in (UNKNOWN_ID, "123", world.meeting):
        response = await client.get(f"/api/v1/proposals/{missing}", headers=world.secretariat.auth)
        assert_problem(response, 404, "not-found")


async def test_the_proposer_revises_and_only_a_new_text_counts_as_a_revision(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.draft}"
    auth = world.proposer.auth
    titled = assert_command(
        await client.patch(path, json={"title": "Shared picture"}, headers=auth)
    )
    assert (titled["title"], titled["revision"], titled["version"]) == ("Shared picture", 1, 2)
    rewritten = assert_command(await client.patch(path, json={"text": "A new text."}, headers=auth))
    assert (rewritten["text"], rewritten["revision"]) == ("A new text.", 2)
    assert rewritten["position"] == core.last_position()
    same = assert_command(await client.patch(path, json={"text": "A new text."}, headers=auth))
    assert same["revision"] == 2
    reasoned = assert_command(await client.patch(path, json={"rationale": "Why."}, headers=auth))
    assert (reasoned["rationale"], reasoned["revision"]) == ("Why.", 2)

    before = core.last_position()
    assert_problem(await client.patch(path, json={}, headers=auth), 422)
    response = await client.patch(
        f"/api/v1/proposals/{world.submitted}", json={"title": "Late"}, headers=auth
    )
    problem = assert_problem(response, 409, "invalid-transition")
    assert (problem["state"], problem["action"]) == ("submitted", "revise")
    response = await client.patch(
        f"/api/v1/proposals/{UNKNOWN_ID}", json={"title": "x"}, headers=auth
    )
    assert_problem(response, 404)
    unchanged(core, before)


async def test_submit_and_withdraw(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    auth = world.proposer.auth
    path = f"/api/v1/proposals/{world.draft}"
    submitted = assert_command(await client.post(f"{path}/submit", headers=auth))
    assert submitted["status"] == "submitted"
    before = core.last_position()
    problem = assert_problem(await client.post(f"{path}/submit", headers=auth), 409)
    assert "submitted" in problem["detail"] and "submit" in problem["detail"]
    unchanged(core, before)
    withdrawn = assert_command(
        await client.post(f"{path}/withdraw", json={"reason": "Overtaken"}, headers=auth)
    )
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["version"] == submitted["version"] + 1

    no_body = await client.post(f"/api/v1/proposals/{world.revision}/withdraw", headers=auth)
    assert assert_command(no_body)["status"] == "withdrawn"
    before = core.last_position()
    response = await client.post(f"/api/v1/proposals/{world.approved}/withdraw", headers=auth)
    assert_problem(response, 409, "invalid-transition")
    unchanged(core, before)


async def test_a_chair_approves_with_final_wording_and_a_note(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/approve",
        json={"final_text": "Agreed wording.", "note": "By consensus"},
        headers=world.chair.auth,
    )
    body = assert_command(response)
    assert body["status"] == "approved"
    assert body["final_text"] == "Agreed wording."
    assert body["decision"]["action"] == "approve"
    assert body["decision"]["by"] == world.chair.id
    assert body["decision"]["reason"] == "By consensus"
    assert RFC3339_UTC.match(body["decision"]["at"])

    plain = assert_command(
        await client.post(f"/api/v1/proposals/{world.target}/approve", headers=world.chair.auth)
    )
    assert (plain["status"], plain["final_text"]) == ("approved", None)
    before = core.last_position()
    response = await client.post(
        f"/api/v1/proposals/{world.draft}/approve", headers=world.chair.auth
    )
    problem = assert_problem(response, 409, "invalid-transition")
    assert (problem["state"], problem["action"]) == ("draft", "approve")
    unchanged(core, before)


async def test_a_chair_rejects_with_a_reason(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.submitted}/reject"
    before = core.last_position()
    assert_problem(await client.post(path, headers=world.chair.auth), 422)
    unchanged(core, before)
    body = assert_command(
        await client.post(path, json={"reason": "Outside the mandate"}, headers=world.chair.auth)
    )
    assert body["status"] == "rejected"
    assert body["decision"]["reason"] == "Outside the mandate"
    before = core.last_position()
    assert_problem(await client.post(path, json={"reason": "Again"}, headers=world.chair.auth), 409)
    unchanged(core, before)


async def test_a_requested_revision_is_revised_and_resubmitted(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/api/v1/proposals/{world.submitted}"
    body = assert_command(
        await client.post(
            f"{path}/request-revision",
            json={"reason": "Name the missions"},
            headers=world.chair.auth,
        )
    )
    assert body["status"] == "revision_requested"
    assert body["decision"]["action"] == "request_revision"
    revised = assert_command(
        await client.patch(
            path, json={"text": "MINUSCA and MONUSCO first."}, headers=world.proposer.auth
        )
    )
    assert (revised["status"], revised["revision"]) == ("revision_requested", 2)
    again = assert_command(await client.post(f"{path}/submit", headers=world.proposer.auth))
    assert again["status"] == "submitted"


async def test_a_chair_reconsiders_a_decision(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.approved}/reconsider"
    body = assert_command(
        await client.post(path, json={"reason": "New information"}, headers=world.chair.auth)
    )
    assert (body["status"], body["final_text"], body["decision"]["action"]) == (
        "submitted",
        None,
        "reconsider",
    )
    before = core.last_position()
    assert_problem(await client.post(path, json={"reason": "Again"}, headers=world.chair.auth), 409)
    unchanged(core, before)


async def test_a_chair_merges_a_proposal_into_another(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/merge",
        json={"into": world.target, "reason": "The same idea, better put"},
        headers=world.chair.auth,
    )
    body = assert_command(response)
    assert (body["status"], body["merged_into"]) == ("merged", world.target)
    assert body["decision"]["reason"] == "The same idea, better put"


@pytest.mark.readonly
@pytest.mark.parametrize(
    ("into", "status"),
    [
        (UNKNOWN_ID, 422),
        ("not-a-proposal", 422),
        ("{meeting}", 422),
        ("{submitted}", 409),  # itself
        ("{safety}", 409),  # another theme
        ("{withdrawn}", 409),  # not live
    ],
)
async def test_merge_refusals(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, into: str, status: int
) -> None:
    before = core.last_position()
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/merge",
        json={"into": url(world, into), "reason": "Merge"},
        headers=world.chair.auth,
    )
    problem = assert_problem(response, status)
    if status == 422:
        assert problem["type"] == "urn:prepmeet:problem:invalid-input"
        assert problem["errors"][0]["field"] == "into"
    unchanged(core, before)


async def test_comments_are_added_and_listed_oldest_first_in_pages(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.submitted}/comments"
    response = await client.post(
        path, json={"text": "Agreed in principle."}, headers=world.proposer.auth
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "author", "text", "at", "position"}
    assert response.headers["location"] == path
    assert (body["author"], body["text"]) == (world.proposer.id, "Agreed in principle.")
    assert body["position"] == core.last_position()
    assert RFC3339_UTC.match(body["at"])
    assert "etag" in response.headers

    listed = await client.get(path, headers=world.observer.auth)
    assert listed.status_code == 200
    page = listed.json()
    assert set(page) == {"items", "next_cursor"}
    assert [c["id"] for c in page["items"]] == [world.comment, body["id"]]
    assert page["next_cursor"] is None

    first = (await client.get(path, params={"limit": 1}, headers=world.observer.auth)).json()
    assert [c["id"] for c in first["items"]] == [world.comment]
    assert isinstance(first["next_cursor"], str)
    second = (
        await client.get(
            path, params={"limit": 1, "cursor": first["next_cursor"]}, headers=world.observer.auth
        )
    ).json()
    assert [c["id"] for c in second["items"]] == [body["id"]]
    assert second["next_cursor"] is None

    for params in ({"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"cursor": "garbage!"}):
        assert_problem(await client.get(path, params=params, headers=world.observer.auth), 422)
    assert (
        await client.get(path, params={"limit": 200}, headers=world.observer.auth)
    ).status_code == 200


@pytest.mark.readonly
async def test_comments_on_a_withdrawn_proposal_are_refused(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    before = core.last_position()
    response = await client.post(
        f"/api/v1/proposals/{world.withdrawn}/comments",
        json={"text": "Too late"},
        headers=world.chair.auth,
    )
    assert_problem(response, 409, "invalid-transition")
    unchanged(core, before)


async def test_a_delegation_endorses_once(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.submitted}/endorsements"
    delegation = world.other_rapporteur.delegation
    response = await client.post(
        path, json={"delegation": delegation}, headers=world.other_rapporteur.auth
    )
    body = assert_created(response, f"/api/v1/proposals/{world.submitted}")
    assert body["endorsements"] == [delegation]
    assert body["position"] == core.last_position()

    before = core.last_position()
    again = await client.post(
        path, json={"delegation": delegation}, headers=world.other_rapporteur.auth
    )
    problem = assert_problem(again, 409, "rule-violation")
    assert delegation in problem["detail"]
    foreign = await client.post(
        path, json={"delegation": "France"}, headers=world.other_rapporteur.auth
    )
    assert_problem(foreign, 403)
    own = await client.post(
        path, json={"delegation": world.proposer.delegation}, headers=world.proposer.auth
    )
    assert_problem(own, 409, "rule-violation")
    unchanged(core, before)
    read = await client.get(f"/api/v1/proposals/{world.submitted}", headers=world.observer.auth)
    assert read.json()["endorsements"] == [delegation]


async def test_history_lists_every_event_of_the_proposal_oldest_first(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    path = f"/api/v1/proposals/{world.submitted}"
    await client.post(f"{path}/approve", json={"note": "Fine"}, headers=world.chair.auth)
    response = await client.get(f"{path}/history", headers=world.observer.auth)
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"items", "next_cursor"} and page["next_cursor"] is None
    items = page["items"]
    assert [i["type"] for i in items] == [
        "ProposalDrafted",
        "ProposalSubmitted",
        "ProposalCommented",
        "ProposalApproved",
    ]
    assert [i["actor"] for i in items] == [
        world.proposer.id,
        world.proposer.id,
        world.chair.id,
        world.chair.id,
    ]
    positions = [i["position"] for i in items]
    assert positions == sorted(set(positions)) and positions[-1] == core.last_position()
    for item in items:
        assert set(item) == {"position", "type", "at", "actor", "data"}
        assert RFC3339_UTC.match(item["at"])
    assert items[0]["data"]["title"] == "Situational awareness"
    assert items[3]["data"]["note"] == "Fine"

    first = (
        await client.get(f"{path}/history", params={"limit": 3}, headers=world.chair.auth)
    ).json()
    rest = (
        await client.get(
            f"{path}/history",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=world.chair.auth,
        )
    ).json()
    assert first["items"] + rest["items"] == items and rest["next_cursor"] is None
    assert_problem(
        await client.get(f"{path}/history", params={"limit": 0}, headers=world.chair.auth), 422
    )
    assert_problem(
        await client.get(f"/api/v1/proposals/{UNKNOWN_ID}/history", headers=world.chair.auth), 404
    )


@pytest.mark.readonly
async def test_lists_of_unreadable_proposals_are_404_whatever_the_query(
    client: httpx.AsyncClient, world: World
) -> None:
    for tail in ("comments", "history"):
        for params in ({}, {"limit": 0}, {"cursor": "garbage!"}):
            response = await client.get(
                f"/api/v1/proposals/{world.submitted}/{tail}",
                params=params,
                headers=world.outsider.auth,
            )
            assert_problem(response, 404)


# --- the event feed ----------------------------------------------------------------------


@pytest.mark.readonly
async def test_the_event_feed_pages_through_the_log(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World
) -> None:
    last = core.last_position()
    first = await client.get("/api/v1/events", params={"limit": 5}, headers=world.ministerial.auth)
    assert first.status_code == 200
    page = first.json()
    assert set(page) == {"items", "next_cursor"}
    assert [e["position"] for e in page["items"]] == [1, 2, 3, 4, 5]
    for event in page["items"]:
        assert set(event) == {"position", "type", "at", "actor", "aggregate_id", "data"}
        assert RFC3339_UTC.match(event["at"])
    assert page["items"][0]["type"] == "UserRegistered"
    assert page["items"][0]["actor"] == SYSTEM
    assert page["next_cursor"] == "5"

    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 17}
        if cursor is not None:
            params["cursor"] = cursor
        body = (
            await client.get("/api/v1/events", params=params, headers=world.secretariat.auth)
        ).json()
        seen += [e["position"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, last + 1))
    assert (
        "token_hash"
        not in (
            await client.get(
                "/api/v1/events", params={"limit": 200}, headers=world.secretariat.auth
            )
        ).text
    )

    since = await client.get(
        "/api/v1/events", params={"since": last - 2}, headers=world.secretariat.auth
    )
    assert [e["position"] for e in since.json()["items"]] == [last - 1, last]
    empty = await client.get(
        "/api/v1/events", params={"since": last}, headers=world.secretariat.auth
    )
    assert empty.json() == {"items": [], "next_cursor": None}


@pytest.mark.readonly
@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"since": -1},
        {"since": "recent"},
        {"since": 2**63},
        {"since": 10**30},
        {"cursor": "abc"},
        {"cursor": "99999999999999999999"},
        {"cursor": "٣"},
        {"cursor": "²"},
    ],
)
async def test_the_event_feed_refuses_a_bad_query(
    client: httpx.AsyncClient, world: World, params: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/events", params=params, headers=world.secretariat.auth)
    assert_problem(response, 422)
    response = await client.get("/api/v1/events", params=params, headers=world.observer.auth)
    assert_problem(response, 403)
    assert_problem(await client.get("/api/v1/events", params=params), 401)


@pytest.mark.readonly
async def test_the_largest_position_is_a_valid_since(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        "/api/v1/events", params={"since": 2**63 - 1}, headers=world.secretariat.auth
    )
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.readonly
@pytest.mark.parametrize(
    ("actor", "headers", "status"),
    [
        (None, {}, 401),
        ("observer", {}, 403),
        ("chair", {"Last-Event-ID": "abc"}, 403),
        ("secretariat", {"Last-Event-ID": b"abc"}, 422),
        ("secretariat", {"Last-Event-ID": b"-1"}, 422),
        ("secretariat", {"Last-Event-ID": b"\xb2"}, 422),  # "²" in Latin-1: a digit to isdigit()
        ("secretariat", {"Last-Event-ID": b"99999999999999999999"}, 422),
        ("secretariat", {"Last-Event-ID": b"1" * 21}, 422),
        ("secretariat", {}, 422),  # with ?since=-1 below
    ],
)
async def test_the_event_stream_refusals(
    client: httpx.AsyncClient,
    world: World,
    actor: str | None,
    headers: dict[str, bytes],
    status: int,
) -> None:
    auth = world.person(actor).auth if actor else {}
    params = {} if headers or actor != "secretariat" else {"since": -1}
    response = await wait_for(
        client.get("/api/v1/events/stream", params=params, headers={**auth, **headers})
    )
    assert_problem(response, status)


async def test_the_event_stream_answers_with_server_sent_events(
    app: FastAPI, world: World, core: PreparatoryMeetings
) -> None:
    """The success path (the in-process transport buffers whole responses: a real server)."""
    last = core.last_position()
    with serving(app) as base_url:
        async with (
            live_client(base_url) as live,
            live.stream(
                "GET",
                "/api/v1/events/stream",
                params={"since": last - 1},
                headers=world.ministerial.auth,
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            lines = response.aiter_lines()
            assert await wait_for(anext(lines)) == ": connected"
            assert await wait_for(anext(lines)) == ""
            assert await wait_for(anext(lines)) == f"id: {last}"
            assert (await wait_for(anext(lines))).startswith("event: ")
            assert (await wait_for(anext(lines))).startswith('data: {"position":')


async def test_a_draft_over_http_reads_its_meeting_once(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The access check before the body reads the meeting; the command uses that read."""
    reads = aggregate_reads(core, monkeypatch, world.meeting)
    response = await client.post(
        f"/api/v1/meetings/{world.meeting}/proposals",
        json=proposal_body(submit=True),
        headers=world.proposer.auth,
    )
    assert response.status_code == 201, response.text
    assert len(reads) == 1


async def test_a_decision_over_http_reads_its_meeting_once_and_its_proposal_twice(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The access check reads both; under the meeting's lock the proposal is read again."""
    reads = aggregate_reads(core, monkeypatch, world.meeting, world.submitted)
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/approve",
        json={"note": "Agreed by the chair"},
        headers=world.chair.auth,
    )
    assert response.status_code == 200, response.text
    assert (reads.count(world.meeting), reads.count(world.submitted)) == (1, 2)
