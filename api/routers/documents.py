"""The compiled recommendations: live, as of a moment, as forwarded, and across a ministerial."""

from __future__ import annotations

import base64
import functools
import json
import re
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.container import Container
from api.deps import (
    After,
    App,
    CurrentUser,
    ExpectedVersion,
    IdempotencyKey,
    NoBody,
    Services,
    readable_download,
    readable_meeting,
)
from api.errors import HttpProblem
from api.pagination import Cursor, Limit, paginate
from api.problems import responses
from api.routing import ThreadedRoute
from api.schemas import ChangesOut, ForwardedOut, Page, SigningKeyOut, VersionRecord
from api.signing import public_info
from domain.errors import Forbidden, InvalidInput, NotFound
from projections.documents import FORMATS, seal
from projections.documents.formats import Format
from projections.outcome_changes import changes, redline

router = APIRouter(prefix="/api/v1", tags=["documents"], route_class=ThreadedRoute)

MeetingId = Annotated[str, Path(description="the meeting's id (a UUID)")]
FormatKey = Annotated[
    str | None,
    Query(
        alias="format",
        description="json, md, html, pdf, docx or csv (else chosen by Accept; JSON by default)",
    ),
]
AsOf = Annotated[
    str | None,
    Query(max_length=64, description="a position, or an RFC 3339 time with its offset"),
]
HEADER = {"schema": {"type": "string"}}
DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the document in the chosen format",
        "content": {f.media_type.split(";")[0]: {} for f in FORMATS.values()},
        "headers": {
            "ETag": {"description": "hex SHA-256 of the bytes sent", "schema": {"type": "string"}},
            "Repr-Digest": {
                "description": "sha-256 of the bytes sent",
                "schema": {"type": "string"},
            },
        },
    }
}
MEDIA = {f.media_type.split(";")[0]: f.key for f in FORMATS.values()}


def choose_format(fmt: str | None, accept: str | None, served: tuple[str, ...]) -> Format:
    """``?format=`` first, then the ``Accept`` header by quality; JSON when neither names one."""
    if fmt is not None:
        if fmt not in served:
            raise InvalidInput(f"format must be one of {', '.join(served)}", "format")
        return FORMATS[fmt]
    if not accept or not accept.strip():
        return FORMATS["json"]
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and media:
            ranked.append((-quality, i, media.lower()))
    for _, _, media in sorted(ranked):
        if media in ("*/*", "application/*"):
            return FORMATS["json"]
        key = MEDIA.get(media)
        if key in served:
            return FORMATS[key]
        if media == "text/*":
            return FORMATS["md"]
    raise HttpProblem(
        406,
        "no format this endpoint serves matches Accept; it serves "
        + ", ".join(FORMATS[k].media_type.split(";")[0] for k in served),
        kind="not-acceptable",
    )


@functools.lru_cache(maxsize=1024)
def slug(title: str, fallback: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_title.lower())
    out = ""
    for word in words:
        if len(out) + len(word) + 1 > 48:
            break
        out = f"{out}-{word}" if out else word
    return out or fallback


def download(
    request: Request,
    services: Container,
    body: bytes,
    fmt: Format,
    filename: str,
) -> Response:
    digest = services.renders.sha256(body)
    etag = f'"{digest.hex()}"'
    headers = {
        "ETag": etag,
        "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
        "Content-Disposition": f'attachment; filename="{filename}.{fmt.extension}"',
        "Cache-Control": "no-store",
    }
    match = request.headers.get("if-none-match")
    if match is not None:
        # RFC 9110 §13.1.2: weak comparison (a W/ prefix matches too), and * matches any
        tags = [m.strip().removeprefix("W/") for m in match.split(",")]
        if "*" in tags or etag in tags:
            return Response(status_code=304, headers=headers)
    return Response(body, media_type=fmt.media_type, headers=headers)


def render_key(doc: dict[str, Any], fmt: Format) -> tuple[Any, ...]:
    return (doc["meeting"]["id"], doc["position"], doc["sha256"], fmt.key)


