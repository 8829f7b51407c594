"""Checks of single certificates, by the rules a JRE applies (pure: certificates and a time in, findings out).

Java's end-entity checks for TLS: a KeyUsage extension must allow digitalSignature, an
ExtendedKeyUsage extension must list the usage (or anyExtendedKeyUsage); without the extension
any use is allowed. Issuers below the trust anchor must be CAs (basicConstraints CA:TRUE, with
keyCertSign when they carry a KeyUsage) within their pathLenConstraint. A trusted root is taken
as it is: Java checks neither its signature nor its dates.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certkit.certs import fingerprint, is_ca, name_str
from certkit.chain import issued_by

from .findings import ERROR, WARNING, Finding, finding

# Java 16 and later offer only these curves (the SunEC provider dropped the others).
JAVA_CURVES = ("secp256r1", "secp384r1", "secp521r1")
USAGES = {  # role -> (EKU, what it is for, code)
    "primary": (ExtendedKeyUsageOID.SERVER_AUTH, "TLS server authentication", "eku.server-auth-missing"),
    "gateway": (ExtendedKeyUsageOID.CLIENT_AUTH, "TLS client authentication", "eku.client-auth-missing"),
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH, "TLS client authentication", "eku.client-auth-missing"),
}
EKU_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


def _extension(cert: x509.Certificate, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer and issued_by(cert, cert)


def role_fit(leaf: x509.Certificate, role: str, file: Path) -> list[Finding]:
    """The leaf's KeyUsage and ExtendedKeyUsage for what the role does in TLS."""
    oid, purpose, code = USAGES[role]
    who = name_str(leaf.subject)
    out = []
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        out.append(finding(ERROR, "ku.digital-signature-missing", file, f"{who}: its KeyUsage does not allow "
                           "digitalSignature, which TLS needs (Java: \"KeyUsage does not allow digital signatures\")",
                           "reissue it with keyUsage digitalSignature"))
    ekus = _extension(leaf, x509.ExtendedKeyUsage)
    if ekus is not None and oid not in ekus and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in ekus:
        listed = ", ".join(EKU_NAMES.get(o, o.dotted_string) for o in ekus) or "nothing"
        out.append(finding(ERROR, code, file, f"{who}: its extendedKeyUsage ({listed}) lacks {EKU_NAMES[oid]} "
                           f"(Java: \"Extended key usage does not permit use for {purpose}\")",
                           f"reissue it with extendedKeyUsage {EKU_NAMES[oid]} (a {role} template)"))
    return out


def issuers(chain: list[x509.Certificate], file: Path) -> list[Finding]:
    """The CA certificates above the leaf, up to a self-signed root (a trust anchor, taken as it is)."""
    out = []
    for depth, cert in enumerate(chain[1:], 1):
        if self_signed(cert):
            break
        who = name_str(cert.subject)
        if not is_ca(cert):
            out.append(finding(ERROR, "ca.not-ca", file, f"{who} issues {name_str(chain[depth - 1].subject)} but is "
                               "not a CA (Java: \"basic constraints check failed: this is not a CA certificate\")",
                               "reissue the CA certificate with basicConstraints critical, CA:TRUE"))
            continue
        usage = _extension(cert, x509.KeyUsage)
        if usage is not None and not usage.key_cert_sign:
            out.append(finding(ERROR, "ca.no-keycertsign", file, f"{who}: its KeyUsage lacks keyCertSign",
                               "reissue the CA certificate with keyUsage keyCertSign, cRLSign"))
        limit = _extension(cert, x509.BasicConstraints).path_length
        below = sum(1 for c in chain[1:depth] if c.subject != c.issuer)
        if limit is not None and below > limit:
            out.append(finding(ERROR, "ca.path-length", file, f"{who} allows {limit} CA(s) below it "
                               f"(pathLenConstraint), the chain has {below} (Java: \"pathLenConstraint violated\")",
                               "shorten the chain or reissue the CA with a larger pathlen"))
    return out


def validity(cert: x509.Certificate, file: Path, now: dt.datetime, days: int) -> list[Finding]:
    who = name_str(cert.subject)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        return [finding(ERROR, "validity.not-yet-valid", file, f"{who} is valid only from {start:%Y-%m-%d %H:%M} UTC "
                        "(Java: CertificateNotYetValidException)", "wait, or check the clocks of CA and hosts")]
    if now > end:
        root = self_signed(cert)  # a trusted root's dates are not checked by Java, but it is due
        return [finding(WARNING if root else ERROR, "validity.expired", file, f"{who} expired on {end:%Y-%m-%d %H:%M} "
                        "UTC" + (" (Java does not check a trusted root's dates)" if root else
                                 " (Java: \"validity check failed\", CertificateExpiredException)"),
                        "renew it and replace it everywhere it is used")]
    if end < now + dt.timedelta(days=days):
        return [finding(WARNING, "validity.expires-soon", file, f"{who} expires on {end:%Y-%m-%d} "
                        f"(within {days} days)", "renew it in time")]
    return []


def algorithms(cert: x509.Certificate, file: Path) -> list[Finding]:
    """Signature hash (not of a self-signed root: nobody checks it) and key."""
    who, out = name_str(cert.subject), []
    try:
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        digest = None
    if digest is not None and not self_signed(cert):
        if digest.name in ("md5", "md2"):
            out.append(finding(ERROR, "signature.weak", file, f"{who} is signed with {digest.name.upper()}, which "
                               "Java refuses (jdk.certpath.disabledAlgorithms)", "reissue it with SHA-256"))
        elif digest.name == "sha1":
            out.append(finding(WARNING, "signature.sha1", file, f"{who} is signed with SHA-1: a JRE with SHA1 in "
                               "jdk.certpath.disabledAlgorithms refuses it", "reissue it with SHA-256"))
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        severity = ERROR if key.key_size < 1024 else WARNING
        out.append(finding(severity, "key.rsa-small", file, f"{who} has a {key.key_size}-bit RSA key"
                           + (" (Java refuses RSA keySize < 1024)" if severity == ERROR else " (below 2048 bits)"),
                           "reissue it with an RSA key of 2048 bits or more, or ECDSA P-256"))
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in JAVA_CURVES:
        out.append(finding(ERROR, "key.curve-unsupported", file, f"{who} uses the curve {key.curve.name}, which Java "
                           f"(16 and later) does not offer: only {', '.join(JAVA_CURVES)}",
                           "reissue it with P-256, P-384 or P-521"))
    return out


def check(keys, named: list[tuple[x509.Certificate, Path]], now: dt.datetime, days: int) -> list[Finding]:
    """``keys``: the KeyMaterial of every machine; ``named``: CA certificates the spec names, with their file.
    Each certificate is reported once, under the first file it was found in."""
    out: list[Finding] = []
    for key in keys:
        if key.chain:
            out += role_fit(key.chain[0], key.role, key.file) + issuers(key.chain, key.file)
    seen: set[str] = set()
    for cert, file in [(cert, key.file) for key in keys for cert in key.chain] + named:
        if fingerprint(cert) not in seen:
            seen.add(fingerprint(cert))
            out += validity(cert, file, now, days) + algorithms(cert, file)
    return out
