"""Dependencies of the routes: the container, the current user, preconditions."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.container import Container
from domain.application import PreparatoryMeetings
from domain.errors import InvalidInput, NotFound, Unauthenticated
from domain.users import User

bearer = HTTPBearer(auto_error=False, description="a token issued by the secretariat")
ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')
NEVER = -1


# Dependencies are ``async def``: FastAPI runs a ``def`` dependency in its thread pool, and
# a hop to the pool costs more than they do. Those that read the store do it through
# ``Container.read``, on the event loop or in the pool according to the store.


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def get_app(
    container: Annotated[Container, Depends(get_container)],
) -> PreparatoryMeetings:
    return container.app


def authenticate(request: Request) -> User:
    """The user named by the request's bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer token is required")
    container: Container = request.app.state.container
    user = container.app.authenticate(token.strip())
    request.state.user_id = str(user.id)
    return user


async def current_user(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    container: Container = request.app.state.container
    return await container.read(authenticate, request)


async def no_body(request: Request) -> None:
    """Refuse a body on an action that takes none (an empty body, ``{}`` and ``null`` pass):
    its fields would be ignored, and the contract refuses unknown fields rather than ignore
    them. Listed after the route's access checks, so that 401, 404 and 403 answer first."""
    raw = await request.body()
    if not raw.strip():
        return
    try:
        given = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        raise InvalidInput("the body is not valid JSON", "body") from None
    if given is not None and given != {}:
        raise InvalidInput("this action takes no body", "body")


NoBody = Depends(no_body)


async def expected_version(
    if_match: Annotated[
        str | None,
        Header(description='the ETag of the version this change is based on, e.g. "3"'),
    ] = None,
) -> int | None:
    """The version named by ``If-Match``; one that can match no version when it is malformed."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = ETAG.match(if_match)
    return int(match.group(1)) if match else NEVER


App = Annotated[PreparatoryMeetings, Depends(get_app)]
CurrentUser = Annotated[User, Depends(current_user)]
ExpectedVersion = Annotated[int | None, Depends(expected_version)]
Services = Annotated[Container, Depends(get_container)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="a retry with the same key and body returns the first response",
    ),
]


After = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="wait (at most a few seconds) until the views reflect this position",
    ),
]


def readable_meeting(container: Container, user: User, meeting_id: str) -> dict[str, Any]:
    """The meeting as the views hold it, when the user may read it; else not found."""
    meeting = container.views.meeting(meeting_id)
    if meeting is None:
        raise NotFound("meeting", meeting_id)
    sees_all = user.secretariat or user.ministerial
    if not sees_all and not container.views.takes_part(meeting_id, str(user.id)):
        raise NotFound("meeting", meeting_id)
    return meeting


def readable_download(container: Container, user: User, meeting_id: str) -> tuple[str, int]:
    """The meeting's title and its live document's position, when the user may read the
    meeting (as :func:`readable_meeting` decides); else not found."""
    head = container.views.download_head(meeting_id, str(user.id))
    if head is None:
        raise NotFound("meeting", meeting_id)
    title, takes_part, position = head
    if not (user.secretariat or user.ministerial or takes_part):
        raise NotFound("meeting", meeting_id)
    return title, position


def readable_proposal(container: Container, user: User, proposal_id: str) -> dict[str, Any]:
    """The proposal as the views hold it, when the user may read its meeting; else not found."""
    try:
        key = str(UUID(proposal_id))
    except ValueError:
        raise NotFound("proposal", proposal_id) from None
    proposal = container.views.proposal(key)
    if proposal is None:
        raise NotFound("proposal", proposal_id)
    try:
        readable_meeting(container, user, proposal["meeting_id"])
    except NotFound:
        raise NotFound("proposal", proposal_id) from None
    return proposal
