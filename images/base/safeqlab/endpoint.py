"""The endpoint side of the internal communication (gateway and client stand-ins):
connect over mutual TLS, say hello, keep the session alive, reconnect with backoff."""
from __future__ import annotations

import datetime
import logging
import socket
import ssl
import threading
from typing import Callable

from cryptography import x509

from certkit import fsio
from . import proto
from .util import now_iso
from .builtin import UNKNOWN_CERT_ALERTS, BuiltinIdentity, PinMismatch
from certkit.certs import describe
from certkit.jsse import java_reason

BACKOFF = (1, 2, 4, 8, 10)
PENDING_RETRY = 2


class SetupError(Exception):
    """Local configuration the endpoint cannot start a session with."""


class Refused(proto.ProtocolError):
    """The primary completed TLS but refused the endpoint (its reason is the message)."""


class StateFile:
    """connected/disconnected/error plus why, for checks and healthchecks."""

    def __init__(self, path):
        self.path = path
        self.data = {"state": "starting", "reason": None, "peer": None, "since": now_iso(), "last_ack": None}
        fsio.write_json(path, self.data)

    def set(self, state: str, reason: str | None = None, **extra) -> None:
        if state != self.data["state"]:
            self.data["since"] = now_iso()
        self.data.update(state=state, reason=reason, **extra)
        fsio.write_json(self.path, self.data)

    def ack(self) -> None:
        self.data["last_ack"] = now_iso()
        fsio.write_json(self.path, self.data)


def healthy(data: dict | None, max_age: float = 3 * proto.HEARTBEAT_SECONDS + 2) -> tuple[bool, str]:
    if not data:
        return False, "not started"
    if data.get("state") != "connected":
        return False, f"{data.get('state')}: {data.get('reason')}"
    last = data.get("last_ack") or data.get("since")
    age = (datetime.datetime.now(datetime.timezone.utc) - datetime.datetime.fromisoformat(last)).total_seconds()
    if age > max_age:
        return False, f"no heartbeat answered for {age:.0f} s"
    return True, f"connected to {data['peer']['host']} ({data['peer']['subject']})"


class Registered(Exception):
    """A built-in endpoint just registered its certificate: connect again at once."""


class Session:
    def __init__(self, *, host: str, port: int, role: str, make_context: Callable[[], tuple[ssl.SSLContext, str]],
                 state: StateFile | None, log: logging.Logger, stop: threading.Event, builtin: BuiltinIdentity | None = None,
                 check_peer: Callable[[ssl.SSLSocket], None] | None = None):
        self.host, self.port, self.role = host, port, role
        self.make_context, self.state, self.log, self.stop = make_context, state, log, stop
        self.builtin = builtin
        self.check_peer = check_peer  # e.g. an OCSP check of the primary's chain; raises Refused
        self._just_registered = False

    def run(self) -> None:
        attempt = 0
        while not self.stop.is_set():
            delay = None
            try:
                self.connect_once()
                attempt = 0  # a session that got going resets the backoff
            except Registered:
                continue
            except (SetupError, PinMismatch) as exc:
                self.fail("error", str(exc))
            except Refused as exc:
                self.fail("refused", str(exc))
                delay = PENDING_RETRY  # waiting for an administrator: ask again soon
            except (OSError, proto.ProtocolError) as exc:
                self.fail("disconnected", java_reason(exc, hostname=self.host))
            except Exception as exc:  # noqa: BLE001 - a bad file or answer must not end reconnecting
                self.log.exception("Unexpected error talking to %s:%d", self.host, self.port)
                self.fail("error", f"{exc.__class__.__name__}: {exc}")
            if delay is None:
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
            self._just_registered = False  # one registration per attempt, not a tight loop
            self.stop.wait(delay)

    def register(self) -> None:
        ctx, _ = self.builtin.context(with_certificate=False)
        with socket.create_connection((self.host, self.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=self.host) as tls:
                self.builtin.check_server(tls.getpeercert(binary_form=True))
                proto.send(tls, self.builtin.register_message(self.role))
                tls.settimeout(3 * proto.HEARTBEAT_SECONDS)
                answer = proto.Reader(tls).read() or {}
        if answer.get("type") != "registered" or "endpoint_id" not in answer:
            raise Refused(f"registration refused by the primary: {answer.get('reason')}")
        self.log.info("Registered the built-in certificate with the primary as endpoint %s (%s)", answer["endpoint_id"],
                      "trusted" if answer.get("trusted") else "not trusted yet: an administrator must trust it")

    def fail(self, state: str, reason: str) -> None:
        if (self.state.data["state"], self.state.data["reason"]) != (state, reason):
            self.log.warning("Connection to %s:%d failed: %s", self.host, self.port, reason)
        self.state.set(state, reason)

    def probe(self) -> tuple[bool, str]:
        """One attempt, as an installer's "test the connection": (ok, what happened)."""
        try:
            try:
                peer = self.connect_once(keep_alive=False)
            except Registered:
                peer = self.connect_once(keep_alive=False)
            return True, f"connected to {self.host}:{self.port}; server certificate {peer['subject']} issued by {peer['issuer']}, verified"
        except (SetupError, PinMismatch, Registered) as exc:
            return False, str(exc)
        except (OSError, proto.ProtocolError) as exc:
            return False, java_reason(exc, hostname=self.host)

    def connect_once(self, keep_alive: bool = True) -> dict:
        ctx, name = self.make_context()
        with socket.create_connection((self.host, self.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=self.host) as tls:
                der = tls.getpeercert(binary_form=True)
                peer = describe(x509.load_der_x509_certificate(der))
                peer["verified"] = self.builtin.check_server(der) if self.builtin else True
                if self.check_peer:
                    self.check_peer(tls)
                reader = proto.Reader(tls)
                tls.settimeout(3 * proto.HEARTBEAT_SECONDS)
                try:
                    proto.send(tls, {"type": "hello", "role": self.role, "name": name})
                    answer = reader.read()
                except (ssl.SSLError, ConnectionResetError) as exc:
                    # The primary does not know our built-in certificate (never, or no longer): register it
                    # once, then try again at once. An alert may arrive as a plain reset under TLS 1.3.
                    unknown = isinstance(exc, ConnectionResetError) or exc.reason in UNKNOWN_CERT_ALERTS
                    if self.builtin and unknown and not self._just_registered:
                        self.register()
                        self._just_registered = True
                        raise Registered() from None
                    raise
                self._just_registered = False
                if answer is None:
                    raise proto.ProtocolError("the primary closed the session after the handshake")
                if answer.get("type") != "welcome":
                    raise Refused(f"refused by the primary: {answer.get('reason')}")
                if not keep_alive:
                    return peer
                self.log.info("Connected to %s:%d as %s %s; server certificate %s issued by %s, verified (%s)",
                              self.host, self.port, self.role, name, peer["subject"], peer["issuer"], tls.version())
                self.state.set("connected", None, peer={"host": self.host, **peer})
                self.state.ack()
                while not self.stop.is_set():
                    proto.send(tls, {"type": "heartbeat"})
                    if reader.read() is None:
                        raise proto.ProtocolError("the primary closed the session")
                    self.state.ack()
                    self.stop.wait(proto.HEARTBEAT_SECONDS)
                return peer
