"""Tamper evidence: a hash chain over every event of the log, in position order.

Each event's digest covers its position, aggregate, version, class and stored state; the
chain's head after position ``p`` is ``sha256(head(p-1) || digest(p))``. A forwarded
outcome records the head at its document position, so a later change to any event up to
there no longer matches what was forwarded.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Notification

GENESIS = "0" * 64
PAGE = 2000
SHORT = 16
"""Hex characters of an event digest kept beside each position in the views."""


def event_digest(position: int, originator_id: Any, version: int, topic: str, state: bytes) -> str:
    return hashlib.sha256(
        f"{position}|{originator_id}|{version}|{topic}|".encode() + state
    ).hexdigest()


def notification_digest(n: Notification) -> str:
    return event_digest(n.id, n.originator_id, n.originator_version, n.topic, n.state)


def chain_step(head: str, digest: str) -> str:
    return hashlib.sha256(bytes.fromhex(head) + bytes.fromhex(digest)).hexdigest()


def notifications(
    recorder: ApplicationRecorder, after: int = 0, stop: int | None = None
) -> Iterator[Notification]:
    start = after
    while True:
        page = recorder.select_notifications(start, PAGE, stop=stop, inclusive_of_start=False)
        if not page:
            return
        yield from page
        start = page[-1].id


class Chain:
    """The chain's head at any position, extended incrementally from the last one asked."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder
        self._position = 0
        self._head = GENESIS
        self._lock = threading.Lock()

    def head(self, position: int) -> str:
        with self._lock:
            if position < self._position:
                self._position, self._head = 0, GENESIS
            head = self._head
            last = self._position
            for n in notifications(self.recorder, self._position, position):
                head = chain_step(head, notification_digest(n))
                last = n.id
            self._position, self._head = max(last, position), head
            return head
