"""Handing keys to Python's ssl (built-in certificates; trusted ones go through certkit.openssl)."""
from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from .certs import key_pem, pem
from .fsio import SECRET_FILE_MODE, write_new


def load_identity(ctx: ssl.SSLContext, key, chain, workdir: str) -> None:
    """ssl wants files; write them 0600 to a private temp dir and remove them at once."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        cert_file, key_file = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        cert_file.write_text(pem(chain))
        write_new(key_file, key_pem(key), SECRET_FILE_MODE)
        ctx.load_cert_chain(cert_file, key_file)
