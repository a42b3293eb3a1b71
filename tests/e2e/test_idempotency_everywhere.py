"""``Idempotency-Key`` on the creations that are events of an existing object.

Comments, endorsements, enrolments, tokens and forwarded versions record the key (hashed in
its scope) and the request's hash in the event they create, so a retry is answered from the
store: with the first answer (tokens: a 409, as a token is shown only once), across restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from domain.application import PreparatoryMeetings
from tests.e2e.conftest import TECH, World, assert_problem, client_for, settings_for


@dataclass(frozen=True)
class Creation:
    actor: str
    path: str
    body: dict[str, Any] | None
    other: dict[str, Any]  # another body, for the same key
    event: str
    other_kind: str = "idempotency-key-reused"


def creations(world: World) -> dict[str, Creation]:
    meeting, proposal = world.meeting, world.submitted
    return {
        "comment": Creation(
            "chair",
            f"/api/v1/proposals/{proposal}/comments",
            {"text": "Which missions first?"},
            {"text": "Which missions last?"},
            "ProposalCommented",
        ),
        "endorsement": Creation(
            "other_rapporteur",
            f"/api/v1/proposals/{proposal}/endorsements",
            {"delegation": world.other_rapporteur.delegation},
            {"delegation": "Ghana"},
            "ProposalEndorsed",
        ),
        "participant": Creation(
            "secretariat",
            f"/api/v1/meetings/{meeting}/participants",
            {"user_id": world.spare.id, "role": "observer", "themes": []},
            {"user_id": world.spare.id, "role": "rapporteur", "themes": [TECH]},
            "MeetingParticipantEnrolled",
        ),
        # the two actions take no body: another body is refused as such, and records nothing
        "token": Creation(
            "secretariat",
            f"/api/v1/users/{world.spare.id}/tokens",
            None,
            {"note": "again"},
            "UserTokenIssued",
            "invalid-input",
        ),
        "forward": Creation(
            "secretariat",
            f"/api/v1/meetings/{meeting}/forward",
            None,
            {"note": "again"},
            "MeetingOutcomeForwarded",
            "invalid-input",
        ),
    }


KINDS = ["comment", "endorsement", "participant", "token", "forward"]


class Service:
    """An app of its own over the world's SQLite files, which a test may restart."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._start()

    def _start(self) -> None:
        settings = settings_for(self.data_dir, rate_limit_per_address=0, rate_limit_per_token=0)
        self.app: FastAPI = create_app(settings)
        self.client = client_for(self.app)

    @property
    def core(self) -> PreparatoryMeetings:
        core: PreparatoryMeetings = self.app.state.container.app
        return core

    async def stop(self) -> None:
        await self.client.aclose()
        self.app.state.container.close()

    async def restart(self) -> None:
        await self.stop()
        self._start()


@pytest.fixture
async def service(world: World, data_dir: Path) -> AsyncIterator[Service]:
    served = Service(data_dir)
    try:
        yield served
    finally:
        await served.stop()


async def prepared(service: Service, world: World, kind: str) -> Creation:
    creation = creations(world)[kind]
    if kind == "forward":
        close = f"/api/v1/meetings/{world.meeting}/close"
        response = await service.client.post(close, headers=world.secretariat.auth)
        assert response.status_code == 200, response.text
    return creation


async def send(
    service: Service, world: World, creation: Creation, key: str, body: Any = ...
) -> httpx.Response:
    headers = {**world.person(creation.actor).auth, "Idempotency-Key": key}
    given = creation.body if body is ... else body
    if given is None:
        return await service.client.post(creation.path, headers=headers)
    return await service.client.post(creation.path, json=given, headers=headers)


def count(core: PreparatoryMeetings, since: int, event: str) -> int:
    return [e["type"] for e in core.feed(since, 10_000)].count(event)


def assert_same_answer(first: httpx.Response, retry: httpx.Response) -> None:
    assert (first.status_code, retry.status_code) == (201, 201), retry.text
    assert retry.json() == first.json()
    for header in ("location", "etag"):
        assert retry.headers.get(header) == first.headers.get(header)


