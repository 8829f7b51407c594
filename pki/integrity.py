"""Cryptographic and file consistency checks run every time a PKI is opened.

On top of the database's own SHA-256 (see :mod:`pki.database`):

* init's CAs form a chain in settings order: the root is self-signed, each
  intermediate verifies under the CA before it; a CA added since verifies
  under the CA it names (or is a root); each CA key file exists and holds the
  private key of its certificate;
* every entity certificate (current and past) verifies under its recorded
  issuer and carries its recorded serial;
* the exported certificates ``cas/<CA>.{cer,der,crt}`` and
  ``entities/<name>/<name>.crt`` are exactly what the database records;
* there is one OCSP signer per CA (or none, in a PKI made before signers
  existed): it verifies under its CA, carries its recorded serial, and its
  key file holds its private key.

Entity private keys are not opened (that would cost an RSA key check per
entity on every command); ``reissue`` replaces them anyway.
"""
from __future__ import annotations

from pathlib import Path

from cryptography import x509

from certkit.certs import same_public_key
from certkit.chain import issued_by

from .authority import CertificateAuthority
from .database import REASONS, CADatabase, serial_hex
from .errors import PKIError
from .export import der, pem
from .keys import load_key_pem
from .ocsp import signer_key_file

_FIX = "restore the PKI directory from a backup or re-create it with `safeq-lab pki init --force`"


def _check_key(key_path: Path, cert, what: str):
    """The private key of ``cert``, read from its file; anything else is tampering."""
    try:
        key_pem = key_path.read_bytes()
    except OSError as exc:
        raise tampered(f"cannot read the key of {what} ({exc.strerror}: {key_path})") from None
    key = load_key_pem(key_pem, str(key_path))
    if not same_public_key(key.public_key(), cert.public_key()):
        raise tampered(f"{key_path} is not the key of {what}")
    return key


def tampered(why: str) -> PKIError:
    return PKIError(f"the PKI is inconsistent: {why}; {_FIX}")


def parse_cert(text: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise tampered(f"{what} is not a readable PEM certificate") from None


def check_cas(db: CADatabase, root: Path) -> list[CertificateAuthority]:
    """Return the CAs in database order (init's chain root first, then the CAs added since), keys loaded."""
    expected = db.settings.ca_names
    names = [c["name"] for c in db.cas]
    if names[: len(expected)] != expected:
        raise tampered(f"the database lists CAs {names}, its settings say {expected} first")
    out: dict[str, CertificateAuthority] = {}
    for i, rec in enumerate(db.cas):
        cert = parse_cert(rec["cert_pem"], f"the certificate of CA {rec['name']}")
        # init's chain: each CA under the one before; an added CA: under a CA listed before it, or a root.
        parent = list(out.values())[-1] if out and i < len(expected) else out.get(rec["issuer"] or "")
        if rec["name"] in out or rec["issuer"] != (parent.name if parent else None):
            raise tampered(f"CA {rec['name']} records the wrong issuer")
        if not issued_by(cert, parent.cert if parent else cert):
            raise tampered(f"the certificate of CA {rec['name']} does not verify under its issuer")
        if serial_hex(cert.serial_number) != rec["serial"]:
            raise tampered(f"CA {rec['name']}: recorded serial does not match its certificate")
        key = _check_key(root / rec["key_file"], cert, f"CA {rec['name']}")
        for suffix, data in ((".cer", der(cert)), (".der", der(cert)), (".crt", pem(cert))):
            _same_file(root / "cas" / f"{rec['name']}{suffix}", data)
        out[rec["name"]] = CertificateAuthority(rec["name"], cert, key)
    return list(out.values())


def chain(db: CADatabase, cas: list[CertificateAuthority], name: str) -> list[CertificateAuthority]:
    """CA ``name`` and the CAs above it, root first: what an entity it issued carries."""
    by_name = {ca.name: ca for ca in cas}
    return [by_name[n] for n in db.chain_names(name)]


def check_entities(db: CADatabase, root: Path, cas: list[CertificateAuthority], skip: str | None = None) -> None:
    """``skip`` names an entity whose files are about to be rewritten (reissue)."""
    by_name = {ca.name: ca for ca in cas}
    for ent in db.entities:
        issuer = by_name.get(ent["issuer"])
        if issuer is None:
            raise tampered(f"entity {ent['name']} names an unknown issuer {ent['issuer']!r}")
        for what, cert_pem, serial, signer in [
            ("certificate", ent["cert_pem"], ent["serial"], issuer),
            *(("previous certificate", h["cert_pem"], h["serial"], by_name.get(h.get("issuer", ent["issuer"])))
              for h in ent["history"]),
        ]:
            cert = parse_cert(cert_pem, f"the {what} of entity {ent['name']}")
            if serial_hex(cert.serial_number) != serial:
                raise tampered(f"entity {ent['name']}: recorded serial {serial} does not match its {what}")
            if signer is None or not issued_by(cert, signer.cert):
                raise tampered(f"the {what} of entity {ent['name']} was not signed by {signer.name if signer else 'a CA of this PKI'}")
        if ent["name"] != skip:
            path = root / "entities" / ent["name"] / f"{ent['name']}.crt"
            hint = f"run `safeq-lab pki reissue {ent['name']}` to give it fresh files"
            _same_file(path, ent["cert_pem"].encode("ascii"), hint)
    for issuer, records in db.data["revocations"].items():
        if issuer not in by_name:
            raise tampered(f"revocations are recorded for an unknown CA {issuer!r}")
        for serial, rec in records.items():
            if rec["reason"] not in REASONS:
                raise tampered(f"revocation of {serial} under {issuer} has an unknown reason {rec['reason']!r}")


def check_signers(db: CADatabase, root: Path, cas: list[CertificateAuthority]) -> None:
    if not db.signers:
        return
    issuers = [s["issuer"] for s in db.signers]
    if issuers != [ca.name for ca in cas]:
        raise tampered(f"the database lists OCSP signers for {issuers}, expected one per CA {[ca.name for ca in cas]}")
    for rec, ca in zip(db.signers, cas):
        what = f"the OCSP signer of CA {ca.name}"
        cert = parse_cert(rec["cert_pem"], what)
        if serial_hex(cert.serial_number) != rec["serial"]:
            raise tampered(f"{what}: recorded serial {rec['serial']} does not match its certificate")
        if not issued_by(cert, ca.cert):
            raise tampered(f"{what} was not signed by {ca.name}")
        if rec["key_file"] != signer_key_file(ca.name):
            raise tampered(f"{what} records an unexpected key file {rec['key_file']!r}")
        _check_key(root / rec["key_file"], cert, what)


def _same_file(path: Path, expected: bytes, hint: str | None = None) -> None:
    try:
        actual = path.read_bytes()
    except OSError as exc:
        why = f"cannot read {path} ({exc.strerror})"
    else:
        if actual == expected:
            return
        why = f"{path} differs from the certificate recorded in the CA database"
    # An entity's own files can be rewritten; anything else needs the backup.
    raise PKIError(f"the PKI is inconsistent: {why}; {hint}") if hint else tampered(why)
