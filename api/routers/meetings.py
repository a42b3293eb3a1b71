"""Meetings: scheduling, participants, lifecycle, theme order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from api.deps import (
    After,
    App,
    CurrentUser,
    ExpectedVersion,
    IdempotencyKey,
    NoBody,
    Services,
    readable_meeting,
)
from api.pagination import Cursor, Limit
from api.problems import responses
from api.responses import command, single
from api.routing import ThreadedRoute
from api.schemas import (
    MeetingCommandOut,
    MeetingCreate,
    MeetingOut,
    OrderBody,
    Page,
    ParticipantCreate,
    ProposalOut,
    ProposalStatus,
    ReasonBody,
)
from domain.meeting import Meeting

router = APIRouter(prefix="/api/v1/meetings", tags=["meetings"], route_class=ThreadedRoute)

MeetingId = Annotated[str, Path(description="the meeting's id (a UUID)")]


async def secretariat_only(user: CurrentUser, app: App, services: Services) -> None:
    await services.read(app.require_secretariat, str(user.id), "schedule meetings")


def meeting_action(action: str) -> Any:
    async def check(
        meeting_id: MeetingId, user: CurrentUser, app: App, services: Services
    ) -> Meeting:
        return await services.read(app.check_meeting_action, str(user.id), meeting_id, action)

    return Depends(check)


def _chair_of(app: App, actor: str, meeting_id: str, theme: str) -> Meeting:
    meeting = app.get_meeting(actor, meeting_id)
    app.require_chair(actor, meeting, theme)
    return meeting


async def theme_chair(
    meeting_id: MeetingId, theme: str, user: CurrentUser, app: App, services: Services
) -> Meeting:
    return await services.read(_chair_of, app, str(user.id), meeting_id, theme)


@router.post(
    "",
    status_code=201,
    response_model=MeetingCommandOut,
    dependencies=[Depends(secretariat_only)],
    responses=responses(401, 403, 413, 422),
)
def schedule_meeting(
    body: MeetingCreate,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.schedule_meeting(
        str(user.id),
        body.title,
        body.venue,
        body.starts_on.isoformat(),
        body.ends_on.isoformat(),
        body.hosts,
        body.ministerial,
        [t.model_dump() for t in body.themes],
        idempotency_key=idempotency_key,
    )
    services.poke()
    return command(response, result, f"/api/v1/meetings/{result.state['id']}")


@router.get("/{meeting_id}", response_model=MeetingOut, responses=responses(401, 404))
async def get_meeting(
    meeting_id: MeetingId, user: CurrentUser, app: App, services: Services, response: Response
) -> dict[str, Any]:
    meeting = await services.read(app.get_meeting, str(user.id), meeting_id)
    return single(response, meeting.as_dict())


@router.post(
    "/{meeting_id}/participants",
    status_code=201,
    response_model=MeetingCommandOut,
    responses=responses(401, 403, 404, 409, 412, 413, 422),
    dependencies=[meeting_action("enrol participants")],
)
def enrol_participant(
    meeting_id: MeetingId,
    body: ParticipantCreate,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.enrol_participant(
        str(user.id),
        meeting_id,
        body.user_id,
        body.role,
        body.themes,
        expected,
        idempotency_key=idempotency_key,
    )
    services.poke()
    return command(response, result, f"/api/v1/meetings/{meeting_id}")


def _lifecycle(action: str, verb: str) -> Any:
    def route(
        meeting_id: MeetingId,
        user: CurrentUser,
        app: App,
        services: Services,
        response: Response,
        expected: ExpectedVersion,
    ) -> dict[str, Any]:
        result = getattr(app, f"{verb}_meeting")(str(user.id), meeting_id, expected)
        services.poke()
        return command(response, result)

    route.__name__ = f"{verb}_meeting"
    route.__doc__ = f"{action} the meeting (secretariat)."
    return route


for _verb, _action in (("open", "Open"), ("close", "Close")):
    router.add_api_route(
        f"/{{meeting_id}}/{_verb}",
        _lifecycle(_action, _verb),
        methods=["POST"],
        response_model=MeetingCommandOut,
        responses=responses(401, 403, 404, 409, 412, 413),
        name=f"{_verb}_meeting",
        dependencies=[meeting_action(f"{_verb} a meeting"), NoBody],
    )


@router.post(
    "/{meeting_id}/reopen",
    response_model=MeetingCommandOut,
    responses=responses(401, 403, 404, 409, 412, 413, 422),
    dependencies=[meeting_action("reopen a meeting")],
)
def reopen_meeting(
    meeting_id: MeetingId,
    body: ReasonBody,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
) -> dict[str, Any]:
    result = app.reopen_meeting(str(user.id), meeting_id, body.reason, expected)
    services.poke()
    return command(response, result)


@router.put(
    "/{meeting_id}/themes/{theme}/order",
    response_model=MeetingCommandOut,
    responses=responses(401, 403, 404, 409, 412, 413, 422),
    dependencies=[Depends(theme_chair)],
)
def order_theme(
    meeting_id: MeetingId,
    theme: str,
    body: OrderBody,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
) -> dict[str, Any]:
    result = app.order_theme(str(user.id), meeting_id, theme, body.proposal_ids, expected)
    services.poke()
    return command(response, result)


@router.get("", response_model=Page[MeetingOut], responses=responses(401, 422, 503))
async def list_meetings(
    user: CurrentUser,
    services: Services,
    limit: Limit = 50,
    cursor: Cursor = None,
    after: After = None,
) -> dict[str, Any]:
    await services.views_ready(after)
    items, next_cursor = await services.read(
        services.views.list_meetings,
        str(user.id),
        user.secretariat or user.ministerial,
        limit,
        cursor,
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/{meeting_id}/proposals",
    response_model=Page[ProposalOut],
    responses=responses(401, 404, 422, 503),
    tags=["proposals"],
)
async def list_proposals(
    meeting_id: MeetingId,
    user: CurrentUser,
    services: Services,
    theme: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[ProposalStatus | None, Query()] = None,
    proposer: Annotated[str | None, Query(max_length=64, description="a user id")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    after: After = None,
) -> dict[str, Any]:
    await services.views_ready(after)
    await services.read(readable_meeting, services, user, meeting_id)
    items, next_cursor = await services.read(
        services.views.list_proposals,
        meeting_id,
        theme=theme,
        status=status,
        proposer=proposer,
        limit=limit,
        cursor=cursor,
    )
    return {"items": items, "next_cursor": next_cursor}
