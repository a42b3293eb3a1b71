"""Several API processes on one port, each with a listening socket of its own.

uvicorn's supervisor gives all its workers one listening socket. Whichever worker wakes
first accepts every connection waiting, so a burst of clients (a proxy opening its pool, a
load of keep-alive connections) can land on one worker and stay there while the others
idle. On Linux each worker here listens on a socket of its own, all bound to the one port
with ``SO_REUSEPORT``, and the kernel spreads new connections across them. Elsewhere (where
``SO_REUSEPORT`` does not balance) the supervisor is uvicorn's own.
"""

from __future__ import annotations

import logging
import socket
import sys

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")


def balances_connections() -> bool:
    """Whether the kernel spreads connections across sockets bound with ``SO_REUSEPORT``."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT``, listening.

    It listens from the start, before its worker is up: connections the kernel gives it
    meanwhile wait in its backlog for that worker, where a socket that did not listen yet
    would leave them all to the workers already up (and a burst of keep-alive clients at
    start would stay on the first worker ready)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class SpreadWorkers(Multiprocess):
    """uvicorn's supervisor, worker ``i`` serving socket ``i`` of its own.

    A worker that dies, or is replaced on ``SIGHUP``, is replaced on the same socket, so
    every socket keeps one worker accepting (connections wait in its backlog meanwhile);
    ``SIGTTIN`` binds one more socket for the new worker, and ``SIGTTOU`` closes the socket
    of the worker it stops.
    """

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets=sockets)
        self.slots = list(sockets)

    def _spawn(self, slot: int) -> Process:
        process = Process(self.config, [self.slots[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._spawn(slot) for slot in range(len(self.slots))]

    def restart_all(self) -> None:
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn(idx)
            ready = new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit)
            if not ready:
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error(
                        "New child process [%s] was not ready in time; keeping worker [%s] "
                        "and aborting the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[idx] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("Child process [%s] failed to start, stopping the parent.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("Child process [%s] died", process.pid)
            self.processes[idx] = self._spawn(idx)

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        port = self.slots[0].getsockname()[1]
        self.slots.append(listening_socket(self.config.host, port, self.config.backlog))
        self.processes_num += 1
        self.processes.append(self._spawn(len(self.slots) - 1))

    def handle_ttou(self) -> None:
        log.info("Received SIGTTOU, decreasing number of processes.")
        if self.processes_num <= 1:
            log.info("Already reached one process, cannot decrease the number of processes.")
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        self.slots.pop().close()


def run_workers(config: Config) -> None:
    """Serve ``config.workers`` processes, spread over sockets of their own where the
    kernel balances them, else on uvicorn's one shared socket."""
    if not balances_connections() or config.uds or config.fd is not None:
        sock = config.bind_socket()
        Multiprocess(config, sockets=[sock]).run()
        return
    try:
        first = listening_socket(config.host, config.port, config.backlog)
        sockets = [first]
        port = first.getsockname()[1]
        sockets += [
            listening_socket(config.host, port, config.backlog) for _ in range(config.workers - 1)
        ]
    except OSError as e:
        log.error("%s", e)
        sys.exit(STARTUP_FAILURE)
    log.info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
        f"[{config.host}]" if ":" in config.host else config.host,
        port,
    )
    try:
        SpreadWorkers(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
