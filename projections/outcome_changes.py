"""What changed in the recommendations between two compiled documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
