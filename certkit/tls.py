"""Handing keys to Python's ssl and reading what a handshake verified."""
from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from cryptography import x509

from .certs import key_pem, pem
from .fsio import SECRET_FILE_MODE, write_new


def load_identity(ctx: ssl.SSLContext, key, chain, workdir: str) -> None:
    """ssl wants files; write them 0600 to a private temp dir and remove them at once."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        cert_file, key_file = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        cert_file.write_text(pem(chain))
        write_new(key_file, key_pem(key), SECRET_FILE_MODE)
        ctx.load_cert_chain(cert_file, key_file)


def peer_chain(sock: ssl.SSLSocket) -> list[x509.Certificate]:
    """The verified chain (leaf first) where Python has it, else just the leaf.

    Never the extra certificates the peer merely sent: those prove nothing."""
    try:
        ders = sock.get_verified_chain()  # Python 3.13+
        return [x509.load_der_x509_certificate(bytes(d) if not isinstance(d, bytes) else d) for d in ders]
    except AttributeError:
        der = sock.getpeercert(binary_form=True)
        return [x509.load_der_x509_certificate(der)] if der else []
