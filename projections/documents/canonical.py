"""The canonical JSON form of a compiled document, its SHA-256 seal and the JSON download."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

UNSEALED_KEYS = ("sha256", "signature")


def _dumps(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed and signed: the document without `sha256` and `signature`."""
    return _dumps({key: value for key, value in doc.items() if key not in UNSEALED_KEYS})


def digest(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


def seal(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the document with `sha256` set to the hex SHA-256 of its canonical bytes."""
    return {**doc, "sha256": digest(doc)}


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    """The JSON download: the whole document, seal and signature included, in canonical form."""
    return _dumps(doc)
