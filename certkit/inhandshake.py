"""A verdict from the JRE inside OpenSSL's handshake, on either side of it.

OpenSSL verifies nothing itself: its verify callback sees the chain the peer sent, lined up
from the leaf, and when OpenSSL signals the leaf done (depth 0, ok) the judge (the JRE) is
asked once. A refusal fails the handshake then, with the alert a Java peer sends for it, so
nothing more is exchanged: a server refused this way never sees the client's certificate, a
client never gets a session. pyOpenSSL's own set_verify() hides the store context, and with it
the error that picks the alert, so the callback is set through the bindings pyOpenSSL uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509

from .jre import ValidatorError, Verdict
from .jsse import refusal_alert

try:
    from OpenSSL import crypto
    from OpenSSL.SSL import _ffi, _lib  # the bindings pyOpenSSL uses
except ImportError:  # hosts without pyOpenSSL; the images have python3-openssl
    crypto = _ffi = _lib = None

# The X509 verify error left in the store picks the alert OpenSSL sends (ssl_x509err2alert):
# UNSPECIFIED -> internal_error; an error its table does not list, such as 45
# (UNSUPPORTED_EXTENSION_FEATURE), -> certificate_unknown. The refusal's reason is the JRE's.
X509_V_OK, X509_V_ERR_UNSPECIFIED, X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE = 0, 1, 45
X509_REFUSED = {"certificate_unknown": X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE,
                "internal_error": X509_V_ERR_UNSPECIFIED}

Judge = Callable[[list[x509.Certificate]], Verdict]  # the chain as sent, leaf first -> the JRE's verdict


@dataclass
class Judging:
    """What one handshake learned in the verify callback."""
    judge: Judge
    chain: dict[int, x509.Certificate] = field(default_factory=dict)  # depth -> certificate
    verdict: Verdict | None = None
    failure: Exception | None = None  # the judge could not be asked

    @property
    def sent(self) -> list[x509.Certificate]:
        """The chain as OpenSSL lined it up from what the peer sent, leaf first."""
        return [self.chain[d] for d in sorted(self.chain)]

    @property
    def refused(self) -> bool:
        return self.verdict is not None and not self.verdict.ok

    @property
    def alert(self) -> str | None:
        """The alert the handshake failed with, if the judge refused."""
        return refusal_alert(self.verdict.certificate_exception) if self.refused else None


class JudgedVerify:
    """Installs the verify callback on an SSL.Context; one Judging per connection (``attach``)."""

    def __init__(self, context, mode: int):
        self._judging: dict[int, Judging] = {}
        self._callback = _ffi.callback("int (*)(int, X509_STORE_CTX *)", self._verify)
        _lib.SSL_CTX_set_verify(context._context, mode, self._callback)
        # OpenSSL calls the callback as long as a connection of this context lives; each
        # Connection holds its Context, so the Context holds the callback.
        context._safeq_judged_verify = self
        context.set_verify_depth(16)

    def attach(self, conn, judge: Judge) -> Judging:
        judging = self._judging[_address(conn._ssl)] = Judging(judge)
        return judging

    def detach(self, conn) -> None:
        self._judging.pop(_address(conn._ssl), None)

    def _verify(self, ok: int, store) -> int:
        """Once per certificate and problem, from the top of the chain down. Nothing may cross
        this C callback: a Python error refuses, and is raised after the handshake instead."""
        judging = None
        try:
            ssl_ptr = _lib.X509_STORE_CTX_get_ex_data(store, _lib.SSL_get_ex_data_X509_STORE_CTX_idx())
            judging = self._judging[_address(ssl_ptr)]
            depth = _lib.X509_STORE_CTX_get_error_depth(store)
            judging.chain[depth] = _certificate(_lib.X509_STORE_CTX_get_current_cert(store))
            error = _decide(judging, depth, ok)
        except Exception as exc:  # noqa: BLE001 - refused here, raised by the caller after the handshake
            if judging is not None and judging.failure is None:
                judging.failure = exc
            error = X509_V_ERR_UNSPECIFIED
        _lib.X509_STORE_CTX_set_error(store, error)
        return 1 if error == X509_V_OK else 0


def _decide(judging: Judging, depth: int, ok: int) -> int:
    """The X509 error to leave in the store: X509_V_OK to go on, else the one whose alert a Java
    peer would send (certificate_unknown for a refused chain, internal_error without a verdict)."""
    if depth == 0 and ok and judging.verdict is None and judging.failure is None:
        try:
            judging.verdict = judging.judge(judging.sent)
        except ValidatorError as exc:  # no verdict: refuse, and say why after the handshake
            judging.failure = exc
    if judging.failure is not None:
        return X509_V_ERR_UNSPECIFIED
    if judging.refused:
        return X509_REFUSED[judging.alert]
    return X509_V_OK


def _certificate(x509_ptr) -> x509.Certificate:
    _lib.X509_up_ref(x509_ptr)  # the store keeps its reference; ours is freed with the wrapper
    return crypto.X509._from_raw_x509_ptr(x509_ptr).to_cryptography()


def _address(ptr) -> int:
    return int(_ffi.cast("uintptr_t", ptr))
