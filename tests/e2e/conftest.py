"""Fixtures of the end-to-end tests: a seeded world per test, HTTP clients over the app.

The world (people, three meetings, proposals in every state) is seeded once per session
through the application's own commands into a template directory; each test gets its own
copy of that directory and its own app over it, so a test may change anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.container import Container
from api.main import create_app
from api.settings import Settings
from domain.application import SYSTEM, Forwarding, PreparatoryMeetings
from domain.meeting import Meeting

TECH = "technology"
SAFETY = "safety-security"
REGIONAL = "regional-cooperation"
THEMES = [
    {"key": TECH, "title": "Use of technology in peacekeeping"},
    {"key": SAFETY, "title": "Safety and security of peacekeepers"},
    {"key": REGIONAL, "title": "Cooperation between regional organizations and the UN"},
]
PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail"}
TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"]*", line \d+')
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
LIMIT = 256 * 1024


@dataclass(frozen=True)
class Person:
    id: str
    token: str
    name: str
    delegation: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class World:
    """Who and what the seeded store holds (ids and tokens)."""

    secretariat: Person
    ministerial: Person
    chair: Person  # chairs technology
    chair_other: Person  # chairs safety-security
    proposer: Person  # rapporteur of technology, proposer of the proposals below
    other_rapporteur: Person  # rapporteur of technology, another delegation
    rapporteur_other_theme: Person  # rapporteur of safety-security
    observer: Person
    outsider: Person  # takes no part in any meeting
    spare: Person  # takes no part either: someone to enrol, or whose tokens to change
    meeting: str  # open, with the proposals below
    scheduled: str  # scheduled, same cast enrolled
    forwarded: str  # forwarded, same cast enrolled
    draft: str  # by proposer
    submitted: str  # by proposer, with one comment by the chair
    target: str  # submitted, by other_rapporteur: something to merge into
    approved: str  # by proposer
    revision: str  # revision_requested, by proposer
    withdrawn: str  # by proposer
    safety: str  # submitted, safety-security, by rapporteur_other_theme
    comment: str  # the chair's comment on ``submitted``

    def person(self, handle: str) -> Person:
        person: Person = getattr(self, handle)
        return person


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """The service's settings over this directory (never a database from the environment)."""
    return Settings(data_dir=data_dir, database_url=None, **overrides)


def forwarding(core: PreparatoryMeetings) -> Callable[[Meeting], Forwarding]:
    """A stand-in for the outcome compiler (not part of the HTTP API yet)."""

    def compile_outcome(meeting: Meeting) -> Forwarding:
        position = core.last_position()
        document = json.dumps({"meeting": str(meeting.id), "position": position})
        digest = hashlib.sha256(document.encode()).hexdigest()
        return Forwarding(document, digest, position, signature="signed-for-e2e-tests")

    return compile_outcome


