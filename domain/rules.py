"""Shared input rules of the domain: text limits, keys and dates."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from domain.errors import InvalidInput

TITLE_MAX = 200
TEXT_MAX = 20_000
REASON_MAX = 5_000
NAME_MAX = 200
KEY_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def _has_forbidden_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in value)


def text(value: object, field: str, limit: int, *, required: bool = True) -> str:
    """A user-written text: a string within ``limit`` characters, not blank when required."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field)
    if required and not value.strip():
        raise InvalidInput(f"{field} must not be empty or blank", field)
    if _has_forbidden_control(value):
        raise InvalidInput(f"{field} contains control characters", field)
    return value


def optional_text(value: object, field: str, limit: int) -> str | None:
    if value is None:
        return None
    return text(value, field, limit, required=False)


def reason(value: object, field: str = "reason") -> str:
    return text(value, field, REASON_MAX)


def key(value: object, field: str) -> str:
    if not isinstance(value, str) or not KEY_PATTERN.match(value):
        raise InvalidInput(
            f"{field} must be lower-case letters, digits and inner hyphens (1-64)", field
        )
    return value


def iso_date(value: object, field: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise InvalidInput(f"{field} must be a date (YYYY-MM-DD)", field)