def rendered(services: Container, doc: dict[str, Any], fmt: Format) -> bytes:
    return services.renders.get(render_key(doc, fmt), lambda: fmt.render(doc))


def parse_as_of(services: Container, app: App, as_of: str) -> int:
    text = as_of.strip()
    if text.isascii() and text.isdigit():
        position = int(text)
        if position > app.last_position():
            raise InvalidInput(f"as_of {position} is past the last position", "as_of")
        return position
    return services.views.position_at_time(text)


def document_at(
    services: Container, app: App, meeting_id: str, as_of: str | None
) -> dict[str, Any]:
    if as_of is None:
        return services.views.document(meeting_id)
    return services.views.document_as_of(app, meeting_id, parse_as_of(services, app, as_of))


@router.get(
    "/meetings/{meeting_id}/recommendations",
    response_class=Response,
    responses={**DOWNLOAD, **responses(401, 404, 406, 422, 503)},
)
async def recommendations(
    request: Request,
    meeting_id: MeetingId,
    user: CurrentUser,
    app: App,
    services: Services,
    fmt: FormatKey = None,
    as_of: AsOf = None,
    after: After = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The compiled recommendations, live or ``as_of`` a position or time."""
    await services.views_ready(after)
    title, position = await services.read(readable_download, services, user, meeting_id)
    chosen = choose_format(fmt, accept, tuple(FORMATS))
    doc = None
    if as_of is None:
        doc = services.views.document_at_position(meeting_id, position)
    if doc is None:  # compiling takes a while: in the thread pool
        doc = await run_in_threadpool(document_at, services, app, meeting_id, as_of)
    body = await services.renders.aget(
        render_key(doc, chosen), functools.partial(chosen.render, doc)
    )
    name = f"{slug(title, meeting_id[:8])}-recommendations-{doc['position']}"
    return download(request, services, body, chosen, name)


async def forwarder(meeting_id: MeetingId, user: CurrentUser, app: App, services: Services) -> None:
    await services.read(app.check_meeting_action, str(user.id), meeting_id, "forward a meeting")


@router.post(
    "/meetings/{meeting_id}/forward",
    status_code=201,
    response_model=ForwardedOut,
    responses=responses(401, 403, 404, 409, 412, 413, 422, 503),
    dependencies=[Depends(forwarder), NoBody],
)
def forward_meeting(
    meeting_id: MeetingId,
    user: CurrentUser,
    app: App,
    services: Services,
    response: Response,
    expected: ExpectedVersion,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Compile, seal and sign the outcome and record it as the meeting's next version.

    A retry with the same `Idempotency-Key` answers with the version it first recorded."""
    result = services.forward_meeting(
        str(user.id), meeting_id, expected, idempotency_key=idempotency_key
    )
    record = result.extra["record"]
    response.headers["Location"] = (
        f"/api/v1/meetings/{meeting_id}/outcome/versions/{record['version']}"
    )
    response.headers["ETag"] = f'"{result.state["version"]}"'
    return {**record, "position": result.position}


@router.get(
    "/meetings/{meeting_id}/outcome/versions",
    response_model=Page[VersionRecord],
    responses=responses(401, 404, 422, 503),
)
def outcome_versions(
    meeting_id: MeetingId,
    user: CurrentUser,
    services: Services,
    limit: Limit = 50,
    cursor: Cursor = None,
    after: After = None,
) -> dict[str, Any]:
    """The forwarded versions, oldest first (a list like every other: items, next_cursor)."""
    services.await_views(after)
    readable_meeting(services, user, meeting_id)
    return paginate(services.views.outcome_versions(meeting_id), limit, cursor)


def forwarded(services: Container, meeting_id: str, version: int) -> tuple[bytes, dict[str, Any]]:
    """A version's document as forwarded, from the views; read access is the caller's."""
    found = services.views.forwarded_document(meeting_id, version)
    if found is None:
        raise NotFound("outcome version", version)
    return found[0].encode(), json.loads(found[0])


@router.get(
    "/meetings/{meeting_id}/outcome/versions/{version}",
    response_class=Response,
    responses={**DOWNLOAD, **responses(401, 404, 406, 422, 503)},
)
def outcome_version(
    request: Request,
    meeting_id: MeetingId,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    user: CurrentUser,
    services: Services,
    fmt: FormatKey = None,
    after: After = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """A forwarded version, byte for byte as forwarded (JSON) or rendered from it."""
    services.await_views(after)
    meeting = readable_meeting(services, user, meeting_id)
    chosen = choose_format(fmt, accept, tuple(FORMATS))
    raw, doc = forwarded(services, meeting_id, version)
    body = raw if chosen.key == "json" else rendered(services, doc, chosen)
    name = f"{slug(meeting['title'], meeting_id[:8])}-recommendations-{doc['position']}"
    return download(request, services, body, chosen, name)


def resolve_side(services: Container, app: App, meeting_id: str, side: str) -> dict[str, Any]:
    text = side.strip()
    if text == "live":
        return services.views.document(meeting_id)
    if text[:1] in ("v", "V") and text[1:].isascii() and text[1:].isdigit():
        return forwarded(services, meeting_id, int(text[1:]))[1]
    if text.isascii() and text.isdigit():
        return document_at(services, app, meeting_id, text)
    raise InvalidInput(f"{side!r} is neither a version (v2), a position nor 'live'", "from")


@router.get(
    "/meetings/{meeting_id}/outcome/changes",
    response_model=ChangesOut,
    responses={
        200: {"content": {"application/json": {}, "text/markdown": {}, "text/html": {}}},
        **responses(401, 404, 406, 422, 503),
    },
)
def outcome_changes(
    meeting_id: MeetingId,
    user: CurrentUser,
    app: App,
    services: Services,
    from_: Annotated[str, Query(alias="from", max_length=32, description="v2, a position")],
    to: Annotated[str, Query(max_length=32, description="v3, a position, or live")] = "live",
    fmt: FormatKey = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    """Added, removed, reworded and renumbered recommendations between two versions."""
    services.await_views()
    readable_meeting(services, user, meeting_id)
    chosen = choose_format(fmt, accept, ("json", "md", "html"))
    before = resolve_side(services, app, meeting_id, from_)
    after = resolve_side(services, app, meeting_id, to)
    diff = {"from": from_, "to": to, **changes(before, after)}
    if chosen.key == "json":
        return diff
    return Response(redline(diff, before, after, chosen.key), media_type=chosen.media_type)


@router.get("/signing-key", response_model=SigningKeyOut)
def signing_key(services: Services) -> dict[str, str]:
    """The public key that signs forwarded outcomes."""
    return public_info(services.signing_key)


@router.get(
    "/ministerials/{ministerial}/recommendations",
    response_class=Response,
    responses={**DOWNLOAD, **responses(401, 403, 406, 422, 503)},
)
def ministerial_recommendations(
    request: Request,
    ministerial: Annotated[str, Path(max_length=64)],
    user: CurrentUser,
    services: Services,
    fmt: FormatKey = None,
    after: After = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The latest forwarded outcome of every meeting that feeds the ministerial, as forwarded."""
    if not (user.secretariat or user.ministerial):
        raise Forbidden("the ministerial compilation is for the ministerial team")
    services.await_views(after)
    chosen = choose_format(fmt, accept, tuple(FORMATS))
    meetings = [doc for _, doc in services.views.latest_forwarded(ministerial)]
    comp = seal({"ministerial": ministerial, "meetings": meetings})
    key = ("ministerial", ministerial, comp["sha256"], chosen.key)
    body = services.renders.get(key, lambda: chosen.render_ministerial(comp))
    name = f"{slug(ministerial, 'ministerial')}-recommendations-{comp['sha256'][:12]}"
    return download(request, services, body, chosen, name)