def seed(core: PreparatoryMeetings) -> World:
    def person(name: str, delegation: str, **roles: bool) -> Person:
        result = core.create_user(SYSTEM, name, delegation, **roles)
        return Person(str(result.state["id"]), result.extra["token"], name, delegation)

    cast = {
        "secretariat": person("Amina Qureshi", "UN DPO", secretariat=True),
        "ministerial": person("Jonas Becker", "Germany", ministerial=True),
        "chair": person("Ayesha Malik", "Norway"),
        "chair_other": person("Min-jun Park", "Uruguay"),
        "proposer": person("Rahul Banerjee", "Pakistan"),
        "other_rapporteur": person("Ji-woo Kim", "Republic of Korea"),
        "rapporteur_other_theme": person("Grace Mukamana", "Ghana"),
        "observer": person("Elena Rossi", "European Union"),
        "outsider": person("Pierre Martin", "France"),
        "spare": person("Siti Rahayu", "Indonesia"),
    }
    roles = [
        ("chair", "chair", [TECH]),
        ("chair_other", "chair", [SAFETY]),
        ("proposer", "rapporteur", [TECH]),
        ("other_rapporteur", "rapporteur", [TECH]),
        ("rapporteur_other_theme", "rapporteur", [SAFETY]),
        ("observer", "observer", []),
    ]

    def meeting(title: str) -> str:
        mid = str(
            core.schedule_meeting(
                SYSTEM,
                title,
                "CIPS, NUST, Islamabad",
                "2025-04-15",
                "2025-04-16",
                ["Pakistan", "Republic of Korea"],
                "berlin-2025",
                THEMES,
            ).state["id"]
        )
        for handle, role, themes in roles:
            core.enrol_participant(SYSTEM, mid, cast[handle].id, role, themes)
        return mid

    main = meeting("Third UN Peacekeeping Ministerial Preparatory Meeting")
    core.open_meeting(SYSTEM, main)
    proposer, chair = cast["proposer"].id, cast["chair"].id

    def draft(by: str = proposer, theme: str = TECH, submit: bool = False) -> str:
        text = "Equip every mission with a common situational-awareness platform."
        result = core.draft_proposal(by, main, theme, "Situational awareness", text, submit=submit)
        return str(result.state["id"])

    draft_id = draft()
    submitted = draft(submit=True)
    comment = core.comment_on_proposal(chair, submitted, "Which missions first?")
    target = draft(by=cast["other_rapporteur"].id, submit=True)
    approved = draft(submit=True)
    core.approve_proposal(chair, approved)
    revision = draft(submit=True)
    core.request_revision(chair, revision, "Say which missions")
    withdrawn = draft()
    core.withdraw_proposal(proposer, withdrawn, "Folded into another")
    safety = draft(by=cast["rapporteur_other_theme"].id, theme=SAFETY, submit=True)

    scheduled = meeting("Fourth preparatory meeting")
    forwarded = meeting("Second preparatory meeting")
    core.open_meeting(SYSTEM, forwarded)
    core.close_meeting(SYSTEM, forwarded)
    core.forward_meeting(SYSTEM, forwarded, forwarding(core))
    return World(
        **cast,
        meeting=main,
        scheduled=scheduled,
        forwarded=forwarded,
        draft=draft_id,
        submitted=submitted,
        target=target,
        approved=approved,
        revision=revision,
        withdrawn=withdrawn,
        safety=safety,
        comment=str(comment.extra["comment_id"]),
    )


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    directory = tmp_path_factory.mktemp("world")
    container = Container(settings_for(directory))
    try:
        world = seed(container.app)
        container.start()
        container.await_views()  # copies start with views that are up to date
    finally:
        container.close()
    return directory, world


def copy_world(template: tuple[Path, World], directory: Path) -> World:
    source, world = template
    shutil.copytree(source, directory)
    return world


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "readonly: the test changes nothing (it asserts so), so it runs on the world that "
        "its module shares rather than on a fresh copy",
    )


# Building an app is cheap, but FastAPI sets up every route of it on its first request
# (~0.3 s). So each module builds one app, ``shared_app``, whose container holds the
# module's shared world (for ``readonly`` tests), and every other test puts a container of
# its own (store, views, projector: what create_app builds) over a fresh copy of the world
# behind that app for its duration (``behind``). The shared app has no rate limits:
# hundreds of requests from one address and token within seconds are the suite, not an
# attack (the limits, and the metrics, which count into the first container, are tested on
# apps of their own).


@pytest.fixture(scope="module")
def shared_world(
    world_template: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, World]:
    directory = tmp_path_factory.mktemp("shared") / "data"
    return directory, copy_world(world_template, directory)


@pytest.fixture(scope="module")
def shared_app(shared_world: tuple[Path, World]) -> Iterator[FastAPI]:
    settings = settings_for(shared_world[0], rate_limit_per_address=0, rate_limit_per_token=0)
    application = create_app(settings)
    try:
        yield application
    finally:
        application.state.container.close()


@contextlib.contextmanager
def behind(app: FastAPI, data_dir: Path) -> Iterator[Container]:
    """A container of its own over ``data_dir``, serving the app's requests for a while."""
    shared = app.state.container
    container = Container(settings_for(data_dir))
    container.start()
    app.state.container = container
    try:
        yield container
    finally:
        app.state.container = shared
        container.close()


