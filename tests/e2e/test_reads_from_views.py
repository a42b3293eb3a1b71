"""Lists and documents are served from the views: no route of them loads a meeting or proposal.

Every list and document route is called over HTTP, by a reader and by a user it refuses,
while ``Repository.get`` and ``EventStore.get`` record what they load. Authenticating the
bearer token loads the ``ApiToken`` index and the ``User``; that is allowed. Anything else
(a ``Meeting``, a ``Proposal``, a proposal log, or an id that is not found) fails the test.
Single-object reads (``GET /meetings/{id}``, ``GET /proposals/{id}``) and a proposal's history
may read the event store by contract, and are not called here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eventsourcing.application import Repository
from eventsourcing.persistence import EventStore

from domain.application import PreparatoryMeetings
from tests.e2e.conftest import World, assert_problem

ALLOWED = {"User", "ApiToken"}
DOCUMENT_FORMATS = ("json", "md", "html", "pdf", "docx", "csv")

Loads = list[tuple[str, str]]


@contextlib.contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loads]:
    """``(kind, id)`` of every aggregate loaded and every stream of events read meanwhile."""
    loads: Loads = []
    real_get = Repository.get
    real_events = EventStore.get

    def get(self: Repository[Any], aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            aggregate = real_get(self, aggregate_id, *args, **kwargs)
        except Exception:
            loads.append(("not found", str(aggregate_id)))
            raise
        loads.append((type(aggregate).__name__, str(aggregate_id)))
        return aggregate

    def events(self: EventStore[Any], originator_id: Any, *args: Any, **kwargs: Any) -> Any:
        found = list(real_events(self, originator_id, *args, **kwargs))
        # a nested event class (Meeting.Scheduled) names its aggregate first; a cached
        # aggregate's read of no newer events loads nothing (its get is recorded above)
        kinds = {type(e).__qualname__.split(".")[0] for e in found}
        loads.extend((kind, str(originator_id)) for kind in sorted(kinds))
        return iter(found)

    with monkeypatch.context() as patch:
        patch.setattr(Repository, "get", get)
        patch.setattr(EventStore, "get", events)
        yield loads


def refused(loads: Loads) -> Loads:
    return [load for load in loads if load[0] not in ALLOWED]


async def forward_the_open_meeting(client: httpx.AsyncClient, world: World) -> None:
    """Close and forward the world's open meeting, so it has a real (renderable) version 1;
    forward the forwarded one anew, so the ministerial's latest versions all render."""
    head = world.secretariat.auth
    path = f"/api/v1/meetings/{world.meeting}"
    assert (await client.post(f"{path}/close", headers=head)).status_code == 200
    assert (await client.post(f"{path}/forward", headers=head)).status_code == 201
    path = f"/api/v1/meetings/{world.forwarded}"
    reopened = await client.post(f"{path}/reopen", json={"reason": "Recompile"}, headers=head)
    assert reopened.status_code == 200, reopened.text
    assert (await client.post(f"{path}/forward", headers=head)).status_code == 201


def routes(world: World, core: PreparatoryMeetings) -> list[tuple[str, dict[str, Any]]]:
    """Every list and document route, with each format and option it serves."""
    meeting = f"/api/v1/meetings/{world.meeting}"
    as_of = str(core.last_position() - 3)
    out: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/meetings", {}),
        (f"{meeting}/proposals", {}),
        (f"{meeting}/proposals", {"theme": "technology", "status": "submitted", "limit": 1}),
        (f"/api/v1/proposals/{world.submitted}/comments", {}),
        (f"/api/v1/proposals/{world.submitted}/comments", {"limit": 1}),
        (f"{meeting}/outcome/versions", {}),
        (f"{meeting}/outcome/changes", {"from": "v1"}),
        (f"{meeting}/outcome/changes", {"from": "v1", "to": "v1"}),
        (f"{meeting}/outcome/changes", {"from": as_of, "to": "v1", "format": "md"}),
        (f"{meeting}/outcome/changes", {"from": "v1", "format": "html"}),
        ("/api/v1/ministerials/berlin-2025/recommendations", {}),
        ("/api/v1/events", {}),
        ("/api/v1/events", {"since": 5, "limit": 3}),
    ]
    for fmt in DOCUMENT_FORMATS:
        out.append((f"{meeting}/recommendations", {"format": fmt}))
        out.append((f"{meeting}/recommendations", {"format": fmt, "as_of": as_of}))
        out.append((f"{meeting}/outcome/versions/1", {"format": fmt}))
        out.append(("/api/v1/ministerials/berlin-2025/recommendations", {"format": fmt}))
    return out


async def test_lists_and_documents_load_no_meeting_or_proposal(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await forward_the_open_meeting(client, world)
    table = routes(world, core)
    with recording(monkeypatch) as loads:
        for path, params in table:
            response = await client.get(path, params=params, headers=world.secretariat.auth)
            assert response.status_code == 200, f"{path} {params}: {response.text[:500]}"
            assert not refused(loads), f"{path} {params} loaded {refused(loads)}"
            loads.clear()


async def test_the_access_checks_of_lists_and_documents_use_the_views(
    client: httpx.AsyncClient,
    core: PreparatoryMeetings,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader is served, an outsider gets 404 (403 for the role-gated collections): all
    without loading a meeting or proposal, and with the status codes of the contract."""
    await forward_the_open_meeting(client, world)
    meeting = f"/api/v1/meetings/{world.meeting}"
    meeting_scoped = [
        (f"{meeting}/proposals", {}),
        (f"/api/v1/proposals/{world.submitted}/comments", {}),
        (f"/api/v1/proposals/{world.submitted}/comments", {"limit": 0}),
        (f"{meeting}/recommendations", {}),
        (f"{meeting}/outcome/versions", {}),
        (f"{meeting}/outcome/versions/1", {"format": "pdf"}),
        (f"{meeting}/outcome/changes", {"from": "v1"}),
    ]
    with recording(monkeypatch) as loads:
        for path, params in meeting_scoped:
            ok = await client.get(path, params=params, headers=world.observer.auth)
            assert ok.status_code == (422 if params.get("limit") == 0 else 200), path
            assert_problem(await client.get(path, params=params, headers=world.outsider.auth), 404)
        for path in ("/api/v1/ministerials/berlin-2025/recommendations", "/api/v1/events"):
            assert_problem(await client.get(path, headers=world.observer.auth), 403)
        not_a_meeting = f"/api/v1/meetings/{world.submitted}/outcome/versions"
        for path in (not_a_meeting, f"{not_a_meeting}/1", f"{meeting}/outcome/versions/2"):
            assert_problem(await client.get(path, headers=world.secretariat.auth), 404)
        assert_problem(
            await client.get(
                f"{meeting}/outcome/changes", params={"from": "v2"}, headers=world.observer.auth
            ),
            404,
        )
        assert not refused(loads), refused(loads)


async def test_a_comment_is_listed_right_after_it_is_written(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-your-writes for the comments list: without ``after``, and with it."""
    path = f"/api/v1/proposals/{world.submitted}/comments"
    for n in range(5):
        response = await client.post(path, json={"text": f"Note {n}"}, headers=world.chair.auth)
        assert response.status_code == 201
        written = response.json()
        with recording(monkeypatch) as loads:
            plain = await client.get(path, params={"limit": 200}, headers=world.observer.auth)
            after = await client.get(
                path, params={"after": written["position"]}, headers=world.observer.auth
            )
        assert not refused(loads), refused(loads)
        for listed in (plain, after):
            assert listed.status_code == 200
            assert listed.json()["items"][-1] == {
                k: written[k] for k in ("id", "author", "text", "at")
            }
