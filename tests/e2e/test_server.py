"""The ``prepmeet`` command: a real server process, the user commands, help and failures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import httpx
import pytest

from api.cli import build_parser, main
from tests.e2e.conftest import TECH, TRACEBACK

PREPMEET = Path(sys.executable).parent / "prepmeet"
TIMEOUT = 30.0


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
    env["PREPMEET_DATA_DIR"] = str(data_dir)
    return env


async def run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run ``prepmeet ARGS`` to its end: exit code, standard output, standard error."""
    process = await asyncio.create_subprocess_exec(
        str(PREPMEET),
        *args,
        env=environment(data_dir),
        cwd=data_dir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def create_user(data_dir: Path, *args: str) -> str:
    """``prepmeet users create ...``; the token, which is the last line of its output."""
    code, out, err = await run(data_dir, "users", "create", *args)
    assert code == 0, err
    return out.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def spawn_serve(
    data_dir: Path, log: Path, port: int, *args: str
) -> asyncio.subprocess.Process:
    """``prepmeet serve --port PORT ARGS``, its output in ``log``."""
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            str(PREPMEET),
            "serve",
            "--port",
            str(port),
            *args,
            env=environment(data_dir),
            cwd=data_dir,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )


async def terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the timeout."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def server(data_dir: Path, log: Path) -> AsyncIterator[str]:
    """``prepmeet serve`` on a free port, once /healthz answers; stopped with SIGTERM."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = await spawn_serve(data_dir, log, port)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            for _ in range(int(TIMEOUT / 0.05)):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                # the pause between attempts is a wait for the process: it fails fast if it dies
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 0.05)
                assert process.returncode is None, f"the server exited: {log.read_text()}"
            else:
                raise AssertionError(f"no /healthz within {TIMEOUT} s: {log.read_text()}")
        yield base_url
    finally:
        await terminate(process)
    # uvicorn shuts down gracefully on SIGTERM, then exits by that signal (or 0)
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()


async def test_a_real_server_walks_a_proposal_from_draft_to_approval(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "server.log"
    async with server(data_dir, log) as base_url:
        # users are created by the operator, in another process, while the server runs
        secretariat, chair_token, rapporteur_token = await asyncio.gather(
            create_user(data_dir, "--name", "Amina Qureshi", "--delegation", "UN", "--secretariat"),
            create_user(data_dir, "--name", "Ayesha Malik", "--delegation", "Norway"),
            create_user(data_dir, "--name", "Rahul Banerjee", "--delegation", "Pakistan"),
        )

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            me = (await client.get("/api/v1/me", headers=auth(secretariat))).json()
            assert me["roles"] == [{"role": "secretariat"}]
            chair = (await client.get("/api/v1/me", headers=auth(chair_token))).json()["id"]
            rapporteur = (await client.get("/api/v1/me", headers=auth(rapporteur_token))).json()[
                "id"
            ]

            scheduled = await client.post(
                "/api/v1/meetings",
                json={
                    "title": "Third UN Peacekeeping Ministerial Preparatory Meeting",
                    "venue": "CIPS, NUST, Islamabad",
                    "starts_on": "2025-04-15",
                    "ends_on": "2025-04-16",
                    "hosts": ["Pakistan", "Republic of Korea"],
                    "ministerial": "berlin-2025",
                    "themes": [{"key": TECH, "title": "Use of technology in peacekeeping"}],
                },
                headers=auth(secretariat),
            )
            assert scheduled.status_code == 201, scheduled.text
            meeting = scheduled.json()["id"]
            for user, role in ((chair, "chair"), (rapporteur, "rapporteur")):
                enrolled = await client.post(
                    f"/api/v1/meetings/{meeting}/participants",
                    json={"user_id": user, "role": role, "themes": [TECH]},
                    headers=auth(secretariat),
                )
                assert enrolled.status_code == 201, enrolled.text
            opened = await client.post(
                f"/api/v1/meetings/{meeting}/open", headers=auth(secretariat)
            )
            assert opened.json()["status"] == "open"

            drafted = await client.post(
                f"/api/v1/meetings/{meeting}/proposals",
                json={
                    "theme": TECH,
                    "title": "Shared situational awareness",
                    "text": "Missions adopt one secure situational-awareness platform.",
                },
                headers=auth(rapporteur_token),
            )
            assert drafted.status_code == 201, drafted.text
            location = drafted.headers["location"]
            assert drafted.json()["status"] == "draft"
            submitted = await client.post(
                f"{location}/submit",
                headers={**auth(rapporteur_token), "If-Match": drafted.headers["etag"]},
            )
            assert submitted.json()["status"] == "submitted"
            approved = await client.post(
                f"{location}/approve",
                json={"final_text": "Missions adopt one secure platform."},
                headers={**auth(chair_token), "If-Match": submitted.headers["etag"]},
            )
            assert approved.status_code == 200, approved.text
            final = (await client.get(location, headers=auth(chair_token))).json()
            assert (final["status"], final["final_text"], final["decision"]["by"]) == (
                "approved",
                "Missions adopt one secure platform.",
                chair,
            )
            history = (await client.get(f"{location}/history", headers=auth(chair_token))).json()
            assert [i["type"] for i in history["items"]] == [
                "ProposalDrafted",
                "ProposalSubmitted",
                "ProposalApproved",
            ]

            # tokens issued and revoked at the command line take effect in the server at once
            code, out, err = await run(data_dir, "users", "token", chair)
            assert code == 0, err
            fresh = out.strip().splitlines()[-1]
            assert (await client.get("/api/v1/me", headers=auth(fresh))).json()["id"] == chair
            code, _, err = await run(data_dir, "users", "revoke", chair)
            assert code == 0, err
            for token in (chair_token, fresh):
                refused = await client.get("/api/v1/me", headers=auth(token))
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"] == "Bearer"
    assert not TRACEBACK.search(log.read_text()), log.read_text()


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand of the parser, as argument lists."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


async def test_help_of_every_command_exits_0(tmp_path: Path) -> None:
    code, out, err = await run(tmp_path, "--help")  # the installed entry point itself
    assert (code, err) == (0, "")
    assert out.startswith("usage: prepmeet")
    paths = list(command_paths(build_parser()))
    assert ("serve",) in paths and ("users", "create") in paths and ("demo",) in paths
    for path in paths:  # every subcommand, through the same main() the entry point calls
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr), pytest.raises(SystemExit) as exit:
            main([*path, "--help"])
        assert exit.value.code == 0, (path, stderr.getvalue())
        assert stdout.getvalue().startswith(f"usage: prepmeet {' '.join(path)}".rstrip()), path
        assert stderr.getvalue() == "", path


FAILING = [
    ("users", "token", "00000000-0000-4000-8000-000000000000"),
    ("users", "token", "not-a-user-id"),
    ("users", "revoke", "00000000-0000-4000-8000-000000000000"),
]


async def test_a_failing_command_exits_non_zero_with_one_line_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("PREPMEET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PREPMEET_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)

    def one_line(args: tuple[str, ...], code: int, out: str, err: str) -> None:
        assert code != 0, args
        lines = err.strip().splitlines()
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("prepmeet: ") and args[-1] in lines[0], (args, err)
        assert not TRACEBACK.search(err + out)
        assert out == "", (args, out)

    first, *others = FAILING
    one_line(first, *await run(tmp_path, *first))  # the installed entry point itself
    for args in others:  # the same main(), in process
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(list(args))
        one_line(args, code, stdout.getvalue(), stderr.getvalue())
