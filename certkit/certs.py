"""Loading certificates and the facts the lab reports about them."""
from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID


class CertificateError(ValueError):
    """Input that is not the certificate it should be; the message names the file."""


def load_certs(data: bytes, origin: str = "certificate") -> list[x509.Certificate]:
    """PEM (one or several) or DER, as the portal and the Windows store accept them."""
    if not data.strip():
        raise CertificateError(f"{origin}: the file is empty")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(f"{origin}: not an X.509 certificate in PEM or DER form") from None


def load_cert_file(path: str | Path) -> x509.Certificate:
    """The first certificate of a PEM or DER file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{path}: {exc.strerror}") from None
    return load_certs(data, str(path))[0]


def name_str(name: x509.Name) -> str:
    return name.rfc4514_string()


def common_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name_str(cert.subject)


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


def cert_names(cert: x509.Certificate) -> set[str]:
    """The names an endpoint may announce: its CN and its DNS subjectAltNames."""
    return {common_name(cert), *dns_names(cert)}


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256, colon-separated upper-case hex, as keytool prints it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


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


def same_public_key(a, b) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def write_key(path: str | Path, key) -> None:
    """A private key file readable by its owner only, whatever was there before."""
    from .fsio import SECRET_FILE_MODE, write_new
    write_new(path, key_pem(key), SECRET_FILE_MODE)
