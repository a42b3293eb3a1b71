"""Shared input rules of the domain: text limits, keys and dates."""

from __future__ import annotations

import re
from datetime import date

from domain.errors import InvalidInput

TITLE_MAX = 200
TEXT_MAX = 20_000
REASON_MAX = 5_000
NAME_MAX = 200
KEY_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


FORBIDDEN_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Unicode's control characters (category ``Cc``: U+0000-U+001F and U+007F-U+009F) but
tab, line feed and carriage return, as one character class: a search in C, where a test of
each character's category took a tenth of the time a proposal's command takes."""


def _has_forbidden_control(value: str) -> bool:
    return FORBIDDEN_CONTROL.search(value) is not None


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
