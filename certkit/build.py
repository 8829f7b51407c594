"""Certificate builders that read like the certificate (self-signed identities)."""
from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(subject: x509.Name, dns_name: str, days: int, usages=()):
    """(key, certificate): a self-signed end-entity certificate (built-in certificates)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return key, builder.sign(key, hashes.SHA256())


def self_signed_localhost():
    """The built-in fallback identity: what the doc says shows up when the keystore is wrong."""
    key, cert = self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), "localhost", 365)
    return key, [cert]
