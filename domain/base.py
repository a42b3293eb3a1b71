"""The base of every non-creating event of prepmeet's aggregates."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate


class Event(Aggregate.Event):
    """An aggregate event whose apply method sees the event's own time as ``modified_on``.

    The library sets ``modified_on`` after applying an event; setting it first lets an
    event method record when it happened (a decision's time, a comment's time).
    """

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is not None:
            aggregate.modified_on = self.timestamp
        return super().mutate(aggregate)
