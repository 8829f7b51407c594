"""The endpoint side of the internal communication (gateway and client stand-ins):
connect over mutual TLS, say hello, keep the session alive, reconnect with backoff.

Trusted certificates, as a Java endpoint: the TLS layer verifies nothing; right after the
handshake, before any application byte, the JRE judges the chain the primary sent (PKIX and
HTTPS host name identification) and a refusal closes the connection. The certificate offered
is chosen as Java's key manager chooses it (certkit.keychoice), from the CA names of the
primary's CertificateRequest, which only pyOpenSSL shows (without it, Python's ssl always
offers the certificate). Built-in certificates: the primary's certificate is pinned on first use.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
from contextlib import closing
from dataclasses import dataclass
from typing import Callable

from cryptography import x509

from certkit import keychoice
from certkit.certs import describe
from certkit.jre import Validator, ValidatorError
from certkit.jsse import auth_type, java_reason
from certkit.openssl import MOVING_WRITE_BUFFER, SSL, OpenSSLSocket
from certkit.tls import load_identity
from . import proto
from .builtin import UNKNOWN_CERT_ALERTS, BuiltinIdentity, PinMismatch

try:
    from OpenSSL.SSL import _ffi, _lib  # the bindings pyOpenSSL uses, for the client certificate callback
    _lib.SSL_CTX_set_cert_cb  # noqa: B018 - without it the certificate choice cannot be made
except (ImportError, AttributeError):  # hosts without pyOpenSSL (unit tests); the images have python3-openssl
    SSL = None

BACKOFF = (1, 2, 4, 8, 10)
PENDING_RETRY = 2
CONNECT_SECONDS = 5
HANDSHAKE_SECONDS = 5.0


class SetupError(Exception):
    """Local configuration the endpoint cannot start a session with."""


class Refused(proto.ProtocolError):
    """The primary completed TLS but refused the endpoint (its reason is the message)."""


class NotTrusted(Exception):
    """The JRE refused the primary's certificate; the message is the reason as the JRE gives it."""


class Registered(Exception):
    """A built-in endpoint just registered its certificate: connect again at once."""


@dataclass(frozen=True)
class Identity:
    """What one attempt with trusted certificates needs; read afresh for every attempt."""
    name: str                        # announced in hello
    key: object                      # the private key of chain[0]
    chain: list[x509.Certificate]    # as the store holds it and the endpoint sends it, leaf first
    anchors: list[x509.Certificate]  # what the primary's chain is judged against
    workdir: str                     # private folder key files pass through (Python's ssl wants files)


# --- the primary's chain, judged by the JRE --------------------------------------------------------

def judge_primary(tls, identity: Identity, host: str, validator: Callable[[], Validator]) -> dict:
    """The facts the session reports about the primary, once the JRE has accepted its chain.

    As a Java client: checkServerTrusted on the chain as sent, then HTTPS endpoint
    identification of the configured host name. NotTrusted carries the JRE's reason."""
    chain = sent_chain(tls)
    if not chain:
        raise NotTrusted("the primary sent no certificate")
    kx = auth_type(tls.version(), (tls.cipher() or (None,))[0])
    try:
        jre = validator()
        verdict = jre.judge(chain, identity.anchors, "server", host=host, auth_type=kx)
    except ValidatorError as exc:
        raise SetupError(f"the primary's certificate cannot be judged: {exc}") from None
    if not verdict.ok:
        raise NotTrusted(jre.refusal(verdict))
    return {**describe(chain[0]), "verified": True, "anchor": verdict.anchor}


# --- trusted TLS: nothing verified in the handshake, the certificate offered as Java would ---------

def sent_chain(tls) -> list[x509.Certificate]:
    """The primary's chain as it was sent, leaf first (on Python's ssl before 3.13: the leaf alone)."""
    if hasattr(tls, "get_unverified_chain"):
        ders = tls.get_unverified_chain() or []
    else:
        der = tls.getpeercert(binary_form=True)
        ders = [der] if der else []
    return [x509.load_der_x509_certificate(bytes(der)) for der in ders]


def connect_trusted(host: str, port: int, identity: Identity, note: Callable[[str], None]):
    """A TLS socket to the primary, handshake done, nothing verified yet (the JRE judges next)."""
    raw = socket.create_connection((host, port), timeout=CONNECT_SECONDS)
    try:
        if SSL is None:
            return _stdlib_connect(raw, host, identity)
        return _connect_openssl(raw, host, identity, note)
    except BaseException:
        raw.close()
        raise


