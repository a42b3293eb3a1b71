"""Proposals: drafting, revision, decisions, comments, endorsements and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from api.deps import (
    After,
    App,
    CurrentUser,
    ExpectedVersion,
    IdempotencyKey,
    NoBody,
    Services,
    readable_proposal,
)
from api.pagination import Cursor, Limit, paginate
from api.problems import responses
from api.responses import command, single
from api.routing import ThreadedRoute
from api.schemas import (
    ApproveBody,
    CommentCreate,
    CommentCreated,
    CommentOut,
    EndorsementCreate,
    HistoryItem,
    MergeBody,
    Page,
    ProposalCommandOut,
    ProposalCreate,
    ProposalOut,
    ProposalPatch,
    ReasonBody,
    WithdrawBody,
)
from domain.application import DraftAccess, ProposalAccess

router = APIRouter(prefix="/api/v1", tags=["proposals"], route_class=ThreadedRoute)

ProposalId = Annotated[str, Path(description="the proposal's id (a UUID)")]
CHANGE = responses(401, 403, 404, 409, 412, 413, 422)


def proposal_action(action: str) -> Any:
    """Access to ``action`` on the proposal, checked before the body (404 and 403 before
    422); the route hands it to the command. A route with other checks that must come
    after it lists it first among its dependencies too (the same call, made once)."""

    async def check(
        proposal_id: ProposalId, user: CurrentUser, app: App, services: Services
    ) -> ProposalAccess:
        return await services.read(app.check_proposal, str(user.id), proposal_id, action)

    return Depends(check)


SUBMIT = proposal_action("submit")


async def proposal_reader(
    proposal_id: ProposalId, user: CurrentUser, app: App, services: Services
) -> None:
    """Read access, as a dependency so that it answers before the query is validated."""
    await services.read(app.get_proposal, str(user.id), proposal_id)


async def proposal_view_reader(
    proposal_id: ProposalId, user: CurrentUser, services: Services
) -> dict[str, Any]:
    """Read access from the views (caught up with every write so far), before the query."""
    await services.views_ready()
    return await services.read(readable_proposal, services, user, proposal_id)


async def meeting_rapporteur(
    meeting_id: str, user: CurrentUser, app: App, services: Services
) -> DraftAccess:
    """Access to draft in the meeting, checked before the body (404 and 403 before 422)."""
    return await services.read(app.check_draft, str(user.id), meeting_id)


@router.post(
    "/meetings/{meeting_id}/proposals",
    status_code=201,
    response_model=ProposalCommandOut,
    responses=CHANGE,
)
def draft_proposal(
    meeting_id: str,
    access: Annotated[DraftAccess, Depends(meeting_rapporteur)],
    body: ProposalCreate,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.draft_proposal(
        str(user.id),
        meeting_id,
        body.theme,
        body.title,
        body.text,
        rationale=body.rationale,
        submit=body.submit,
        idempotency_key=idempotency_key,
        access=access,
    )
    services.poke()
    return command(response, result, f"/api/v1/proposals/{result.state['id']}")


def _proposal_state(app: App, actor: str, proposal_id: str) -> dict[str, Any]:
    proposal, _ = app.get_proposal(actor, proposal_id)
    return app.proposal_state(proposal)


@router.get("/proposals/{proposal_id}", response_model=ProposalOut, responses=responses(401, 404))
async def get_proposal(
    proposal_id: ProposalId, user: CurrentUser, app: App, services: Services, response: Response
) -> dict[str, Any]:
    return single(response, await services.read(_proposal_state, app, str(user.id), proposal_id))


@router.patch(
    "/proposals/{proposal_id}",
    response_model=ProposalCommandOut,
    responses=CHANGE,
)
def revise_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, proposal_action("revise")],
    body: ProposalPatch,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
) -> dict[str, Any]:
    result = app.revise_proposal(
        str(user.id),
        proposal_id,
        title=body.title,
        text=body.text,
        rationale=body.rationale,
        expected_version=expected,
        access=access,
    )
    services.poke()
    return command(response, result)


@router.post(
    "/proposals/{proposal_id}/submit",
    response_model=ProposalCommandOut,
    responses=responses(401, 403, 404, 409, 412, 413),
    dependencies=[SUBMIT, NoBody],
)
def submit_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, SUBMIT],
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
) -> dict[str, Any]:
    result = app.submit_proposal(str(user.id), proposal_id, expected, access=access)
    services.poke()
    return command(response, result)


@router.post(
    "/proposals/{proposal_id}/withdraw",
    response_model=ProposalCommandOut,
    responses=CHANGE,
)
def withdraw_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, proposal_action("withdraw")],
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
    body: WithdrawBody | None = None,
) -> dict[str, Any]:
    reason = body.reason if body is not None else None
    result = app.withdraw_proposal(str(user.id), proposal_id, reason, expected, access=access)
    services.poke()
    return command(response, result)


@router.post(
    "/proposals/{proposal_id}/approve",
    response_model=ProposalCommandOut,
    responses=CHANGE,
)
def approve_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, proposal_action("approve")],
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
    body: ApproveBody | None = None,
) -> dict[str, Any]:
    body = body or ApproveBody()
    result = app.approve_proposal(
        str(user.id), proposal_id, body.final_text, body.note, expected, access=access
    )
    services.poke()
    return command(response, result)


def _decision(method: str, access_check: Any) -> Any:
    def route(
        proposal_id: ProposalId,
        access: ProposalAccess,
        body: ReasonBody,
        user: CurrentUser,
        app: App,
        services: Services,
        response: Response,
        expected: ExpectedVersion,
    ) -> dict[str, Any]:
        result = getattr(app, method)(
            str(user.id), proposal_id, body.reason, expected, access=access
        )
        services.poke()
        return command(response, result)

    route.__name__ = method
    # the check of this route's action, as an object: the module's annotations are text,
    # read in the module's namespace, where this function's argument is not
    route.__annotations__["access"] = Annotated[ProposalAccess, access_check]
    return route


for _path, _action, _method in (
    ("reject", "reject", "reject_proposal"),
    ("request-revision", "request_revision", "request_revision"),
    ("reconsider", "reconsider", "reconsider_proposal"),
):
    router.add_api_route(
        f"/proposals/{{proposal_id}}/{_path}",
        _decision(_method, proposal_action(_action)),
        methods=["POST"],
        response_model=ProposalCommandOut,
        responses=CHANGE,
        name=_method,
    )


@router.post(
    "/proposals/{proposal_id}/merge",
    response_model=ProposalCommandOut,
    responses=CHANGE,
)
def merge_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, proposal_action("merge")],
    body: MergeBody,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
) -> dict[str, Any]:
    result = app.merge_proposal(
        str(user.id), proposal_id, body.into, body.reason, expected, access=access
    )
    services.poke()
    return command(response, result)


@router.post(
    "/proposals/{proposal_id}/comments",
    status_code=201,
    response_model=CommentCreated,
    responses=responses(401, 403, 404, 409, 413, 422),
)
def comment_on_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, proposal_action("comment")],
    body: CommentCreate,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.comment_on_proposal(
        str(user.id), proposal_id, body.text, idempotency_key=idempotency_key, access=access
    )
    services.poke()
    comment = result.extra["comment"]
    response.headers["Location"] = f"/api/v1/proposals/{proposal_id}/comments"
    response.headers["ETag"] = f'"{result.state["version"]}"'
    return {**comment, "position": result.position}


@router.get(
    "/proposals/{proposal_id}/comments",
    response_model=Page[CommentOut],
    responses=responses(401, 404, 422, 503),
)
async def list_comments(
    proposal: Annotated[dict[str, Any], Depends(proposal_view_reader)],
    services: Services,
    limit: Limit = 50,
    cursor: Cursor = None,
    after: After = None,
) -> dict[str, Any]:
    """The proposal's comments, oldest first, from the views."""
    if after is not None:
        await services.views_ready(after)
    items, next_cursor = await services.read(services.views.comments, proposal["id"], limit, cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/proposals/{proposal_id}/endorsements",
    status_code=201,
    response_model=ProposalCommandOut,
    responses=responses(401, 403, 404, 409, 413, 422),
)
def endorse_proposal(
    proposal_id: ProposalId,
    access: Annotated[ProposalAccess, proposal_action("endorse")],
    body: EndorsementCreate,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.endorse_proposal(
        str(user.id), proposal_id, body.delegation, idempotency_key=idempotency_key, access=access
    )
    services.poke()
    return command(response, result, f"/api/v1/proposals/{proposal_id}")


@router.get(
    "/proposals/{proposal_id}/history",
    response_model=Page[HistoryItem],
    responses=responses(401, 404, 422),
    dependencies=[Depends(proposal_reader)],
)
def proposal_history(
    proposal_id: ProposalId, user: CurrentUser, app: App, limit: Limit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    events = app.history(str(user.id), proposal_id)
    for item in events:
        item.pop("aggregate_id", None)
    return paginate(events, limit, cursor)
