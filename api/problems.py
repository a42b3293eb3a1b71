"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:prepmeet:problem:{kind}" if kind else "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of the problem responses a route can give."""
    return {
        code: {
            "model": Problem,
            "description": TITLES.get(code, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


def document_problems(
    schema: dict[str, Any], rate_limit_exempt: Collection[str] = (), unbounded: str = ""
) -> dict[str, Any]:
    """Complete the problem responses that FastAPI cannot know about.

    FastAPI documents a 422 of its own shape on every route with parameters that does not
    list 422 itself; this service answers every 422 with a problem detail. The rate
    limit answers 429 on every path but ``rate_limit_exempt``, and the request timeout 503
    on every path but those that end with ``unbounded``.
    """
    described = responses(406, 422, 429, 503)
    problem_406 = {
        "description": described[406]["description"],
        "content": described[406]["content"],
    }
    problem_422 = {
        "description": described[422]["description"],
        "content": described[422]["content"],
    }
    problem_429 = {
        "description": described[429]["description"],
        "content": described[429]["content"],
    }
    problem_503 = {
        "description": described[503]["description"],
        "content": described[503]["content"],
    }
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            found = operation.get("responses", {}).get("422")
            if found is not None and "HTTPValidationError" in str(found):
                operation["responses"]["422"] = problem_422
            if path not in rate_limit_exempt:
                operation.setdefault("responses", {}).setdefault("429", problem_429)
            operation.setdefault("responses", {}).setdefault("406", problem_406)
            if not (unbounded and path.endswith(unbounded)):
                operation["responses"].setdefault("503", problem_503)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema())
    if "HTTPValidationError" not in str(schema.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema
