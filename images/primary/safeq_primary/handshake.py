"""The primary's TLS layer: the handshake stays open while the JRE judges the endpoint's chain.

OpenSSL verifies nothing itself (its trust store is empty). Its verify callback sees the
chain the endpoint sent, lined up from the leaf, and at the leaf hands it to the JRE
(checkClientTrusted against the anchors, as a Java server's PKIX trust manager). A refusal
fails the handshake with the alert a Java server sends for it; the endpoint never gets a
session. The CertificateRequest names the anchors' subjects, as a Java server does, so a
Java endpoint can pick its certificate. No certificate where one is required is refused by
OpenSSL itself, with the alert JRE 21 sends (certificate_required under TLS 1.3,
handshake_failure under TLS 1.2).
"""
from __future__ import annotations

import socket
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

from cryptography import x509

from certkit.jre import ValidatorError, Verdict
from certkit.jsse import EMPTY_CHAIN, handshake_message, refusal_alert
from certkit.openssl import MOVING_WRITE_BUFFER, SSL, OpenSSLSocket

try:
    from OpenSSL.SSL import _ffi, _lib  # the bindings pyOpenSSL uses
except ImportError:  # hosts without pyOpenSSL; the images have python3-openssl
    _ffi = _lib = None

# The X509 verify error left in the store picks the alert OpenSSL sends (ssl_x509err2alert):
# UNSPECIFIED -> internal_error; an error its table does not list, such as 45
# (UNSUPPORTED_EXTENSION_FEATURE), -> certificate_unknown. The refusal's reason is the JRE's.
X509_V_OK, X509_V_ERR_UNSPECIFIED, X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE = 0, 1, 45
X509_REFUSED = {"certificate_unknown": X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE,
                "internal_error": X509_V_ERR_UNSPECIFIED}
NO_CERTIFICATE = "peer did not return a certificate"  # OpenSSL's reason
EMPTY = Verdict(ok=False, exception="javax.net.ssl.SSLHandshakeException", message=EMPTY_CHAIN,
                certificate_exception=True)

# verdict(chain as sent, leaf first) -> the JRE's Verdict
Judge = Callable[[list[x509.Certificate]], Verdict]


class HandshakeRefused(ssl.SSLError):
    """The JRE refused the endpoint's chain inside the handshake; ``verdict`` says why."""

    def __init__(self, verdict: Verdict, alert: str):
        super().__init__(1, verdict.reason)
        self.verdict, self.alert = verdict, alert

    def logged(self, java_version: str | None) -> str:
        """The refusal as a Java server of that version logs it ("(certificate_unknown) PKIX ..." on 21)."""
        return handshake_message(self.alert, self.verdict.reason, java_version)


@dataclass
class _Judging:
    """What one handshake learned in the verify callback."""
    judge: Judge
    chain: dict[int, x509.Certificate] = field(default_factory=dict)  # depth -> certificate
    verdict: Verdict | None = None
    failure: Exception | None = None  # the JRE could not be asked


