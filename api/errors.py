"""The one mapping from errors to HTTP problem responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.observability import flat_routes
from api.problems import problem
from domain.errors import (
    DomainError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidTransition,
    NotFound,
    RuleViolation,
    Unauthenticated,
    VersionConflict,
)
from domain.store import StoreUnavailable

log = logging.getLogger("prepmeet.errors")


class HttpProblem(Exception):
    """A refusal decided at the HTTP edge (406, 413, 429, 503 ...)."""

    def __init__(
        self, status: int, detail: str, headers: dict[str, str] | None = None, kind: str = ""
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.kind = kind or None


DOMAIN_STATUS: list[tuple[type[DomainError], int, str]] = [
    (Unauthenticated, 401, "unauthenticated"),
    (NotFound, 404, "not-found"),
    (Forbidden, 403, "forbidden"),
    (IdempotencyKeyReused, 422, "idempotency-key-reused"),
    (InvalidInput, 422, "invalid-input"),
    (InvalidTransition, 409, "invalid-transition"),
    (RuleViolation, 409, "rule-violation"),
]


def domain_problem(request: Request, exc: DomainError) -> JSONResponse:
    if isinstance(exc, VersionConflict):
        if exc.expected is None:
            return problem(409, exc.detail, title="Concurrent change", kind="concurrent-change")
        return problem(412, exc.detail, title="Precondition failed", kind="version-mismatch")
    for cls, status, kind in DOMAIN_STATUS:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            headers = None
            if isinstance(exc, InvalidTransition):
                extra = {"state": exc.state, "action": exc.action}
            if isinstance(exc, InvalidInput) and exc.field:
                extra = {"errors": [{"field": exc.field, "message": exc.detail}]}
            if status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            return problem(status, exc.detail, title=exc.title, kind=kind, headers=headers, **extra)
    return problem(409, exc.detail, title=exc.title, kind="conflict")


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _refused_authentication(request: Request) -> JSONResponse | None:
    """The 401 that must answer before a refusal of the body, when the request has one."""
    if request.url.path.startswith("/api/") and not hasattr(request.state, "user_id"):
        from api.deps import authenticate

        try:
            authenticate(request)
        except DomainError as refused:
            return domain_problem(request, refused)
    return None


def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    refused = _refused_authentication(request)
    if refused is not None:
        return refused
    errors = [
        {"field": _location(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem(422, "the body is not valid JSON", kind="malformed-json", errors=errors)
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(422, summary or "invalid request", kind="invalid-request", errors=errors)


BODY_PARSE_ERROR = "There was an error parsing the body"


def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and detail == BODY_PARSE_ERROR:
        # FastAPI's answer to a JSON body that is not even text (invalid UTF-8): the contract
        # answers every body that is not valid JSON with a 422, after authentication
        refused = _refused_authentication(request)
        if refused is not None:
            return refused
        return problem(422, "the body is not valid JSON", kind="malformed-json")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return problem(exc.status_code, detail, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method of every route of this path (the router names only the first route's)."""
    methods: set[str] = set()
    for route in flat_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def unexpected_problem(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreUnavailable):
        return problem(503, str(exc), headers={"Retry-After": "5"}, kind="store-unavailable")
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "the server could not complete the request", kind="internal")


def edge_problem(request: Request, exc: HttpProblem) -> JSONResponse:
    return problem(exc.status, exc.detail, headers=exc.headers, kind=exc.kind)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(HttpProblem, edge_problem)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_problem)
