"""Cursor pagination helpers: opaque cursors and the ``limit`` range."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import Query

from domain.errors import InvalidInput

LIMIT_MAX = 200

Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX, description="page size, 1 to 200")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="the next_cursor of the previous page")
]


def check_limit(limit: int) -> None:
    if not 1 <= limit <= LIMIT_MAX:
        raise InvalidInput(f"limit must be between 1 and {LIMIT_MAX}", "limit")


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this service gave", "cursor") from None
    if kind != "o" or offset < 0:
        raise InvalidInput("cursor is not one this service gave", "cursor")
    return offset


def paginate(items: list[dict[str, Any]], limit: int, cursor: str | None) -> dict[str, Any]:
    """A page of an in-memory list; the cursor holds the offset of the next item."""
    check_limit(limit)
    start = decode_offset(cursor)
    page = items[start : start + limit]
    nxt = start + limit
    return {"items": page, "next_cursor": encode_offset(nxt) if nxt < len(items) else None}
