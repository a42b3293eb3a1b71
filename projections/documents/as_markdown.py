"""Markdown (CommonMark, GitHub-flavoured safe): user text can never become markup.

Every character that starts markup anywhere in a line is backslash-escaped; so are those that
start a block at the start of a line, and the `.` inside a word and the `:` before `/` that a
bare URL or e-mail address needs (GFM autolinks); leading white space (indented code) is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .model import ANNEX_TITLE, NO_RECOMMENDATIONS, Publication, publication

_ANYWHERE = re.compile(r"([\\`*_{}\[\]()<>#!|~&$]|\.(?=\S)|:(?=/))")
_LINE_START = re.compile(r"^([-+=])")
_ORDERED = re.compile(r"^(\d+)\.")
_NUMBER = re.compile(r"\d+(\.\d+)*")


def escape_line(line: str) -> str:
    line = _ANYWHERE.sub(r"\\\1", line.lstrip(" \t"))
    return _ORDERED.sub(r"\1\\.", _LINE_START.sub(r"\\\1", line))


def escape(text: str) -> str:
    """Escaped Markdown of cleaned text; lines kept as hard breaks, blank lines as paragraphs."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [escape_line(line) for line in block.split("\n")]
        paragraphs.append("  \n".join(line for line in lines if line))
    return "\n\n".join(p for p in paragraphs if p)


def _number(number: str) -> str:
    return number if _NUMBER.fullmatch(number) else escape_line(number)


def _facts(facts: tuple[tuple[str, str], ...]) -> str:
    return "\n".join(f"- **{label}:** {escape_line(value)}" for label, value in facts)


def write_markdown(pub: Publication) -> bytes:
    blocks = [f"# {escape_line(pub.title)}", f"*{escape_line(pub.subtitle)}*", _facts(pub.facts)]
    depth = "###" if pub.compiled else "##"
    for part in pub.parts:
        if part.heading:
            blocks += [f"## {escape_line(part.heading)}", _facts(part.facts)]
        for theme in part.themes:
            blocks.append(f"{depth} {_number(theme.number)}. {escape_line(theme.title)}")
            if not theme.recommendations:
                blocks.append(NO_RECOMMENDATIONS)
            for rec in theme.recommendations:
                blocks.append(f"{depth}# {_number(rec.number)} {escape_line(rec.title)}")
                blocks.append(escape(rec.text) or "—")
        blocks.append(f"{depth} {ANNEX_TITLE}")
        if not part.recommendations:
            blocks.append(NO_RECOMMENDATIONS)
        for rec in part.recommendations:
            blocks.append(f"**{_number(rec.number)}** {escape_line(rec.title)}")
            blocks.append("\n".join(f"- {k}: {escape_line(v)}" for k, v in rec.provenance))
    return ("\n\n".join(blocks) + "\n").encode()


def render_markdown(doc: Mapping[str, Any]) -> bytes:
    return write_markdown(publication(doc))
