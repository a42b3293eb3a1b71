"""Who may do what: every endpoint against every kind of user, as the contract's table says.

One row per endpoint, one column per kind of user. 2xx is allowed; 401 is no (valid) token;
403 is a user who may read the object but not do this to it; 404 is a user who may not even
read it (the outsider, for anything inside a meeting).

Each row runs on its own copy of the seeded world. Cells of a row may share it because the
checks that refuse (authentication, read access, role and ownership) come before any check
of state, and no row has two allowed cells where the first would change what the second
finds (two drafts, two comments or two reads do not; each lifecycle step has one allowed
actor). Every refused cell also asserts that nothing was recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from domain.application import PreparatoryMeetings
from tests.e2e.conftest import (
    TECH,
    Person,
    World,
    assert_problem,
    behind,
    client_for,
    copy_world,
    live_client,
    serving,
    wait_for,
)

ACTORS = (
    "anonymous",
    "secretariat",
    "chair",  # chair of the proposal's theme (technology)
    "chair_other",  # chair of another theme
    "proposer",  # the rapporteur who drafted the proposal
    "other_rapporteur",  # another rapporteur of the same theme
    "observer",
    "ministerial",
    "outsider",  # a user who is not a participant of the meeting
)
READERS = (401, 200, 200, 200, 200, 200, 200, 200, 404)
SECRETARIAT_ONLY = (401, 201, 403, 403, 403, 403, 403, 403, 403)
SECRETARIAT_ON_MEETING = (401, 200, 403, 403, 403, 403, 403, 403, 404)
PROPOSER_ONLY = (401, 403, 403, 403, 200, 403, 403, 403, 404)
CHAIR_ONLY = (401, 403, 200, 403, 403, 403, 403, 403, 404)
FEED = (401, 200, 403, 403, 403, 403, 403, 200, 403)
ANYONE = (200,) * 9

Body = Callable[[World, Person | None], Any]


def fixed(value: Any) -> Body:
    return lambda world, actor: value


# endpoint (method and path, {names} are the world's ids): (body, expected per actor)
# (the columns of the rows, in the order of ACTORS:
#  anonymous, secretariat, chair, chair_other, proposer, other_rapporteur, observer,
#  ministerial, outsider)
MATRIX: dict[str, tuple[Body | None, tuple[int, ...]]] = {
    "GET /healthz": (None, ANYONE),
    "GET /readyz": (None, ANYONE),
    "GET /api/v1/me": (None, (401, 200, 200, 200, 200, 200, 200, 200, 200)),
    "POST /api/v1/users": (fixed({"name": "Kofi", "delegation": "Ghana"}), SECRETARIAT_ONLY),
    "GET /api/v1/users/{spare}": (None, (401, 200, 403, 403, 403, 403, 403, 403, 403)),
    "POST /api/v1/users/{spare}/tokens": (None, SECRETARIAT_ONLY),
    "DELETE /api/v1/users/{spare}/tokens": (None, (401, 204, 403, 403, 403, 403, 403, 403, 403)),
    "POST /api/v1/meetings": (
        fixed(
            {
                "title": "Fifth preparatory meeting",
                "venue": "Accra",
                "starts_on": "2025-06-02",
                "ends_on": "2025-06-03",
                "hosts": ["Ghana"],
                "ministerial": "berlin-2025",
                "themes": [{"key": TECH, "title": "Technology"}],
            }
        ),
        SECRETARIAT_ONLY,
    ),
    "GET /api/v1/meetings/{meeting}": (None, READERS),
    "POST /api/v1/meetings/{meeting}/participants": (
        lambda world, actor: {"user_id": world.spare.id, "role": "observer"},
        (401, 201, 403, 403, 403, 403, 403, 403, 404),
    ),
    "POST /api/v1/meetings/{scheduled}/open": (None, SECRETARIAT_ON_MEETING),
    "POST /api/v1/meetings/{meeting}/close": (None, SECRETARIAT_ON_MEETING),
    "POST /api/v1/meetings/{forwarded}/reopen": (
        fixed({"reason": "A late correction"}),
        SECRETARIAT_ON_MEETING,
    ),
    "PUT /api/v1/meetings/{meeting}/themes/technology/order": (
        lambda world, actor: {"proposal_ids": [world.approved]},
        CHAIR_ONLY,
    ),
    "POST /api/v1/meetings/{meeting}/proposals": (
        fixed({"theme": TECH, "title": "Drones", "text": "Use drones for patrols."}),
        (401, 403, 403, 403, 201, 201, 403, 403, 404),
    ),
    "GET /api/v1/proposals/{draft}": (None, READERS),
    "PATCH /api/v1/proposals/{draft}": (fixed({"title": "A better title"}), PROPOSER_ONLY),
    "POST /api/v1/proposals/{draft}/submit": (None, PROPOSER_ONLY),
    "POST /api/v1/proposals/{draft}/withdraw": (fixed({"reason": "Overtaken"}), PROPOSER_ONLY),
    "POST /api/v1/proposals/{submitted}/approve": (None, CHAIR_ONLY),
    "POST /api/v1/proposals/{submitted}/reject": (fixed({"reason": "Out of scope"}), CHAIR_ONLY),
    "POST /api/v1/proposals/{submitted}/request-revision": (
        fixed({"reason": "Name the missions"}),
        CHAIR_ONLY,
    ),
    "POST /api/v1/proposals/{approved}/reconsider": (fixed({"reason": "New facts"}), CHAIR_ONLY),
    "POST /api/v1/proposals/{submitted}/merge": (
        lambda world, actor: {"into": world.target, "reason": "The same idea"},
        CHAIR_ONLY,
    ),
    "POST /api/v1/proposals/{submitted}/comments": (
        fixed({"text": "A fair point."}),
        (401, 403, 201, 201, 201, 201, 403, 403, 404),
    ),
    "GET /api/v1/proposals/{submitted}/comments": (None, READERS),
    # a rapporteur endorses in the name of their own delegation; the proposer's own
    # delegation may not endorse its proposal (a rule of state: 409, after the role check)
    "POST /api/v1/proposals/{submitted}/endorsements": (
        lambda world, actor: {"delegation": actor.delegation if actor else "Ghana"},
        (401, 403, 403, 403, 409, 201, 403, 403, 404),
    ),
    "GET /api/v1/proposals/{submitted}/history": (None, READERS),
    "GET /api/v1/events": (None, FEED),
    "GET /api/v1/events/stream": (None, FEED),
}


@dataclass
class Row:
    endpoint: str
    app: FastAPI
    world: World

    @property
    def core(self) -> PreparatoryMeetings:
        core: PreparatoryMeetings = self.app.state.container.app
        return core


@pytest.fixture(scope="module")
def row(
    request: pytest.FixtureRequest,
    shared_app: FastAPI,
    world_template: tuple[Path, World],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Row]:
    """A fresh world behind the app for each row (each endpoint) of the matrix."""
    directory = tmp_path_factory.mktemp("row") / "data"
    world = copy_world(world_template, directory)
    with behind(shared_app, directory):
        yield Row(request.param, shared_app, world)


def resolve(world: World, endpoint: str) -> tuple[str, str]:
    method, template = endpoint.split(" ", 1)
    ids = {k: v for k, v in vars(world).items() if isinstance(v, str)}
    ids["spare"] = world.spare.id
    return method, template.format(**ids)


async def stream_status(app: FastAPI, path: str, headers: dict[str, str]) -> int:
    """The status of an event stream that is allowed to open (it never ends: a real server)."""
    with serving(app) as base_url:
        async with live_client(base_url) as live, live.stream("GET", path, headers=headers) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            assert await wait_for(anext(r.aiter_lines())) == ": connected"
            return r.status_code


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("row", list(MATRIX), indirect=True)
async def test_access(row: Row, actor: str) -> None:
    expected = MATRIX[row.endpoint][1][ACTORS.index(actor)]
    world, core = row.world, row.core
    person = None if actor == "anonymous" else world.person(actor)
    headers = person.auth if person else {}
    make_body, _ = MATRIX[row.endpoint]
    body = make_body(world, person) if make_body else None
    method, path = resolve(world, row.endpoint)
    before = core.last_position()

    if path == "/api/v1/events/stream" and expected == 200:
        assert await stream_status(row.app, path, headers) == 200
        return
    async with client_for(row.app) as client:
        response = await client.request(method, path, json=body, headers=headers)

    if expected >= 400:
        assert_problem(response, expected)
        assert core.last_position() == before, "a refused request recorded something"
        return
    assert response.status_code == expected, response.text
    if expected == 204:
        assert response.content == b""
        assert core.last_position() > before
        return
    data = response.json()
    if method != "GET":
        assert data["position"] == core.last_position() > before
    if "version" in data and method != "DELETE":
        assert response.headers["etag"] == f'"{data["version"]}"'


async def test_a_rapporteur_may_not_revise_another_rapporteurs_proposal(
    app: FastAPI, world: World, core: PreparatoryMeetings
) -> None:
    """BOLA: a valid token and a readable object are not enough to change it."""
    path = f"/api/v1/proposals/{world.draft}"
    async with client_for(app) as client:
        original = (await client.get(path, headers=world.other_rapporteur.auth)).json()
        before = core.last_position()
        for method, tail, body in (
            ("PATCH", "", {"text": "Hijacked"}),
            ("POST", "/submit", None),
            ("POST", "/withdraw", {"reason": "Hijacked"}),
        ):
            response = await client.request(
                method,
                path + tail,
                json=body,
                headers={**world.other_rapporteur.auth, "If-Match": f'"{original["version"]}"'},
            )
            problem = assert_problem(response, 403, "forbidden")
            assert "proposer" in problem["detail"]
        assert core.last_position() == before
        after = (await client.get(path, headers=world.proposer.auth)).json()
        assert after == original
        own = await client.patch(path, json={"text": "Mine"}, headers=world.proposer.auth)
        assert own.status_code == 200


def shape(endpoint: str) -> str:
    """``METHOD /path/{}/...``: an endpoint with its parameters' names left out."""
    return re.sub(r"\{[^}]*\}", "{}", endpoint.replace("/technology/", "/{}/"))


