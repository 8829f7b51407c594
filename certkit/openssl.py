"""A pyOpenSSL connection with the part of ssl.SSLSocket's interface the lab uses.

pyOpenSSL (Debian's python3-openssl, in the images) shows what Python's ssl hides: the CA
names of a CertificateRequest, and the peer's chain while the handshake is still open, so
the JRE can judge it before the handshake ends. Failures are raised as the OSError or
ssl.SSLError Python's ssl would raise for the same event, so callers word them one way.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import time

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

try:
    from OpenSSL import SSL
except ImportError:  # hosts without pyOpenSSL; the images have python3-openssl
    SSL = None

EOF = "unexpected eof while reading"  # OpenSSL's words for a peer gone without close_notify
# SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: a write retried after WANT_WRITE may come from another buffer.
MOVING_WRITE_BUFFER = 0x2


class TLSFailure(ssl.SSLError):
    """A TLS failure pyOpenSSL reported, shaped as Python's ssl reports one: ``reason`` is OpenSSL's."""

    def __init__(self, reason: str):
        super().__init__(1, reason)  # errno 1 as Python's ssl gives SSL_ERROR_SSL; str() is the reason
        self.reason = reason


def failure(exc: Exception) -> OSError:
    """pyOpenSSL's exception as the OSError Python's ssl would raise for the same event."""
    if isinstance(exc, SSL.SysCallError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1
        return OSError(code, os.strerror(code)) if code > 0 else TLSFailure(EOF)
    if isinstance(exc, SSL.ZeroReturnError):
        return ConnectionAbortedError(errno.ECONNABORTED, "the peer closed the TLS session")
    queue = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
    reasons = [entry[2] for entry in queue if isinstance(entry, tuple) and len(entry) == 3 and entry[2]]
    return TLSFailure(reasons[0] if reasons else str(exc) or exc.__class__.__name__)


class OpenSSLSocket:
    """The socket underneath is non-blocking: every operation waits with select() up to the
    timeout (settimeout), so no read, write or handshake blocks without a deadline."""

    def __init__(self, raw: socket.socket, conn: "SSL.Connection", timeout: float | None):
        self.raw, self._conn, self._timeout = raw, conn, timeout
        raw.setblocking(False)

    @property
    def connection(self) -> "SSL.Connection":
        return self._conn

    def do_handshake(self) -> None:
        self._io(self._conn.do_handshake)

    def _io(self, operation, *args):
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            try:
                return operation(*args)
            except SSL.WantReadError:
                readable, writable = [self.raw], []
            except SSL.WantWriteError:
                readable, writable = [], [self.raw]
            except SSL.Error as exc:
                raise failure(exc) from None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("The operation timed out")
            select.select(readable, writable, [], remaining)

    def recv(self, size: int) -> bytes:
        try:
            return self._io(self._conn.recv, size)
        except TLSFailure as exc:
            if exc.reason == EOF:
                return b""  # closed without close_notify: end of stream, as Python's ssl reports it
            raise
        except ConnectionAbortedError:
            return b""  # close_notify

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._io(self._conn.send, view):]

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def version(self) -> str | None:
        name = self._conn.get_protocol_version_name()
        return None if name == "Unknown" else name

    def cipher(self) -> tuple[str, str, int]:
        return self._conn.get_cipher_name(), self._conn.get_cipher_version(), self._conn.get_cipher_bits()

    def server_name(self) -> str | None:
        """The SNI the client sent (server side)."""
        name = self._conn.get_servername()
        return name.decode("idna") if name else None

    def get_unverified_chain(self) -> list[bytes]:
        return [c.public_bytes(Encoding.DER) for c in self.peer_chain()]

    def has_peer_certificate(self) -> bool:
        """Whether the peer sent a certificate (nothing converted: asked at every handshake)."""
        return self._conn.get_peer_certificate() is not None

    def peer_chain(self) -> list[x509.Certificate]:
        """The certificates the peer sent, leaf first (OpenSSL leaves the leaf out on the server side)."""
        chain = list(self._conn.get_peer_cert_chain(as_cryptography=True) or [])
        leaf = self._conn.get_peer_certificate(as_cryptography=True)
        if leaf is not None and (not chain or chain[0] != leaf):
            chain.insert(0, leaf)
        return chain

    def shutdown(self, how: int) -> None:
        """Wake a thread blocked on this connection (the socket's own shutdown, not TLS's)."""
        self.raw.shutdown(how)

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()