def assert_token_refused(retry: httpx.Response) -> None:
    body = assert_problem(retry, 409, "rule-violation")
    assert "already issued" in body["detail"]
    assert "token" not in {k for k in body if k != "detail"}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_retry_with_the_same_key_and_body_creates_nothing_and_answers_the_same(
    service: Service, world: World, kind: str
) -> None:
    creation = await prepared(service, world, kind)
    before = service.core.last_position()
    first = await send(service, world, creation, f"{kind}-1")
    assert first.status_code == 201, first.text
    after = service.core.last_position()

    retry = await send(service, world, creation, f"{kind}-1")
    if kind == "token":
        assert_token_refused(retry)
    else:
        assert_same_answer(first, retry)
        assert retry.json()["position"] == first.json()["position"] <= after
    assert service.core.last_position() == after
    assert count(service.core, before, creation.event) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_the_same_key_with_another_body_is_422_and_records_nothing(
    service: Service, world: World, kind: str
) -> None:
    creation = await prepared(service, world, kind)
    first = await send(service, world, creation, "k-1")
    assert first.status_code == 201, first.text
    before = service.core.last_position()
    response = await send(service, world, creation, "k-1", creation.other)
    assert_problem(response, 422, creation.other_kind)
    assert service.core.last_position() == before


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_requests_with_one_key_create_once(
    service: Service, world: World, kind: str
) -> None:
    creation = await prepared(service, world, kind)
    before = service.core.last_position()
    responses = await asyncio.gather(
        *(send(service, world, creation, f"{kind}-together") for _ in range(4))
    )
    assert count(service.core, before, creation.event) == 1
    created = [r for r in responses if r.status_code == 201]
    if kind == "token":
        assert len(created) == 1
        for other in responses:
            if other is not created[0]:
                assert_token_refused(other)
    else:
        assert len(created) == 4, [r.text for r in responses]
        for other in responses[1:]:
            assert_same_answer(responses[0], other)


@pytest.mark.parametrize("kind", KINDS)
async def test_the_key_survives_a_restart(service: Service, world: World, kind: str) -> None:
    creation = await prepared(service, world, kind)
    first = await send(service, world, creation, f"{kind}-kept")
    assert first.status_code == 201, first.text

    await service.restart()
    before = service.core.last_position()
    retry = await send(service, world, creation, f"{kind}-kept")
    if kind == "token":
        assert_token_refused(retry)
    else:
        assert_same_answer(first, retry)
    reused = await send(service, world, creation, f"{kind}-kept", creation.other)
    assert_problem(reused, 422, creation.other_kind)
    assert service.core.last_position() == before


@pytest.mark.parametrize("kind", ["comment", "participant", "token"])
async def test_another_key_or_no_key_creates_again(
    service: Service, world: World, kind: str
) -> None:
    creation = await prepared(service, world, kind)
    before = service.core.last_position()
    for key in ("a", "b"):
        response = await send(service, world, creation, key)
        assert response.status_code == 201, response.text
    headers = world.person(creation.actor).auth
    response = await service.client.post(creation.path, json=creation.body, headers=headers)
    assert response.status_code == 201
    assert count(service.core, before, creation.event) == 3


async def test_a_retry_answers_as_the_first_even_after_the_object_changed(
    service: Service, world: World
) -> None:
    creation = await prepared(service, world, "comment")
    first = await send(service, world, creation, "early")
    later = await service.client.post(
        creation.path, json={"text": "And then?"}, headers=world.chair.auth
    )
    assert later.status_code == 201
    assert_same_answer(first, await send(service, world, creation, "early"))

    enrol = await prepared(service, world, "participant")
    first = await send(service, world, enrol, "enrol-once")
    stale = {"If-Match": first.headers["etag"]}
    await service.client.post(
        enrol.path,
        json={"user_id": world.outsider.id, "role": "observer", "themes": []},
        headers=world.secretariat.auth,
    )
    headers = {**world.secretariat.auth, "Idempotency-Key": "enrol-once", **stale}
    retry = await service.client.post(enrol.path, json=enrol.body, headers=headers)
    assert_same_answer(first, retry)


async def test_the_key_is_stored_hashed_and_kept_out_of_the_record(
    service: Service, world: World
) -> None:
    creation = await prepared(service, world, "comment")
    key = "a-key-the-store-never-sees"
    before = service.core.last_position()
    assert (await send(service, world, creation, key)).status_code == 201
    notes = service.core.recorder.select_notifications(before + 1, 10)
    assert notes and all(key.encode() not in n.state for n in notes)
    assert all("idempotency" not in e["data"] for e in service.core.feed(before, 10))


async def test_concurrent_retries_naming_one_version_all_answer_as_the_first(
    service: Service, world: World
) -> None:
    creation = await prepared(service, world, "participant")
    meeting = await service.client.get(
        f"/api/v1/meetings/{world.meeting}", headers=world.secretariat.auth
    )
    headers = {
        **world.secretariat.auth,
        "Idempotency-Key": "enrol-at-version",
        "If-Match": meeting.headers["etag"],
    }
    before = service.core.last_position()
    responses = await asyncio.gather(
        *(service.client.post(creation.path, json=creation.body, headers=headers) for _ in range(4))
    )
    assert count(service.core, before, creation.event) == 1
    for other in responses:
        assert_same_answer(responses[0], other)
