"""Processes the harness starts (servers, CLI commands) and the PostgreSQL database it owns.

Every process is started in a session of its own, so a Ctrl-C in the terminal reaches only
the harness, which then stops what it started: SIGTERM to the process it launched, then
SIGKILL to that process's group when it does not stop in time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


class HarnessError(Exception):
    """The harness cannot go on (a server did not start, a command failed)."""


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def prepmeet_argv(*args: str) -> list[str]:
    """The ``prepmeet`` command of this interpreter's environment (module form as fallback)."""
    exe = BIN / "prepmeet"
    if exe.exists():
        return [str(exe), *args]
    return [PYTHON, "-m", "api.cli", *args]


def service_env(**settings: str | None) -> dict[str, str]:
    """The environment of a service process: no ``PREPMEET_*`` setting leaks in from the
    caller's environment; rate limits off; then ``settings`` (``None`` removes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    env["PREPMEET_RATE_LIMIT_PER_TOKEN"] = "0"
    env["PREPMEET_RATE_LIMIT_PER_ADDRESS"] = "0"
    for key, value in settings.items():
        name = key if key.startswith("PREPMEET_") else f"PREPMEET_{key.upper()}"
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_command(argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run a command to completion; its standard output, or :class:`HarnessError`."""
    try:
        done = subprocess.run(
            list(argv),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{' '.join(argv)} took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"{' '.join(argv[:3])} … failed ({done.returncode}): {last}")
    return done.stdout


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Managed:
    """A long-running process the harness started, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise HarnessError(f"{self.name} is not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL to the process group when it does not stop in time."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        # whatever is left of its session (uvicorn workers, a projector) goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def rss(self) -> int:
        """RSS of the process and every descendant (uvicorn workers, projector)."""
        return sum(rss_bytes(p) for p in process_tree(self.pid)) if self.alive() else 0

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in process_tree(self.pid)) if self.alive() else 0.0


class Server(Managed):
    """An HTTP server on a loopback port."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path, port: int
    ) -> None:
        super().__init__(name, argv, env, cwd)
        self.port = port
        self.base_url = f"http://{LOOPBACK}:{port}"

    def wait_ready(self, path: str = "/healthz", timeout: float = 60.0) -> None:
        """Poll ``path`` until it answers 200; :class:`HarnessError` when the process dies."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise HarnessError(f"{self.name} exited at start:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(path).status_code == 200:
                        return
                time.sleep(0.05)
        raise HarnessError(f"{self.name} did not answer {path} in {timeout:.0f} s:\n{self.tail()}")


def prepmeet_server(
    name: str, data_dir: Path, workdir: Path, workers: int = 1, **settings: str | None
) -> Server:
    """``prepmeet serve`` on a free loopback port over ``data_dir`` (or a database URL)."""
    port = free_port()
    env = service_env(data_dir=str(data_dir), **settings)
    argv = prepmeet_argv("serve", "--host", LOOPBACK, "--port", str(port))
    argv += ["--workers", str(workers)]
    return Server(name, argv, env, workdir, port)


def uvicorn_server(
    name: str,
    target: str,
    workdir: Path,
    *,
    factory: bool = False,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> Server:
    """``uvicorn TARGET`` with the settings ``prepmeet serve`` gives uvicorn: uvloop and
    httptools (``uvicorn[standard]``), no access log, no server header, same workers."""
    port = free_port()
    argv = [PYTHON, "-m", "uvicorn", target, "--host", LOOPBACK, "--port", str(port)]
    argv += ["--workers", str(workers), "--no-access-log", "--no-server-header"]
    argv += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    if factory:
        argv.append("--factory")
    return Server(name, argv, env or service_env(), workdir, port)


# --- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTarget:
    """A database of the harness's own, and how to drop it."""

    url: str
    admin_url: str
    dbname: str
    schema: str | None = None


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(dbname), query="").geturl()


def find_postgres() -> str | None:
    """The admin URL of the PostgreSQL server to use, or ``None``: the server named by
    ``PREPMEET_DATABASE_URL``, else one answering on 127.0.0.1:5432 (user postgres)."""
    given = os.environ.get("PREPMEET_DATABASE_URL")
    if given:
        return given
    if _answers(LOOPBACK, 5432):
        return f"postgresql://postgres@{LOOPBACK}:5432/postgres"
    return None


@contextlib.contextmanager
def own_database(admin_url: str) -> Iterator[PgTarget]:
    """A fresh database ``prepmeet_bench_<random>`` on that server, dropped afterwards.

    Where the role may not create databases, a fresh schema in the given database instead.
    """
    import psycopg

    parts = urlsplit(admin_url)
    name = f"prepmeet_bench_{secrets.token_hex(4)}"
    given_db = unquote(parts.path.lstrip("/")) or "postgres"
    target: PgTarget
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        try:
            conn.execute(f'CREATE DATABASE "{name}"')
            target = PgTarget(_with_db(admin_url, name), admin_url, name)
        except psycopg.Error:
            conn.execute(f'CREATE SCHEMA "{name}"')
            url = _with_db(admin_url, given_db) + f"?schema={name}"
            target = PgTarget(url, admin_url, given_db, schema=name)
    try:
        yield target
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            if target.schema is None:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
