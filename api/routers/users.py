"""Users and their tokens, and the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from api.deps import App, CurrentUser, IdempotencyKey, NoBody, Services
from api.problems import responses
from api.responses import command, single
from api.routing import ThreadedRoute
from api.schemas import MeOut, TokenOut, UserCreate, UserCreated, UserOut

router = APIRouter(prefix="/api/v1", tags=["users"], route_class=ThreadedRoute)


@router.get("/me", response_model=MeOut, response_model_exclude_none=True, responses=responses(401))
async def me(user: CurrentUser, services: Services) -> dict[str, Any]:
    roles: list[dict[str, Any]] = []
    if user.secretariat:
        roles.append({"role": "secretariat"})
    if user.ministerial:
        roles.append({"role": "ministerial"})
    if services.views is not None:
        roles.extend(await services.read(services.views.roles_of, str(user.id)))
    return {"id": str(user.id), "name": user.name, "delegation": user.delegation, "roles": roles}


async def secretariat_only(user: CurrentUser, app: App, services: Services) -> None:
    """The role check, as a dependency so that it answers before the body is validated."""
    await services.read(app.require_secretariat, str(user.id), "create users")


@router.post(
    "/users",
    status_code=201,
    response_model=UserCreated,
    responses=responses(401, 403, 413, 422),
    dependencies=[Depends(secretariat_only)],
)
def create_user(
    body: UserCreate,
    user: CurrentUser,
    app: App,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.create_user(
        str(user.id),
        body.name,
        body.delegation,
        secretariat=body.secretariat,
        ministerial=body.ministerial,
        idempotency_key=idempotency_key,
    )
    out = command(response, result, f"/api/v1/users/{result.state['id']}")
    out["token"] = result.extra["token"]
    return out


@router.get("/users/{user_id}", response_model=UserOut, responses=responses(401, 403, 404))
def get_user(user_id: str, user: CurrentUser, app: App, response: Response) -> dict[str, Any]:
    app.require_secretariat(str(user.id), "read users")
    return single(response, app.get_user(user_id).as_dict())


def token_admin(action: str) -> Any:
    async def check(user: CurrentUser, app: App, services: Services) -> None:
        await services.read(app.require_secretariat, str(user.id), action)

    return Depends(check)


@router.post(
    "/users/{user_id}/tokens",
    status_code=201,
    response_model=TokenOut,
    responses=responses(401, 403, 404, 409, 413, 422),
    dependencies=[token_admin("issue tokens"), NoBody],
    description=(
        "Issue a new bearer token for the user; it is shown in this response only (the"
        " service keeps only its hash). A retry with the same `Idempotency-Key` issues no"
        " other token and cannot show the first one again: it answers 409 with a problem"
        " of type `urn:prepmeet:problem:rule-violation` and records nothing. A client that"
        " lost the token revokes the user's tokens and asks again with a new key."
    ),
)
def issue_token(
    user_id: str,
    user: CurrentUser,
    app: App,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    result = app.issue_token(str(user.id), user_id, idempotency_key=idempotency_key)
    response.headers["Location"] = f"/api/v1/users/{result.state['id']}"
    return {"token": result.extra["token"], "position": result.position}


@router.delete(
    "/users/{user_id}/tokens",
    status_code=204,
    responses=responses(401, 403, 404, 413, 422),
    dependencies=[token_admin("revoke tokens"), NoBody],
)
def revoke_tokens(user_id: str, user: CurrentUser, app: App, services: Services) -> Response:
    app.revoke_tokens(str(user.id), user_id)
    return Response(status_code=204)
