"""``prepmeet audit verify``: recompute the hash chain and compare it with what was recorded.

Two records are compared: the digest of every event kept beside its position in the views
when it was first projected, and the chain head that each forwarded outcome recorded at its
document position. The first event whose digest differs, or that is missing, is named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from domain.application import PreparatoryMeetings, event_type
from domain.audit import GENESIS, SHORT, chain_step, notification_digest, notifications
from domain.meeting import Meeting
from projections.views import ReadModel


@dataclass
class AuditReport:
    events: int = 0
    compared: int = 0
    checkpoints: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _recorded_digests(model: ReadModel) -> dict[int, str]:
    recorded: dict[int, str] = {}
    for positions, digests in model.fetch("SELECT positions, digests FROM pm_positions"):
        for i, position in enumerate(json.loads(positions)):
            piece = digests[i * SHORT : (i + 1) * SHORT]
            if piece:
                recorded[int(position)] = piece
    return recorded


def _checkpoints(app: PreparatoryMeetings) -> dict[int, list[tuple[str, int, str]]]:
    """Chain heads recorded by forwarded outcomes: position → [(meeting, version, head)]."""
    topic = f"{Meeting.OutcomeForwarded.__module__}:{Meeting.OutcomeForwarded.__qualname__}"
    found: dict[int, list[tuple[str, int, str]]] = {}
    start = 0
    while True:
        page = app.recorder.select_notifications(
            start, 500, topics=[topic], inclusive_of_start=False
        )
        if not page:
            return found
        for n in page:
            ev: Any = app.mapper.to_domain_event(n)
            if ev.chain_head:
                found.setdefault(int(ev.document_position), []).append(
                    (str(ev.originator_id), int(ev.version_number), ev.chain_head)
                )
        start = page[-1].id


def verify(app: PreparatoryMeetings, model: ReadModel) -> AuditReport:
    report = AuditReport()
    recorded = _recorded_digests(model)
    checkpoints = _checkpoints(app)
    head = GENESIS
    seen: set[int] = set()
    for n in notifications(app.recorder):
        report.events += 1
        seen.add(n.id)
        digest = notification_digest(n)
        expected = recorded.get(n.id)
        if expected is not None:
            report.compared += 1
            if expected != digest[:SHORT] and not report.problems:
                ev = app.mapper.to_domain_event(n)
                report.problems.append(
                    f"event at position {n.id} ({event_type(ev)}, aggregate {n.originator_id} "
                    f"version {n.originator_version}) no longer matches the digest recorded "
                    "when it was projected"
                )
        head = chain_step(head, digest)
        for meeting_id, version, recorded_head in checkpoints.get(n.id, []):
            report.checkpoints += 1
            if recorded_head != head:
                report.problems.append(
                    f"the log up to position {n.id} no longer hashes to the chain head that "
                    f"outcome version {version} of meeting {meeting_id} recorded"
                )
    missing = sorted(p for p in recorded if p not in seen)
    if missing:
        report.problems.insert(
            0, f"event at position {missing[0]} was projected but is missing from the log"
        )
    report.head = head
    return report
