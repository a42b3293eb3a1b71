"""CSV, one row per recommendation, safe to open in a spreadsheet (no formula injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from .model import Publication, publication

HEADER = (
    "theme_number", "theme", "number", "proposal_id", "title", "text", "proposer",
    "delegation", "endorsements", "approved_by", "approved_at", "merged_from",
)  # fmt: skip
MEETING_HEADER = ("meeting_id", "meeting")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A cell a spreadsheet shows as text: a formula-like start gets a leading apostrophe."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def write_csv(pub: Publication) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow((MEETING_HEADER if pub.compiled else ()) + HEADER)
    for part in pub.parts:
        meeting = (part.meeting_id, part.meeting_title) if pub.compiled else ()
        for theme in part.themes:
            for rec in theme.recommendations:
                row = (
                    *meeting, theme.number, theme.title, rec.number, rec.proposal_id, rec.title,
                    rec.text, rec.proposer, rec.delegation, "; ".join(rec.endorsements),
                    rec.approved_by, rec.approved_at, "; ".join(rec.merged_from),
                )  # fmt: skip
                writer.writerow([cell(value) for value in row])
    return buffer.getvalue().encode()


def render_csv(doc: Mapping[str, Any]) -> bytes:
    return write_csv(publication(doc))
