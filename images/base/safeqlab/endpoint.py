"""The endpoint side of the internal communication (gateway and client stand-ins):
connect over mutual TLS, say hello, keep the session alive, reconnect with backoff.

Trusted certificates, as a Java endpoint: inside the handshake the JRE judges the chain the
primary sent (PKIX and HTTPS host name identification, certkit.inhandshake); a refusal fails
the handshake with the alert a Java client sends, before any certificate of ours is sent. The
certificate offered is chosen as Java's key manager chooses it (certkit.keychoice), from the CA
names of the primary's CertificateRequest, which pyOpenSSL shows. Built-in certificates: the
primary's certificate is pinned on first use.
"""
from __future__ import annotations

import logging
import random
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
from certkit.inhandshake import Judging, JudgedVerify
from certkit.jsse import auth_type, ecdhe_auth_type, java_reason, java_sni
from certkit.openssl import MOVING_WRITE_BUFFER, SSL, OpenSSLSocket
from . import proto
from .builtin import UNKNOWN_CERT_ALERTS, BuiltinIdentity, PinMismatch

try:
    from OpenSSL.SSL import _ffi, _lib  # the bindings pyOpenSSL uses, for the client certificate callback
    _lib.SSL_CTX_set_cert_cb  # noqa: B018 - without it the certificate choice cannot be made
except (ImportError, AttributeError):  # hosts without pyOpenSSL (unit tests); the images have python3-openssl
    SSL = None

BACKOFF = (0.5, 0.5, 1, 2, 4, 8, 10)  # short first retries: an endpoint started while the primary restarts
PENDING_RETRY = 2


def retry_delay(base: float, rng: Callable[[], float] = random.random) -> float:
    """Between half and all of ``base`` seconds: after a primary restart, hundreds of endpoints spread
    their reconnections instead of all arriving in the same instant."""
    return base * (0.5 + 0.5 * rng())
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


# --- trusted TLS: the JRE judges the primary inside the handshake, the certificate offered as Java would

def connect_trusted(host: str, port: int, identity: Identity, note: Callable[[str], None],
                    validator: Callable[[], Validator]) -> tuple[OpenSSLSocket, dict]:
    """A TLS socket to the primary, handshake done and the primary's chain accepted by the JRE
    (checkServerTrusted, then HTTPS host name identification, as a Java client does while the
    handshake is open), and the facts the session reports about the primary.

    Raises NotTrusted with the JRE's reason (the handshake failed with the alert a Java client
    sends; no certificate of ours was sent), SetupError when the JRE cannot be asked."""
    if SSL is None:
        raise SetupError("pyOpenSSL (Debian's python3-openssl) is needed to judge the primary inside the handshake")
    try:
        jre = validator()
    except ValidatorError as exc:
        raise SetupError(f"the primary's certificate cannot be judged: {exc}") from None
    raw = socket.create_connection((host, port), timeout=CONNECT_SECONDS)
    try:
        sock, judging = _connect_openssl(raw, host, identity, note, jre)
    except BaseException:
        raw.close()
        raise
    if judging.verdict is None:  # the callback never reached the leaf: fail closed
        sock.close()
        raise SetupError("the primary's chain was not judged in the handshake")
    sent = judging.sent
    sock.sent_chain = sent
    return sock, {**describe(sent[0]), "verified": True, "anchor": judging.verdict.anchor}


def _openssl_context(extra_chain: list[x509.Certificate]) -> "SSL.Context":
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_mode(MOVING_WRITE_BUFFER)
    # TLS 1.2: ECDHE suites only (as a Java client prefers them), so the key exchange the JRE is
    # told follows from the primary's key (jsse.ecdhe_auth_type).
    ctx.set_cipher_list(b"ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES")
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
        self.verify = JudgedVerify(self.context, SSL.VERIFY_PEER)
        self._callback = _ffi.callback("int (*)(SSL *, void *)", self._certificate_wanted)
        _lib.SSL_CTX_set_cert_cb(self.context._context, self._callback, _ffi.NULL)
        self.context._safeq_certificate_choice = self  # alive as long as a connection of the context

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


def _connect_openssl(raw: socket.socket, host: str, identity: Identity, note: Callable[[str], None],
                     jre: Validator) -> tuple[OpenSSLSocket, Judging]:
    choice = _CertificateChoice(identity, note)
    conn = choice.conn = SSL.Connection(choice.context, raw)
    conn.set_connect_state()
    sni = java_sni(host)
    if sni:  # as a Java client: a dotted host name only
        conn.set_tlsext_host_name(sni.encode("idna"))

    def judge(chain: list[x509.Certificate]):
        version, cipher = conn.get_protocol_version_name(), conn.get_cipher_name()
        # TLS 1.2: OpenSSL names the suite only after the chain is judged.
        kx = auth_type(version, cipher) if cipher or version != "TLSv1.2" else ecdhe_auth_type(chain[0])
        return jre.judge(chain, identity.anchors, "server", host=host, auth_type=kx)
    judging = choice.verify.attach(conn, judge)
    sock = OpenSSLSocket(raw, conn, HANDSHAKE_SECONDS)
    sock.choice = choice  # keeps the callbacks alive as long as the connection
    try:
        sock.do_handshake()
    except OSError:
        _raise_judging(judging, jre)
        choice.raise_failure()  # the cause, when the choice itself failed
        raise
    finally:
        choice.verify.detach(conn)
    _raise_judging(judging, jre)
    choice.raise_failure()
    return sock, judging


def _raise_judging(judging: Judging, jre: Validator) -> None:
    if isinstance(judging.failure, ValidatorError):
        raise SetupError(f"the primary's certificate cannot be judged: {judging.failure}")
    if judging.failure is not None:
        raise judging.failure
    if judging.refused:
        raise NotTrusted(jre.refusal(judging.verdict))


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
                delay = retry_delay(PENDING_RETRY)  # waiting for an administrator: ask again soon
            except NotTrusted as exc:
                self.fail("disconnected", str(exc))
            except (OSError, proto.ProtocolError) as exc:
                self.fail("disconnected", java_reason(exc, self.java_version()))
            except Exception as exc:  # noqa: BLE001 - a bad file or answer must not end reconnecting
                self.log.exception("Unexpected error talking to %s:%d", self.host, self.port)
                self.fail("error", f"{exc.__class__.__name__}: {exc}")
            if delay is None:
                delay = retry_delay(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
            self._just_registered = False  # one registration per attempt, not a tight loop
            self.stop.wait(delay)

    def register(self) -> None:
        ctx, _ = self.builtin.context(with_certificate=False)
        with socket.create_connection((self.host, self.port), timeout=CONNECT_SECONDS) as raw:
            with ctx.wrap_socket(raw, server_hostname=java_sni(self.host)) as tls:
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
        tls, peer = connect_trusted(self.host, self.port, identity, self.note, self.validator)
        try:
            if self.check_peer:
                self.check_peer(tls.sent_chain, identity.anchors)
        except BaseException:
            tls.close()  # refused: closed without a byte of the application protocol
            raise
        return tls, identity.name, peer

    def _open_builtin(self) -> tuple[ssl.SSLSocket, str, dict]:
        ctx, name = self.builtin.context()
        raw = socket.create_connection((self.host, self.port), timeout=CONNECT_SECONDS)
        tls = raw
        try:
            tls = ctx.wrap_socket(raw, server_hostname=java_sni(self.host))
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
