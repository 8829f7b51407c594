"""Key and trust files as an admin makes them with the openssl CLI: PKCS12 exports, PEM bundles, DER.

The PKCS12 files are what ``openssl pkcs12 -export`` writes (openssl 3 defaults: AES-256-CBC,
PBKDF2, a SHA-256 MAC), the key's certificate first, then the others in the order given.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

OPENSSL = shutil.which("openssl")
TIMEOUT = 60


class OpenSSLError(RuntimeError):
    pass


def _openssl(*args: str) -> subprocess.CompletedProcess:
    if OPENSSL is None:
        raise OpenSSLError("openssl is not on PATH")
    proc = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        raise OpenSSLError(f"openssl {args[0]} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def export(out: Path, key: Path, certs: Sequence[Path], password: str, name: str | None = None) -> Path:
    """``openssl pkcs12 -export``: ``key`` with ``certs`` (the key's own among them, the rest in this order)."""
    pem = out.with_suffix(".in.pem")
    pem.write_text("".join(Path(c).read_text() for c in certs))
    _openssl("pkcs12", "-export", "-inkey", str(key), "-in", str(pem), "-passout", f"pass:{password}",
             *(["-name", name] if name else []), "-out", str(out))
    return out


def bag_subjects(pfx: Path, password: str) -> list[str]:
    """Subjects of the certificates in ``pfx``, in file order (as ``openssl pkcs12 -info`` lists them)."""
    text = _openssl("pkcs12", "-in", str(pfx), "-nokeys", "-passin", f"pass:{password}").stdout
    return [line[len("subject="):].strip() for line in text.splitlines() if line.startswith("subject=")]


def bundle(out: Path, certs: Sequence[Path]) -> Path:
    """Several PEM certificates in one file, as a CA bundle is handed out."""
    out.write_text("".join(Path(c).read_text() for c in certs))
    return out


def der(out: Path, cert: Path) -> Path:
    """The same certificate in DER (a ``.cer`` file as Windows exports it)."""
    _openssl("x509", "-in", str(cert), "-outform", "DER", "-out", str(out))
    return out
