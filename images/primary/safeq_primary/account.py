"""Account settings (PKI and encryption) and the "Trusted CA certificates" list."""
from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from safeqlab import util
from safeqlab.tlsinfo import describe, fingerprint

from . import paths

DEFAULTS = {"certificate_policy": "trusted-ca"}
MAX_IMPORT = 1024 * 1024


class ImportError_(ValueError):
    pass


def settings() -> dict:
    return {**DEFAULTS, **(util.read_json(paths.SETTINGS, {}) or {})}


def load_certs(data: bytes, origin: str) -> list[x509.Certificate]:
    """PEM (one or several) or DER, as the portal accepts."""
    if len(data) > MAX_IMPORT:
        raise ImportError_(f"{origin}: file is larger than {MAX_IMPORT // 1024} KiB; export the CA certificate alone")
    if not data.strip():
        raise ImportError_(f"{origin}: file is empty")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise ImportError_(f"{origin}: not an X.509 certificate in PEM or DER form") from None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def import_ca(path: str) -> list[dict]:
    certs = load_certs(Path(path).read_bytes(), path)
    for cert in certs:
        if not is_ca(cert):
            raise ImportError_(f"{path}: {cert.subject.rfc4514_string()} is not a CA certificate "
                               "(BasicConstraints CA=true missing); import the root and intermediate CA files, not an entity certificate")
    paths.TRUSTED_CA_DIR.mkdir(parents=True, exist_ok=True)
    added = []
    for cert in certs:
        target = paths.TRUSTED_CA_DIR / (fingerprint(cert).replace(":", "").lower() + ".pem")
        target.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        added.append(describe(cert))
    return added


def trusted_cas() -> list[x509.Certificate]:
    if not paths.TRUSTED_CA_DIR.is_dir():
        return []
    out = []
    for f in sorted(paths.TRUSTED_CA_DIR.glob("*.pem")):
        out.extend(x509.load_pem_x509_certificates(f.read_bytes()))
    return out