def _stdlib_connect(raw: socket.socket, host: str, identity: Identity) -> ssl.SSLSocket:
    """Without pyOpenSSL: Python's ssl cannot show the CertificateRequest, so the certificate is always offered."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # the JRE checks the host name, right after the handshake
    ctx.verify_mode = ssl.CERT_NONE
    load_identity(ctx, identity.key, identity.chain, identity.workdir)
    raw.settimeout(HANDSHAKE_SECONDS)
    return ctx.wrap_socket(raw, server_hostname=host)


def _openssl_context(extra_chain: list[x509.Certificate]) -> "SSL.Context":
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_mode(MOVING_WRITE_BUFFER)
    ctx.set_verify(SSL.VERIFY_NONE)  # the JRE judges the chain, right after the handshake
    for cert in extra_chain:  # sent after the leaf, once a leaf is chosen
        ctx.add_extra_chain_cert(cert)
    return ctx


class _CertificateChoice:
    """Java's key manager inside one handshake. OpenSSL asks for the client certificate right after
    reading the CertificateRequest (its cert_cb, under TLS 1.2 and 1.3 alike); the CA names listed
    there decide whether the leaf is set. pyOpenSSL has no public hook for that moment (its info
    callback comes too late under TLS 1.2), so the callback is set through the OpenSSL bindings
    pyOpenSSL itself uses."""

    def __init__(self, identity: Identity, note: Callable[[str], None]):
        self.identity, self.note = identity, note
        self.conn: SSL.Connection | None = None
        self.offered = False
        self.failure: Exception | None = None
        self.context = _openssl_context(identity.chain[1:])
        self._callback = _ffi.callback("int (*)(SSL *, void *)", self._certificate_wanted)
        _lib.SSL_CTX_set_cert_cb(self.context._context, self._callback, _ffi.NULL)

    def _certificate_wanted(self, _ssl, _arg) -> int:
        try:
            self._choose()
        except Exception as exc:  # noqa: BLE001 - nothing may cross OpenSSL's C callback; raised after the handshake
            self.failure = exc
            return 0  # OpenSSL ends the handshake
        return 1

    def _choose(self) -> None:
        ca_names = [keychoice.name_from_der(name.der()) for name in self.conn.get_client_ca_list()]
        leaf = self.identity.chain[0]
        if keychoice.choose([self.identity.chain], ca_names) is None:
            self.note(f"No certificate sent to the primary: it accepts certificates issued by "
                      f"{'; '.join(n.rfc4514_string() for n in ca_names)}, and the chain of "
                      f"{leaf.subject.rfc4514_string()} names none of them as issuer")
            return
        self.conn.use_certificate(leaf)
        self.conn.use_privatekey(self.identity.key)
        self.offered = True

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise proto.ProtocolError(f"the primary's certificate request cannot be read: {self.failure}")


def _connect_openssl(raw: socket.socket, host: str, identity: Identity, note: Callable[[str], None]) -> OpenSSLSocket:
    choice = _CertificateChoice(identity, note)
    conn = choice.conn = SSL.Connection(choice.context, raw)
    conn.set_connect_state()
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # SNI for a host name only, as Java sends it
        conn.set_tlsext_host_name(host.encode("idna"))
    sock = OpenSSLSocket(raw, conn, HANDSHAKE_SECONDS)
    sock.choice = choice  # keeps the callback alive as long as the connection
    try:
        sock.do_handshake()
    except OSError:
        choice.raise_failure()  # the cause, when the choice itself failed
        raise
    choice.raise_failure()
    return sock


# --- sessions ---------------------------------------------------------------------------------------

class Session:
    def __init__(self, *, host: str, port: int, role: str, state, log: logging.Logger,
                 stop: threading.Event, builtin: BuiltinIdentity | None = None,
                 trusted: Callable[[], Identity] | None = None,
                 check_peer: Callable[[list, list], None] | None = None,
                 validator: Callable[[], Validator] | None = None):
        if (builtin is None) == (trusted is None) or (trusted is not None and validator is None):
            raise ValueError("a session uses built-in certificates, or trusted ones and a validator")
        self.host, self.port, self.role = host, port, role
        self.state, self.log, self.stop = state, log, stop
        self.builtin, self.trusted = builtin, trusted
        self.check_peer = check_peer  # e.g. an OCSP check of the primary's chain; raises Refused
        self.validator = validator
        self._just_registered = False
        self._last_note: str | None = None

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
            except NotTrusted as exc:
                self.fail("disconnected", str(exc))
            except (OSError, proto.ProtocolError) as exc:
                self.fail("disconnected", java_reason(exc, self.java_version()))
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
        with socket.create_connection((self.host, self.port), timeout=CONNECT_SECONDS) as raw:
            with ctx.wrap_socket(raw, server_hostname=self.host) as tls:
                self.builtin.check_server(tls.getpeercert(binary_form=True))
                proto.send(tls, self.builtin.register_message(self.role))
                tls.settimeout(3 * proto.HEARTBEAT_SECONDS)
                answer = proto.Reader(tls).read() or {}
        if answer.get("type") != "registered" or "endpoint_id" not in answer:
            raise Refused(f"registration refused by the primary: {answer.get('reason')}")
        self.log.info("Registered the built-in certificate with the primary as endpoint %s (%s)", answer["endpoint_id"],
                      "trusted" if answer.get("trusted") else "not trusted yet: an administrator must trust it")

    def java_version(self) -> str | None:
        """The JRE whose words a failure is told in (trusted certificates; its validator's JRE)."""
        return self.validator().java_version if self.validator is not None else None

    def fail(self, state: str, reason: str) -> None:
        if (self.state.data["state"], self.state.data["reason"]) != (state, reason):
            self.log.warning("Connection to %s:%d failed: %s", self.host, self.port, reason)
        self.state.set(state, reason)

    def note(self, message: str) -> None:
        """A warning about the attempt (logged once while it stays the same)."""
        if message != self._last_note:
            self.log.warning("%s", message)
            self._last_note = message

    def probe(self) -> tuple[bool, str]:
        """One attempt, as an installer's "test the connection": (ok, what happened)."""
        try:
            try:
                peer = self.connect_once(keep_alive=False)
            except Registered:
                peer = self.connect_once(keep_alive=False)
            return True, f"connected to {self.host}:{self.port}; server certificate {peer['subject']} issued by {peer['issuer']}, verified"
        except (SetupError, PinMismatch, Registered, NotTrusted) as exc:
            return False, str(exc)
        except (OSError, proto.ProtocolError) as exc:
            return False, java_reason(exc, self.java_version())

    def open(self) -> tuple[object, str, dict]:
        """(TLS socket, announced name, facts about the primary): handshake done, primary judged, nothing sent."""
        if self.builtin is not None:
            return self._open_builtin()
        identity = self.trusted()
        tls = connect_trusted(self.host, self.port, identity, self.note)
        try:
            peer = judge_primary(tls, identity, self.host, self.validator)
            if self.check_peer:
                self.check_peer(sent_chain(tls), identity.anchors)
        except BaseException:
            tls.close()  # refused: closed without a byte of the application protocol
            raise
        return tls, identity.name, peer

    def _open_builtin(self) -> tuple[ssl.SSLSocket, str, dict]:
        ctx, name = self.builtin.context()
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_SECONDS)
        tls = raw
        try:
            tls = ctx.wrap_socket(raw, server_hostname=self.host)
            der = tls.getpeercert(binary_form=True)
            peer = {**describe(x509.load_der_x509_certificate(der)), "verified": self.builtin.check_server(der)}
        except BaseException:
            tls.close()
            raise
        return tls, name, peer

    def connect_once(self, keep_alive: bool = True) -> dict:
        tls, name, peer = self.open()
        with closing(tls):
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
            how = f"verified up to {peer['anchor']}" if peer.get("anchor") else "verified"
            self.log.info("Connected to %s:%d as %s %s; server certificate %s issued by %s, %s (%s)",
                          self.host, self.port, self.role, name, peer["subject"], peer["issuer"], how, tls.version())
            self.state.set("connected", None, peer={"host": self.host, **peer})
            self.state.ack()
            while not self.stop.is_set():
                proto.send(tls, {"type": "heartbeat"})
                if reader.read() is None:
                    raise proto.ProtocolError("the primary closed the session")
                self.state.ack()
                self.stop.wait(proto.HEARTBEAT_SECONDS)
            return peer
