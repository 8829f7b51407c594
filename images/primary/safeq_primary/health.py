"""`safeq-admin health`, the primary's healthcheck: the doc's own check, `openssl s_client`, shows the
certificate the policy calls for. Light on purpose (no crypto imports): it runs every few seconds in
the primary while a lab starts."""
from __future__ import annotations

import base64
import hashlib
import re
import subprocess

from certkit import fsio
from . import paths

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def served_certificate(host: str) -> bytes | None:
    """The DER of what `openssl s_client -servername HOST -connect localhost:2560` shows."""
    try:
        proc = subprocess.run(["openssl", "s_client", "-servername", host, "-connect", f"localhost:{paths.PORT}"],
                              input=b"", capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    m = _PEM.search(proc.stdout)
    return base64.b64decode(b"".join(m.group(1).split())) if m else None


def fingerprint(der: bytes) -> str:
    """SHA-256, colon-separated upper-case hex (as certkit.certs.fingerprint and keytool print it)."""
    return hashlib.sha256(der).digest().hex(":").upper()


def health() -> tuple[bool, str]:
    status = fsio.read_json(paths.STATUS)
    if not status:
        return False, "server has not started"
    if status["state"] == "fallback":
        return False, f"serving the fallback localhost certificate: {status['keystore']['reason']}"
    expected = status["serving"]
    host = expected["subject"].split("CN=", 1)[-1].split(",")[0]
    der = served_certificate(host)
    if der is None:
        return False, f"nothing answers TLS on port {paths.PORT}"
    if fingerprint(der) != expected["sha256"]:
        from cryptography import x509  # only to name what is served instead
        from certkit.certs import describe
        subject = describe(x509.load_der_x509_certificate(der))["subject"]
        return False, f"port {paths.PORT} serves {subject}, not the configured certificate"
    return True, f"serving {expected['subject']} issued by {expected['issuer']} ({status['state']})"


def main() -> int:
    ok, why = health()
    print(why)
    return 0 if ok else 1
