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
    on every path but those that end with ``unbounded``. Any route can fail with a 500
    problem (never a traceback) when something unforeseen breaks.
    """
    described = {
        code: {"description": entry["description"], "content": entry["content"]}
        for code, entry in responses(406, 422, 429, 500, 503).items()
    }
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            found = operation.get("responses", {}).get("422")
            if found is not None and "HTTPValidationError" in str(found):
                operation["responses"]["422"] = described[422]
            answers = operation.setdefault("responses", {})
            if path not in rate_limit_exempt:
                answers.setdefault("429", described[429])
            answers.setdefault("406", described[406])
            answers.setdefault("500", described[500])
            if not (unbounded and path.endswith(unbounded)):
                answers.setdefault("503", described[503])
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema())
    if "HTTPValidationError" not in str(schema.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema
