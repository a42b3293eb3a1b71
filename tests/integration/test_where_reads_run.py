"""Where the routes' reads run: on the event loop over a SQLite file, in the thread pool over
PostgreSQL; and waiting for the views never holds up the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from api.container import Container
from api.errors import HttpProblem
from api.settings import Settings
from domain.application import SYSTEM


def settings(data_dir: Path, url: str | None) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, embedded_projector=False)


async def thread_of_read(container: Container) -> threading.Thread:
    def read() -> threading.Thread:
        container.app.last_position()
        return threading.current_thread()

    return await container.read(read)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_reads_run_where_the_store_wants_them(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if kind == "postgres" else None
    container = Container(settings(tmp_path, url))
    try:

        async def check() -> tuple[threading.Thread, threading.Thread]:
            return threading.current_thread(), await thread_of_read(container)

        loop_thread, read_thread = asyncio.run(check())
        assert container.inline_reads is (kind == "sqlite")
        assert (read_thread is loop_thread) is (kind == "sqlite")
    finally:
        container.close()


def test_views_behind_are_awaited_off_the_loop(tmp_path: Path) -> None:
    """With the projector stopped, the views lag: the wait runs in the pool, and the event
    loop goes on serving other work until it ends in the 503 of a lagging read."""
    container = Container(settings(tmp_path, None).model_copy(update={"read_wait_timeout": 0.5}))
    try:
        container.app.create_user(SYSTEM, "Amina Qureshi", "UN DPO", secretariat=True)
        assert not container.views.reflects(container.app.last_position())

        async def check() -> tuple[int, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            ticker = asyncio.create_task(tick())
            with pytest.raises(HttpProblem) as refused:
                await container.views_ready()
            ticker.cancel()
            return ticks, refused.value.status

        ticks, status = asyncio.run(check())
        assert status == 503
        assert ticks >= 10  # the loop ran the ticker about 50 times during the 0.5 s wait
    finally:
        container.close()
