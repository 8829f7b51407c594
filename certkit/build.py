"""Certificate builders that read like the certificate (built-in identities, test and benchmark chains)."""
from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def certificate(subject: x509.Name | str, *, issuer=None, ca: bool = False, dns_name: str | None = None,
                days: int = 30, usages=()):
    """(key, certificate): EC P-256, SHA-256, valid from five minutes ago. ``issuer`` is the
    (key, certificate) that signs it; without one it is self-signed. A str subject is a CN."""
    if isinstance(subject, str):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key, signer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(signer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_name:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return key, builder.sign(signer_key, hashes.SHA256())


def self_signed(subject: x509.Name, dns_name: str, days: int, usages=()):
    """(key, certificate): a self-signed end-entity certificate (built-in certificates)."""
    return certificate(subject, dns_name=dns_name, days=days, usages=usages)


def self_signed_localhost():
    """The built-in fallback identity: what the doc says shows up when the keystore is wrong."""
    key, cert = self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), "localhost", 365)
    return key, [cert]
