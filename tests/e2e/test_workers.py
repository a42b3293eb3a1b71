"""``prepmeet serve --workers N``: connections spread over the workers, whatever happens to one.

Which process holds a connection is read from ``/proc``: the server side of each
established connection to the port, by socket inode, in the file descriptors of each
worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.supervisor import balances_connections
from tests.e2e.test_server import TIMEOUT, free_port, spawn_serve, terminate

pytestmark = pytest.mark.skipif(
    not balances_connections(), reason="the kernel spreads connections on Linux only"
)

CONNECTIONS = 32
ESTABLISHED = "01"
LISTEN = "0A"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the sockets of local port ``port`` in ``state`` (the server's side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == state:
                    inodes.add(fields[9])
    return inodes


def held_by(pid: int, inodes: set[str]) -> set[str]:
    """Which of the socket ``inodes`` process ``pid`` has open."""
    held = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held.add(target[8:-1])
    return held


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    inodes = sockets_on(port, ESTABLISHED)
    return {pid: len(held_by(pid, inodes)) for pid in pids}


def assert_a_listening_socket_per_worker(workers: list[int], port: int) -> None:
    listening = sockets_on(port, LISTEN)
    assert len(listening) == len(workers), "one listening socket for each worker"
    mine = [held_by(pid, listening) for pid in workers]
    assert all(len(held) == 1 for held in mine), mine
    assert set().union(*mine) == listening, "every socket is served, each by one worker"


def workers_of(supervisor: int) -> list[int]:
    """The API processes: children of the supervisor that are not the projector."""
    pids = []
    for pid in children(supervisor):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                pids.append(pid)
    return pids


async def burst(base_url: str) -> tuple[httpx.AsyncClient, list[int]]:
    """A client holding ``CONNECTIONS`` keep-alive connections, opened at once; statuses."""
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=TIMEOUT / 3,
        limits=httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS),
    )
    gate = asyncio.Event()

    async def one() -> int:
        await gate.wait()
        return (await client.get("/healthz")).status_code

    tasks = [asyncio.create_task(one()) for _ in range(CONNECTIONS)]
    await asyncio.sleep(0)
    gate.set()
    return client, list(await asyncio.gather(*tasks))


@contextlib.asynccontextmanager
async def served(data_dir: Path, log: Path, workers: int) -> AsyncIterator[tuple[str, int, int]]:
    """``prepmeet serve --workers N`` until every worker answers: URL, port, supervisor pid."""
    port = free_port()
    process = await spawn_serve(data_dir, log, port, "--workers", str(workers))
    try:
        await until_workers_serve(process, workers, log)
        yield f"http://127.0.0.1:{port}", port, process.pid
    finally:
        await terminate(process)
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()


async def until_workers_serve(process: asyncio.subprocess.Process, workers: int, log: Path) -> None:
    """Wait until ``workers`` workers have finished their startup (each logs it)."""
    for _ in range(int(TIMEOUT / 0.05)):
        text = log.read_text(errors="replace")
        if text.count("Application startup complete") >= workers:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 0.05)
        assert process.returncode is None, f"the server exited: {text}"
    raise AssertionError(f"the workers did not start within {TIMEOUT} s: {log.read_text()}")


async def test_a_burst_of_connections_is_spread_over_every_worker(tmp_path: Path) -> None:
    async with served(tmp_path, tmp_path / "serve.log", workers=2) as (url, port, pid):
        client, statuses = await burst(url)
        try:
            assert statuses == [200] * CONNECTIONS
            workers = workers_of(pid)
            assert len(workers) == 2
            assert_a_listening_socket_per_worker(workers, port)
            held = connections_by_process(workers, port)
            assert sum(held.values()) == CONNECTIONS, held
            assert all(count > 0 for count in held.values()), f"a worker was left idle: {held}"
        finally:
            await client.aclose()


async def test_a_worker_that_dies_is_replaced_on_its_own_socket(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    async with served(tmp_path, log, workers=2) as (url, port, pid):
        first, second = workers_of(pid)
        os.kill(first, signal.SIGKILL)
        for _ in range(int(TIMEOUT / 0.05)):
            now = workers_of(pid)
            if len(now) == 2 and first not in now:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the worker was not replaced: {log.read_text()}")
        await until_workers_serve_again(log)
        assert_a_listening_socket_per_worker(workers_of(pid), port)
        # a socket left without a worker would hold half of these connections unanswered
        client, statuses = await burst(url)
        try:
            assert statuses == [200] * CONNECTIONS
            held = connections_by_process(workers_of(pid), port)
            assert sum(held.values()) == CONNECTIONS, held
            assert all(count > 0 for count in held.values()), held
            assert second in held
        finally:
            await client.aclose()


async def until_workers_serve_again(log: Path) -> None:
    for _ in range(int(TIMEOUT / 0.05)):
        if log.read_text(errors="replace").count("Application startup complete") >= 3:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the new worker did not start: {log.read_text()}")


async def test_every_socket_listens_before_any_worker_is_up(tmp_path: Path) -> None:
    """Connections made while a worker starts wait for it, rather than all going to the
    workers that are up: every socket listens from the moment the port does."""
    port = free_port()
    log = tmp_path / "serve.log"
    process = await spawn_serve(tmp_path, log, port, "--workers", "2")
    try:
        for _ in range(int(TIMEOUT / 0.005)):
            listening = sockets_on(port, LISTEN)
            if listening:
                break
            assert process.returncode is None, log.read_text()
            await asyncio.sleep(0.005)
        else:
            raise AssertionError(f"the port never listened: {log.read_text()}")
        assert len(listening) == 2, "both sockets listen as soon as the port does"
        await until_workers_serve(process, 2, log)
        client, statuses = await burst(f"http://127.0.0.1:{port}")
        try:
            assert statuses == [200] * CONNECTIONS
        finally:
            await client.aclose()
    finally:
        await terminate(process)
