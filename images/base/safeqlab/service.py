"""What the gateway and client stand-ins share: the state file and health, the JRE validator,
the service loop, the session factory and the command line (run | status [--json] | health |
test-connection).

A :class:`Spec` says what differs between them; :func:`main` does the rest.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import threading
from typing import Callable

from cryptography import x509

from certkit import fsio
from certkit.jre import Validator, ValidatorError
from certkit.verdicts import KeptAcceptances
from . import util
from .builtin import BuiltinIdentity
from .endpoint import Identity, Session, SetupError
from .health import answer, healthy, status_json  # noqa: F401 - service.healthy, as the programs ask for it

COMMANDS = ("run", "status", "health", "test-connection")
RETRY_SECONDS = 5  # a broken local setup is read again this often

IdentityFactory = Callable[[], Identity]
PeerCheck = Callable[[list[x509.Certificate], list[x509.Certificate]], None]


class StateFile:
    """connected/disconnected/error plus why, for checks and healthchecks."""

    def __init__(self, path):
        self.path = path
        self.data = {"state": "starting", "reason": None, "peer": None, "since": util.now_iso(), "last_ack": None}
        fsio.write_json(path, self.data)

    def set(self, state: str, reason: str | None = None, **extra) -> None:
        if state != self.data["state"]:
            self.data["since"] = util.now_iso()
        self.data.update(state=state, reason=reason, **extra)
        fsio.write_json(self.path, self.data)

    def ack(self) -> None:
        self.data["last_ack"] = util.now_iso()
        fsio.write_json(self.path, self.data)


_validators: list[Validator] = []
_validators_lock = threading.Lock()


def shared_validator() -> Validator:
    """One JRE validator per process, started on first use and kept (a JVM start costs ~1 s)."""
    with _validators_lock:
        if not _validators:
            _validators.append(Validator())
        return _validators[0]


CHAIN_VERDICTS_VAR = "SAFEQ_CHAIN_VERDICTS"  # the file (a data volume's) the JRE's acceptances are kept in
_judges: list[Validator | KeptAcceptances] = []
_judges_lock = threading.Lock()


def trusted_validator() -> Validator | KeptAcceptances:
    """What a session judges the primary's chain with: the shared validator, its acceptances kept in
    the file SAFEQ_CHAIN_VERDICTS names when set."""
    validator = shared_validator()
    with _judges_lock:
        if not _judges:
            kept = os.environ.get(CHAIN_VERDICTS_VAR)
            _judges.append(KeptAcceptances(validator, kept) if kept else validator)
        return _judges[0]


def start_validator_early() -> None:
    """The JVM starts while the stores are read and the primary is reached, not in the first handshake.
    A JRE that cannot start is the session's error when it asks for a verdict (not this thread's)."""
    try:
        shared_validator().java_version
    except ValidatorError:
        return


class Spec:
    """One endpoint program. Subclasses set the attributes and override what they need."""

    prog = "safeq-endpoint"  # program name in usage and errors
    role = "endpoint"  # the role announced in hello
    logger = "safeq-endpoint"
    log_file = "/var/log/safeq-endpoint.log"
    state_path = "/run/safeq-endpoint/state.json"
    builtin_dir = "/var/lib/safeq-endpoint/builtin"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Program-specific options (accepted with every command, used by test-connection)."""

    def apply_options(self, args: argparse.Namespace) -> None:
        """Take test-connection's options into account."""

    def builtin(self) -> bool:
        """True: the product's built-in certificates; False: the trusted (corporate) ones."""
        return False

    def host_name(self) -> str:
        """The host name a built-in certificate is made for (an install of several in one container: its own)."""
        return socket.gethostname()

    def preflight(self) -> None:
        """Checks the service makes before anything else (not the connection test); raises SetupError."""

    def prepare(self) -> None:
        """Make what a session needs on disk (before one is created)."""

    def address(self) -> tuple[str, int]:
        """The primary's (host, port); raises SetupError."""
        raise NotImplementedError

    def trusted_identity(self, log: logging.Logger) -> IdentityFactory:
        """A factory called on every attempt: the trusted identity, read afresh (raises SetupError)."""
        raise NotImplementedError

    def check_peer(self) -> PeerCheck | None:
        """An extra check of the primary's chain as sent, with the anchors, once the JRE accepted it
        (raises Refused), or None."""
        return None

    def state_file(self) -> StateFile:
        return StateFile(self.state_path)

    def starting(self, log: logging.Logger, host: str, port: int) -> None:
        """The service's start line, once its session is set up."""
        log.info("%s starting; primary server %s:%d", self.prog, host, port)

    def status_line(self, data: dict | None, why: str) -> str:
        return why


