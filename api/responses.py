"""Helpers that shape command and object responses (ETag, Location, position)."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from domain.application import Result


def etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def single(response: Response, state: dict[str, Any]) -> dict[str, Any]:
    etag(response, int(state["version"]))
    return state


def command(response: Response, result: Result, location: str | None = None) -> dict[str, Any]:
    """The new state with its position; 201 and ``Location`` when the command created it."""
    body = dict(result.state)
    body["position"] = result.position
    etag(response, int(body["version"]))
    if location is not None:
        response.status_code = 201
        response.headers["Location"] = location
    return body