class ServerTLS:
    """One server context: the identity served, the anchors named and judged against.

    ``require`` (trusted-ca policy): an endpoint must send a certificate. Without it (built-in
    policy) an endpoint may register without one; one it sends is still judged."""

    def __init__(self, key, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate],
                 judge: Judge, *, require: bool):
        self.judge, self.require = judge, require
        self.anchors = list(anchors)
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_mode(MOVING_WRITE_BUFFER)
        ctx.use_certificate(chain[0])
        ctx.use_privatekey(key)
        for cert in chain[1:]:
            ctx.add_extra_chain_cert(cert)
        ctx.check_privatekey()
        mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if require else 0)
        # pyOpenSSL's own set_verify() hides the store context, so the error (which picks the
        # alert) could not be set; the callback is set through the bindings pyOpenSSL uses.
        self._judging: dict[int, _Judging] = {}
        self._callback = _ffi.callback("int (*)(int, X509_STORE_CTX *)", self._verify)
        _lib.SSL_CTX_set_verify(ctx._context, mode, self._callback)
        ctx.set_verify_depth(16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.set_client_ca_list([_name(a) for a in self.anchors])
        self.context = ctx

    def accept(self, raw: socket.socket, timeout: float) -> OpenSSLSocket:
        """The handshake on ``raw``, within ``timeout`` seconds; the endpoint's chain judged.

        Raises HandshakeRefused (the JRE said no), ValidatorError (the JRE could not be asked:
        the handshake fails closed) or the OSError Python's ssl would raise."""
        judging = _Judging(self.judge)
        conn = SSL.Connection(self.context, raw)
        conn.set_accept_state()
        key = _address(conn._ssl)
        self._judging[key] = judging
        tls = OpenSSLSocket(raw, conn, timeout)
        try:
            tls.do_handshake()
        except OSError as exc:
            _raise_verdict(judging)
            if getattr(exc, "reason", None) == NO_CERTIFICATE:
                raise HandshakeRefused(EMPTY, _no_certificate_alert(conn)) from None
            raise
        finally:
            del self._judging[key]
        _raise_verdict(judging)
        sent = tls.peer_chain()
        if sent and judging.verdict is None:  # the callback never reached the leaf: fail closed
            raise ValidatorError("the endpoint's chain was not judged in the handshake")
        tls.judged = judging.verdict
        tls.judged_chain = [judging.chain[d] for d in sorted(judging.chain)] if sent else []
        return tls

    def _verify(self, ok: int, store) -> int:
        """OpenSSL's verify callback, once per certificate and problem, from the top of the chain down.

        OpenSSL's own findings are set aside: the JRE decides, once, when OpenSSL signals the
        leaf done (depth 0, ok). Nothing may cross this C callback: a Python error refuses."""
        try:
            ssl_ptr = _lib.X509_STORE_CTX_get_ex_data(store, _lib.SSL_get_ex_data_X509_STORE_CTX_idx())
            judging = self._judging[_address(ssl_ptr)]
            depth = _lib.X509_STORE_CTX_get_error_depth(store)
            judging.chain[depth] = _certificate(_lib.X509_STORE_CTX_get_current_cert(store))
            error = _decide(judging, depth, ok)
        except Exception as exc:  # noqa: BLE001 - raised after the handshake instead
            judging = locals().get("judging")
            if judging is not None and judging.failure is None:
                judging.failure = exc
            error = X509_V_ERR_UNSPECIFIED
        _lib.X509_STORE_CTX_set_error(store, error)
        return 1 if error == X509_V_OK else 0


def _no_certificate_alert(conn) -> str:
    """What OpenSSL sent for a missing client certificate, as JRE 21 does."""
    return "certificate_required" if conn.get_protocol_version_name() == "TLSv1.3" else "handshake_failure"


def _raise_verdict(judging: _Judging) -> None:
    if judging.failure is not None:
        raise judging.failure
    if judging.verdict is not None and not judging.verdict.ok:
        raise HandshakeRefused(judging.verdict, refusal_alert(judging.verdict.certificate_exception))


def _decide(judging: _Judging, depth: int, ok: int) -> int:
    """The X509 error to leave in the store: X509_V_OK to go on, else the one whose alert a
    Java server would send (certificate_unknown for a refused chain, internal_error without a verdict)."""
    if depth == 0 and ok and judging.verdict is None and judging.failure is None:
        chain = [judging.chain[d] for d in sorted(judging.chain)]
        try:
            judging.verdict = judging.judge(chain)
        except ValidatorError as exc:  # no verdict: refuse, and say why after the handshake
            judging.failure = exc
    if judging.failure is not None:
        return X509_V_ERR_UNSPECIFIED
    if judging.verdict is not None and not judging.verdict.ok:
        return X509_REFUSED[refusal_alert(judging.verdict.certificate_exception)]
    return X509_V_OK


def _certificate(x509_ptr) -> x509.Certificate:
    from OpenSSL import crypto
    _lib.X509_up_ref(x509_ptr)  # the store keeps its reference; ours is freed with the wrapper
    return crypto.X509._from_raw_x509_ptr(x509_ptr).to_cryptography()


def _address(ptr) -> int:
    return int(_ffi.cast("uintptr_t", ptr))


def _name(cert: x509.Certificate):
    from OpenSSL import crypto
    with warnings.catch_warnings():  # X509Name is the only type set_client_ca_list() takes
        warnings.simplefilter("ignore", DeprecationWarning)
        return crypto.X509.from_cryptography(cert).get_subject()