# Endpoints of the contract that came after this table (lists, the compiled documents,
# forwarding): they are to get rows here, and until then only they may lack one.
LATER = {
    shape(e)
    for e in (
        "GET /api/v1/meetings",
        "GET /api/v1/meetings/{meeting_id}/proposals",
        "POST /api/v1/meetings/{meeting_id}/forward",
        "GET /api/v1/meetings/{meeting_id}/recommendations",
        "GET /api/v1/meetings/{meeting_id}/outcome/versions",
        "GET /api/v1/meetings/{meeting_id}/outcome/versions/{n}",
        "GET /api/v1/meetings/{meeting_id}/outcome/changes",
        "GET /api/v1/signing-key",
        "GET /api/v1/ministerials/{ministerial}/recommendations",
    )
}


async def test_the_table_covers_every_route_of_the_api(app: FastAPI) -> None:
    """A new endpoint gets a row here before it ships (the contract's later ones excepted)."""
    spec = app.openapi()
    documented = {
        shape(f"{method.upper()} {path}")
        for path, operations in spec["paths"].items()
        for method in operations
        if path != "/metrics"
    }
    covered = {shape(endpoint) for endpoint in MATRIX}
    assert covered <= documented, "rows for endpoints that are not served"
    assert documented - covered <= LATER, "endpoints without a row"
