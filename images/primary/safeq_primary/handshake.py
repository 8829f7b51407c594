"""The primary's TLS layer: the handshake stays open while the JRE judges the endpoint's chain.

OpenSSL verifies nothing itself (its trust store is empty). Its verify callback sees the
chain the endpoint sent, lined up from the leaf, and at the leaf hands it to the JRE
(checkClientTrusted against the anchors, as a Java server's PKIX trust manager). A refusal
fails the handshake with the alert a Java server sends for it; the endpoint never gets a
session. A chain the JRE accepted is remembered while its path is valid (certkit.verdicts):
the same endpoint reconnecting is not judged again. The CertificateRequest names the anchors'
subjects, as a Java server does, so a Java endpoint can pick its certificate. No certificate
where one is required is refused by OpenSSL itself, with the alert JRE 21 sends
(certificate_required under TLS 1.3, handshake_failure under TLS 1.2).
"""
from __future__ import annotations

import socket
import ssl
import warnings
from typing import Sequence

from cryptography import x509

from certkit.inhandshake import Judge, Judging, JudgedVerify
from certkit.jre import ValidatorError, Verdict
from certkit.jsse import EMPTY_CHAIN, handshake_message
from certkit.openssl import MOVING_WRITE_BUFFER, SSL, OpenSSLSocket

NO_CERTIFICATE = "peer did not return a certificate"  # OpenSSL's reason
EMPTY = Verdict(ok=False, exception="javax.net.ssl.SSLHandshakeException", message=EMPTY_CHAIN,
                certificate_exception=True)


class HandshakeRefused(ssl.SSLError):
    """The JRE refused the endpoint's chain inside the handshake; ``verdict`` says why."""

    def __init__(self, verdict: Verdict, alert: str):
        super().__init__(1, verdict.reason)
        self.verdict, self.alert = verdict, alert

    def logged(self, java_version: str | None) -> str:
        """The refusal as a Java server of that version logs it ("(certificate_unknown) PKIX ..." on 21)."""
        return handshake_message(self.alert, self.verdict.reason, java_version)


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
        self._verify = JudgedVerify(ctx, SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if require else 0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.set_client_ca_list([_name(a) for a in self.anchors])
        self.context = ctx

    def accept(self, raw: socket.socket, timeout: float) -> OpenSSLSocket:
        """The handshake on ``raw``, within ``timeout`` seconds; the endpoint's chain judged.

        Raises HandshakeRefused (the JRE said no), ValidatorError (the JRE could not be asked:
        the handshake fails closed) or the OSError Python's ssl would raise."""
        conn = SSL.Connection(self.context, raw)
        conn.set_accept_state()
        judging = self._verify.attach(conn, self.judge)
        tls = OpenSSLSocket(raw, conn, timeout)
        try:
            tls.do_handshake()
        except OSError as exc:
            _raise_verdict(judging)
            if getattr(exc, "reason", None) == NO_CERTIFICATE:
                raise HandshakeRefused(EMPTY, _no_certificate_alert(conn)) from None
            raise
        finally:
            self._verify.detach(conn)
        _raise_verdict(judging)
        sent = tls.has_peer_certificate()
        if sent and judging.verdict is None:  # the callback never reached the leaf: fail closed
            raise ValidatorError("the endpoint's chain was not judged in the handshake")
        tls.judged = judging.verdict
        tls.judged_chain = judging.sent if sent else []
        return tls


def _no_certificate_alert(conn) -> str:
    """What OpenSSL sent for a missing client certificate, as JRE 21 does."""
    return "certificate_required" if conn.get_protocol_version_name() == "TLSv1.3" else "handshake_failure"


def _raise_verdict(judging: Judging) -> None:
    if judging.failure is not None:
        raise judging.failure
    if judging.refused:
        raise HandshakeRefused(judging.verdict, judging.alert)


def _name(cert: x509.Certificate):
    from OpenSSL import crypto
    with warnings.catch_warnings():  # X509Name is the only type set_client_ca_list() takes
        warnings.simplefilter("ignore", DeprecationWarning)
        return crypto.X509.from_cryptography(cert).get_subject()
