"""Certificate facts and TLS failure reasons in the words a JRE would log."""
from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PKIX = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
        "unable to find valid certification path to requested target")

# OpenSSL verify codes -> JSSE wording: the words admins search for.
_VERIFY = {
    2: PKIX, 18: PKIX, 19: PKIX, 20: PKIX, 21: PKIX,
    10: "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed",
    9: "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed",
    23: "PKIX path validation failed: java.security.cert.CertPathValidatorException: Certificate has been revoked",
}
_ALERTS = {
    "TLSV1_ALERT_UNKNOWN_CA": "Received fatal alert: unknown_ca",
    "SSLV3_ALERT_BAD_CERTIFICATE": "Received fatal alert: bad_certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "Received fatal alert: certificate_required",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "Received fatal alert: certificate_expired",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "Received fatal alert: unsupported_certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "Received fatal alert: handshake_failure",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "Empty client certificate chain",
    "WRONG_VERSION_NUMBER": "Unsupported or unrecognized SSL message",
    "HTTP_REQUEST": "Unsupported or unrecognized SSL message",
}


def java_reason(exc: BaseException, *, hostname: str | None = None, client_side: bool = True) -> str:
    """One line: the JSSE-style reason, then OpenSSL's own words in brackets."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, msg = exc.verify_code, exc.verify_message
        if code == 62 or "hostname mismatch" in (msg or "").lower() or "IP address mismatch" in (msg or ""):
            java = f"No subject alternative DNS name matching {hostname} found."
        elif code == 26:
            java = ("Extended key usage does not permit use for TLS "
                    f"{'server' if client_side else 'client'} authentication")
        else:
            java = _VERIFY.get(code, "PKIX path validation failed")
        return f"{java} (openssl: {msg})"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or ""
        java = _ALERTS.get(reason)
        detail = reason.lower().replace("_", " ") if reason else str(exc)
        return f"{java} (openssl: {detail})" if java else f"TLS error (openssl: {detail})"
    if isinstance(exc, TimeoutError):
        return "Read timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def name_str(name: x509.Name) -> str:
    return name.rfc4514_string()


def common_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name_str(cert.subject)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def describe(cert: x509.Certificate) -> dict:
    return {
        "subject": name_str(cert.subject),
        "issuer": name_str(cert.issuer),
        "serial": format(cert.serial_number, "x"),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": fingerprint(cert),
    }


def pem(certs) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


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


def write_key(path: Path, key) -> None:
    """A private key file readable by its owner only, whatever was there before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key_pem(key))


def load_identity(ctx: ssl.SSLContext, key, chain, workdir: str) -> None:
    """ssl wants files; write them 0600 to a private temp dir and remove them at once."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        cert_file, key_file = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        cert_file.write_text(pem(chain))
        write_key(key_file, key)
        ctx.load_cert_chain(cert_file, key_file)


def peer_chain(sock: ssl.SSLSocket) -> list[x509.Certificate]:
    """The verified chain (leaf first) where Python has it, else just the leaf."""
    try:
        ders = sock.get_verified_chain()  # Python 3.13+
        return [x509.load_der_x509_certificate(bytes(d) if not isinstance(d, bytes) else d) for d in ders]
    except AttributeError:
        der = sock.getpeercert(binary_form=True)
        return [x509.load_der_x509_certificate(der)] if der else []
