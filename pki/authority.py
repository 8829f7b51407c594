"""A certificate authority: a name, its certificate and its key; it signs."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import profiles
from .keys import PrivateKey, PublicKey, signature_hash

# Tolerates clock skew between the host that issues and the containers.
BACKDATE = dt.timedelta(minutes=5)


def subject(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def ocsp_signer_name(ca_name: str) -> str:
    return f"{ca_name} OCSP Signer"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@dataclass
class CertificateAuthority:
    name: str
    cert: x509.Certificate
    key: PrivateKey

    @classmethod
    def create_root(cls, name: str, org: str, key: PrivateKey, days: int, now: dt.datetime | None = None) -> "CertificateAuthority":
        now = now or _now()
        dn = subject(name, org)
        builder = (
            x509.CertificateBuilder()
            .subject_name(dn)
            .issuer_name(dn)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
        )
        for ext, critical in profiles.root_extensions(key.public_key()):
            builder = builder.add_extension(ext, critical)
        return cls(name, builder.sign(key, signature_hash(key)), key)

    def _builder(self, dn: x509.Name, public_key: PublicKey, days: int, now: dt.datetime) -> x509.CertificateBuilder:
        # A certificate never outlives its issuer (a chain is only as valid as its shortest link).
        not_after = min(now + dt.timedelta(days=days), self.cert.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(dn)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
        )

    def _sign(self, builder: x509.CertificateBuilder, extensions) -> x509.Certificate:
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical)
        return builder.sign(self.key, signature_hash(self.key))

    def create_intermediate(
        self, name: str, org: str, key: PrivateKey, path_length: int, days: int, urls: profiles.Urls,
        now: dt.datetime | None = None,
    ) -> "CertificateAuthority":
        now = now or _now()
        builder = self._builder(subject(name, org), key.public_key(), days, now)
        exts = profiles.intermediate_extensions(key.public_key(), self.cert, path_length, urls)
        return CertificateAuthority(name, self._sign(builder, exts), key)

    def issue_entity(
        self, host: str, org: str, role: str, sans: list[x509.GeneralName], public_key: PublicKey,
        is_rsa: bool, days: int, urls: profiles.Urls, now: dt.datetime | None = None,
    ) -> x509.Certificate:
        now = now or _now()
        builder = self._builder(subject(host, org), public_key, days, now)
        exts = profiles.entity_extensions(public_key, self.cert, role, sans, is_rsa, urls)
        return self._sign(builder, exts)

    def issue_ocsp_signer(self, org: str, public_key: PublicKey, days: int, now: dt.datetime | None = None) -> x509.Certificate:
        """This CA's delegated OCSP signing certificate (subject ``<CA> OCSP Signer``)."""
        now = now or _now()
        builder = self._builder(subject(ocsp_signer_name(self.name), org), public_key, days, now)
        return self._sign(builder, profiles.ocsp_signer_extensions(public_key, self.cert))
