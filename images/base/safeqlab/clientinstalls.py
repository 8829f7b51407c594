"""Several SAFEQ Cloud Client installs in one container (SAFEQ_CLIENT_INSTALLS="host host ...").

Each install is what a separate install would be: its own host name and certificate store
(/installs/<host>/store), subject (its host name, or what `safeq-client setup --install HOST` chose),
session, status, log and service data (client.install_of). They share the process and its one JRE
validator, which is what makes hundreds fit on one host. Each install's service restarts on its own
(`safeq-client restart --install HOST`, through a Unix socket only root can open); `health` passes
only while every install is connected.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import service, util
from .client import WORKDIR, Client, ClientStatus
from .clientfiles import ENV, install_of  # noqa: F401 - ENV: what names the installs
from .endpoint import SetupError

CONTROL = Path(WORKDIR) / "installs.sock"
STAGGER = 0.1         # s between two installs' starts: machines do not all boot in the same instant
STOP_WAIT = 3.0       # s a restart waits for the old session to end (one heartbeat answer, or a timeout)
REQUEST_SECONDS = 15  # a restart request, answered once the new session is started


class InstallStatus(ClientStatus):
    """An install's status file; a restarted install's old session no longer writes it."""
    retired = False

    def set(self, state, reason=None, **extra):
        if not self.retired:
            super().set(state, reason, **extra)

    def ack(self) -> None:
        if not self.retired:
            super().ack()


def install_log(spec: Client) -> logging.Logger:
    log = util.setup_logging(spec.logger, str(spec.log_file))
    log.propagate = False  # its own log file and its own name on stdout, nothing twice
    return log


def serve(spec: Client, state: InstallStatus, stop: threading.Event) -> None:
    """One install's service, from start to stop (as service.run for a container's one install)."""
    log = install_log(spec)
    worker = service.wait_for_setup(spec, state, log, stop)
    if worker is not None:
        spec.starting(log, worker.host, worker.port)
        worker.run()
    log.info("Stopping")


@dataclass
class Unit:
    host: str
    generation: int
    stop: threading.Event = field(default_factory=threading.Event)
    state: InstallStatus | None = None
    thread: threading.Thread | None = None


class Installs:
    def __init__(self, names: list[str]):
        self.names = list(names)
        self.units: dict[str, Unit] = {}
        self.lock = threading.Lock()

    def start(self, host: str) -> Unit:
        old = self.units.get(host)
        unit = Unit(host, old.generation + 1 if old else 1)
        spec = Client(install=install_of(host))
        spec.install.data.mkdir(parents=True, exist_ok=True)  # its service data: setup choices, built-in certificate
        unit.state = InstallStatus(spec.state_path)
        unit.thread = threading.Thread(target=serve, args=(spec, unit.state, unit.stop), name=host, daemon=True)
        self.units[host] = unit
        unit.thread.start()
        return unit

    def restart(self, host: str) -> int:
        """The install's service stopped and started again (it reads its store and setup afresh)."""
        if host not in self.names:
            raise SetupError(f"no install {host} here (this container hosts {', '.join(self.names)})")
        with self.lock:
            old = self.units.get(host)
            if old is not None:
                old.stop.set()
                old.thread.join(STOP_WAIT)
                old.state.retired = True
            return self.start(host).generation

    def stop_all(self) -> None:
        for unit in list(self.units.values()):
            unit.stop.set()


def answer(installs: Installs, conn: socket.socket) -> None:
    with conn:
        conn.settimeout(REQUEST_SECONDS)
        request = conn.makefile("r", encoding="utf-8").readline(256).split()
        if len(request) != 2 or request[0] != "restart":
            reply = "error: usage: restart HOST"
        else:
            try:
                reply = f"ok: {request[1]} restarted (generation {installs.restart(request[1])})"
            except SetupError as exc:
                reply = f"error: {exc}"
        conn.sendall(reply.encode() + b"\n")


def control(installs: Installs, stop: threading.Event) -> None:
    """Restart requests, one at a time, from root only (the socket's mode)."""
    CONTROL.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    CONTROL.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(CONTROL))
    os.chmod(CONTROL, 0o600)
    server.listen(8)
    server.settimeout(0.5)  # to see the stop
    with server:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            try:
                answer(installs, conn)
            except OSError as exc:  # the asker went away: its command reports that
                print(f"safeq-client: a restart request failed: {exc}", flush=True)


def run(names: list[str]) -> int:
    stop = util.stop_event_on_signals()
    installs = Installs(names)
    threading.Thread(target=control, args=(installs, stop), name="control", daemon=True).start()
    for i, host in enumerate(names):
        if stop.wait(STAGGER if i else 0):
            break
        with installs.lock:
            installs.start(host)
    stop.wait()
    installs.stop_all()
    return 0


def request_restart(host: str) -> int:
    """`safeq-client restart --install HOST` in a container of several installs."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(REQUEST_SECONDS)
            sock.connect(str(CONTROL))
            sock.sendall(f"restart {host}\n".encode())
            reply = sock.makefile("r", encoding="utf-8").readline(1024).strip()
    except OSError as exc:
        print(f"failed: the client service does not answer on {CONTROL}: {exc}")
        return 1
    print(reply or "failed: no answer from the client service")
    return 0 if reply.startswith("ok:") else 1
