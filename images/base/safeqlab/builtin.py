"""Built-in certificates of an endpoint (the product's default policy).

The endpoint makes its own key and self-signed certificate once and keeps them. It
trusts the primary's certificate on first use and pins it; the primary knows the
endpoint by its certificate once it has registered, and serves it only after an
administrator trusts it (or with auto-trust).
"""
from __future__ import annotations

import logging
import secrets
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certkit.certs import fingerprint, pem, write_key
from certkit.tls import load_identity
from certkit.build import self_signed

# Alerts by which a primary says it does not know our certificate (yet).
UNKNOWN_CERT_ALERTS = {"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"}


class PinMismatch(Exception):
    """The primary presents another certificate than the one pinned on first use."""


def _make(name: str):
    # A unique serialNumber in the subject: trust stores find anchors by subject, so two
    # built-in certificates of one host name (old and new) must not share one.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, secrets.token_hex(8)),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SAFEQ Cloud built-in")])
    return self_signed(subject, name, 3650, (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH))


class BuiltinIdentity:
    def __init__(self, folder: str | Path, name: str, log: logging.Logger):
        self.folder, self.name, self.log = Path(folder), name, log
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file, cert_file = self.folder / "key.pem", self.folder / "certificate.pem"
        if key_file.exists() and cert_file.exists():
            self.key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            self.cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        else:
            self.key, self.cert = _make(name)
            write_key(key_file, self.key)
            cert_file.write_text(pem([self.cert]))
            log.info("Generated built-in certificate %s (sha256 %s)", self.cert.subject.rfc4514_string(), fingerprint(self.cert))
        self.pin_file = self.folder / "primary.sha256"

    def context(self, with_certificate: bool = True) -> tuple[ssl.SSLContext, str]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # The primary's built-in certificate is self-signed: trusted on first use, then pinned.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if with_certificate:
            load_identity(ctx, self.key, [self.cert], str(self.folder))
        return ctx, self.name

    def check_server(self, der: bytes) -> str:
        seen = fingerprint(x509.load_der_x509_certificate(der))
        if not self.pin_file.exists():
            self.pin_file.write_text(seen + "\n")
            self.log.info("Trusting the primary's certificate on first use: sha256 %s", seen)
            return "pinned on first use"
        pinned = self.pin_file.read_text().strip()
        if seen != pinned:
            raise PinMismatch(f"the primary's certificate changed: pinned sha256 {pinned}, got {seen} "
                              f"(remove {self.pin_file} to trust the new one)")
        return "pinned"

    def register_message(self, role: str) -> dict:
        return {"type": "register", "role": role, "name": self.name, "certificate": pem([self.cert])}