def readonly(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("readonly") is not None


@pytest.fixture
def world(
    request: pytest.FixtureRequest, world_template: tuple[Path, World], data_dir: Path
) -> World:
    if readonly(request):
        shared: tuple[Path, World] = request.getfixturevalue("shared_world")
        return shared[1]
    return copy_world(world_template, data_dir)


@pytest.fixture
def app(
    request: pytest.FixtureRequest, shared_app: FastAPI, world: World, data_dir: Path
) -> Iterator[FastAPI]:
    if readonly(request):
        yield shared_app
        return
    with behind(shared_app, data_dir):
        yield shared_app


@pytest.fixture
def core(app: FastAPI) -> PreparatoryMeetings:
    application: PreparatoryMeetings = app.state.container.app
    return application


@pytest.fixture(autouse=True)
def readonly_means_nothing_recorded(request: pytest.FixtureRequest) -> Iterator[None]:
    if not readonly(request):
        yield
        return
    core: PreparatoryMeetings = request.getfixturevalue("core")
    before = core.last_position()
    yield
    assert core.last_position() == before, "a readonly test recorded events in the shared world"


# --- clients ----------------------------------------------------------------------------


def assert_no_traceback(response: httpx.Response) -> None:
    text = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    assert not TRACEBACK.search(text), f"traceback in {response.request.url}: {text[:2000]}"


async def no_traceback(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    await response.aread()
    assert_no_traceback(response)


async def no_server_error(response: httpx.Response) -> None:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    await response.aread()
    assert response.status_code < 500 or response.status_code == 503, (
        f"{response.request.method} {response.request.url} answered "
        f"{response.status_code}: {response.text[:2000]}"
    )


Hook = Callable[[httpx.Response], Awaitable[None]]
CHECKS: list[Hook] = [no_traceback, no_server_error]


def client_for(app: FastAPI, hooks: list[Hook] | None = None) -> httpx.AsyncClient:
    """A client over the app in process; every response is checked for tracebacks and 500s."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, raise_app_exceptions=False),
        base_url="http://test",
        event_hooks={"response": list(CHECKS if hooks is None else hooks)},
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server on a free loopback port, in a thread.

    The socket listens before the server starts, so the first request simply waits in the
    backlog: there is nothing to poll for.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{port}"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"


def live_client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=10, event_hooks={"response": list(CHECKS)})


# --- assertions -------------------------------------------------------------------------


def assert_problem(
    response: httpx.Response, status: int, kind: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with this status (and ``urn:prepmeet:problem:<kind>`` type)."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:1000]}"
    )
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key].strip(), body
    if kind is not None:
        assert body["type"] == f"urn:prepmeet:problem:{kind}", body
    if status == 401:
        assert response.headers.get("www-authenticate") == "Bearer"
    assert_no_traceback(response)
    return body


def assert_command(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """A command's answer: the new state, its ``position``, and its version as ``ETag``."""
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:1000]}"
    )
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body["position"], int) and body["position"] > 0, body
    assert response.headers["etag"] == f'"{body["version"]}"'
    return body


def assert_created(response: httpx.Response, location: str) -> dict[str, Any]:
    body = assert_command(response, 201)
    assert response.headers["location"] == location
    return body


def assert_single(response: httpx.Response) -> dict[str, Any]:
    """A read of one object: 200 and its version as ``ETag``."""
    assert response.status_code == 200, response.text[:1000]
    body: dict[str, Any] = response.json()
    assert response.headers["etag"] == f'"{body["version"]}"'
    return body


async def wait_for(awaitable: Awaitable[Any], seconds: float = 10.0) -> Any:
    """Await with a bound: a test that would hang fails instead."""
    return await asyncio.wait_for(awaitable, seconds)


@contextlib.contextmanager
def captured_log(
    logger: logging.Logger, record_filter: Callable[[logging.LogRecord], bool] | None = None
) -> Iterator[io.StringIO]:
    """The records of ``logger`` (and its children), formatted as the server formats them:
    one JSON object a line."""
    from api.observability import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    if record_filter is not None:
        handler.addFilter(record_filter)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
