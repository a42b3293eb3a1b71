"""What changed in the recommendations between two compiled documents."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from difflib import SequenceMatcher
from typing import Any

from projections.documents.model import clean

# Markup characters, `&` (entities) and the `:` of `scheme:/` (GFM autolinks a bare URL).
MD_SPECIAL = re.compile(r"[\\`*_{}\[\]()#+\-.!<>|~&]|:(?=/)")


def _recommendations(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        rec["proposal_id"]: rec
        for theme in doc.get("themes", [])
        for rec in theme.get("recommendations", [])
    }


def _number_key(number: str) -> tuple[int, ...]:
    return tuple(int(part) for part in number.split("."))


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Added, removed, reworded and renumbered recommendations, each in number order."""
    old, new = _recommendations(before), _recommendations(after)
    added = [
        {"proposal_id": pid, "number": rec["number"], "title": rec["title"]}
        for pid, rec in new.items()
        if pid not in old
    ]
    removed = [
        {"proposal_id": pid, "number": rec["number"], "title": rec["title"]}
        for pid, rec in old.items()
        if pid not in new
    ]
    kept = [pid for pid in new if pid in old]
    reworded = [
        {
            "proposal_id": pid,
            "number": new[pid]["number"],
            "before": old[pid]["text"],
            "after": new[pid]["text"],
        }
        for pid in kept
        if old[pid]["text"] != new[pid]["text"]
    ]
    renumbered = [
        {"proposal_id": pid, "before": old[pid]["number"], "after": new[pid]["number"]}
        for pid in kept
        if old[pid]["number"] != new[pid]["number"]
    ]
    added.sort(key=lambda r: _number_key(r["number"]))
    removed.sort(key=lambda r: _number_key(r["number"]))
    reworded.sort(key=lambda r: _number_key(r["number"]))
    renumbered.sort(key=lambda r: _number_key(r["after"]))
    return {"added": added, "removed": removed, "reworded": reworded, "renumbered": renumbered}


def _words(text: str) -> list[str]:
    return re.findall(r"\S+|\s+", text)


def _md(text: str) -> str:
    return MD_SPECIAL.sub(r"\\\g<0>", clean(text))


def _inline(before: str, after: str, kind: str) -> str:
    """A word-level redline of one wording: deletions struck through, insertions marked."""
    a, b = _words(before), _words(after)
    out: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        if op == "equal" or not (old.strip() or new.strip()):
            out.append(html.escape(new) if kind == "html" else _md(new))
            continue
        # White space goes outside the marks: Markdown takes `** word**` for plain asterisks.
        # The white space shown is the new wording's (the old one's where nothing replaces it).
        spaced = new if new.strip() else old
        out.append(spaced[: len(spaced) - len(spaced.lstrip())])
        if old.strip():
            gone = old.strip()
            out.append(f"<del>{html.escape(gone)}</del>" if kind == "html" else f"~~{_md(gone)}~~")
        if new.strip():
            came = new.strip()
            out.append(f"<ins>{html.escape(came)}</ins>" if kind == "html" else f"**{_md(came)}**")
        out.append(spaced[len(spaced.rstrip()) :])
    return "".join(out)


def redline(
    diff: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any], kind: str
) -> bytes:
    """The changes as a Markdown or HTML redline (``kind`` is ``md`` or ``html``)."""
    esc: Callable[[str], str] = html.escape if kind == "html" else _md
    title = esc(str(after.get("meeting", {}).get("title", "")))
    heading = f"Changes from {esc(str(diff['from']))} to {esc(str(diff['to']))}"
    sections: list[tuple[str, list[str]]] = [
        (
            "Added",
            [f"{esc(r['number'])} {esc(r['title'])}" for r in diff["added"]],
        ),
        (
            "Removed",
            [f"{esc(r['number'])} {esc(r['title'])}" for r in diff["removed"]],
        ),
        (
            "Reworded",
            [
                f"{esc(r['number'])}: {_inline(r['before'], r['after'], kind)}"
                for r in diff["reworded"]
            ],
        ),
        (
            "Renumbered",
            [f"{esc(r['before'])} → {esc(r['after'])}" for r in diff["renumbered"]],
        ),
    ]
    if kind == "html":
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{heading}</title>",
            "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}"
            "del{color:#a00}ins{color:#060;text-decoration:underline}</style>",
            f"</head><body><h1>{title}</h1><h2>{heading}</h2>",
        ]
        for name, items in sections:
            parts.append(f"<h3>{name}</h3>")
            body = "".join(f'<li dir="auto">{item}</li>' for item in items)
            parts.append(f"<ul>{body}</ul>" if items else "<p>None.</p>")
        parts.append("</body></html>")
        return "\n".join(parts).encode()
    lines = [f"# {title}", "", f"## {heading}", ""]
    for name, items in sections:
        lines += [f"### {name}", ""]
        lines += [f"- {item}" for item in items] or ["None."]
        lines.append("")
    return "\n".join(lines).encode()
