"""The composition root: builds the application, the read side and the signing key once."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import PersistenceError

from api.observability import Metrics
from api.settings import Settings
from domain.application import PreparatoryMeetings
from domain.store import StoreUnavailable, store_env

log = logging.getLogger("prepmeet")


def open_application(
    settings: Settings, *, create_tables: bool | None = None
) -> PreparatoryMeetings:
    """The application on the configured store; one clear line when the store is unusable."""
    create = settings.create_tables if create_tables is None else create_tables
    env = store_env(settings.data_dir, settings.database_url, create_table=create)
    try:
        return PreparatoryMeetings(env=env)
    except PersistenceError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = "PostgreSQL" if settings.database_url else "SQLite"
        raise StoreUnavailable(f"cannot use the {where} store: {first}") from None


class Container:
    """Everything one server process needs, built from its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = open_application(settings)
        self.views: Any = None
        self.projector: Any = None
        self.streams: dict[str, int] = {}
        self.metrics = Metrics()

    def start(self) -> None:
        if self.projector is not None:
            self.projector.start()

    def poke(self) -> None:
        if self.projector is not None:
            self.projector.poke()

    def close(self) -> None:
        if self.projector is not None:
            self.projector.stop()
        if self.views is not None:
            self.views.close()
        self.app.close()