def session(spec: Spec, host: str, port: int, state: StateFile | None, log: logging.Logger,
            stop: threading.Event) -> Session:
    """A session with the built-in or the trusted certificates, as the endpoint is configured."""
    if spec.builtin():
        identity = BuiltinIdentity(spec.builtin_dir, spec.host_name(), log)
        return Session(host=host, port=port, role=spec.role, state=state, log=log, stop=stop, builtin=identity)
    try:
        judge = trusted_validator()
    except ValidatorError:
        judge = None  # the session says why once it asks for a verdict
    if not (isinstance(judge, KeptAcceptances) and judge.holds_any()):  # else it starts if a verdict is not kept
        threading.Thread(target=start_validator_early, daemon=True).start()
    return Session(host=host, port=port, role=spec.role, state=state, log=log, stop=stop,
                   trusted=spec.trusted_identity(log), check_peer=spec.check_peer(), validator=trusted_validator)


def wait_for_setup(spec: Spec, state: StateFile, log: logging.Logger, stop: threading.Event) -> Session | None:
    """The session once the local setup allows one; None if stopped first.

    The service keeps running on a SetupError and reports it (the healthcheck says why);
    a fixed file is read again at the next try."""
    while True:
        try:
            spec.preflight()
            host, port = spec.address()
            spec.prepare()
            return session(spec, host, port, state, log, stop)
        except SetupError as exc:
            if state.data["reason"] != str(exc):
                log.error("%s", exc)
            state.set("error", str(exc))
            if stop.wait(RETRY_SECONDS):
                return None


def run(spec: Spec) -> int:
    log = util.setup_logging(spec.logger, str(spec.log_file))
    stop = util.stop_event_on_signals()
    worker = wait_for_setup(spec, spec.state_file(), log, stop)
    if worker is None:
        return 0
    spec.starting(log, worker.host, worker.port)
    threading.Thread(target=worker.run, daemon=True).start()
    stop.wait()
    log.info("Stopping")
    return 0


def try_connection(spec: Spec) -> int:
    """One attempt, as an installer's connection test: prints ok:/failed: and why."""
    log = util.setup_logging(spec.logger)
    try:
        host, port = spec.address()
        spec.prepare()
        probe = session(spec, host, port, None, log, threading.Event())
    except SetupError as exc:
        print(f"failed: {exc}")
        return 1
    ok, why = probe.probe()
    print(("ok: " if ok else "failed: ") + why)
    return 0 if ok else 1


def report(spec: Spec, command: str, as_json: bool) -> int:
    """status always exits 0 (it reports); health exits 0 only while healthy."""
    if command == "health":
        return answer(spec.state_path)
    if as_json:
        return status_json(spec.state_path)
    data = fsio.read_json(spec.state_path)
    print(spec.status_line(data, healthy(data)[1]))
    return 0


def main(argv: list[str], spec: Spec) -> int:
    parser = argparse.ArgumentParser(prog=spec.prog)
    parser.add_argument("cmd", choices=list(COMMANDS))
    parser.add_argument("--json", action="store_true")
    spec.add_options(parser)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        return run(spec)
    if args.cmd == "test-connection":
        spec.apply_options(args)
        return try_connection(spec)
    return report(spec, args.cmd, args.json)
