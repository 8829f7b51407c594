"""Training defects: give one host files that carry a deliberate, realistic PKI mistake.

Only the host's folder ``hosts/<name>/`` changes, file by file in place (its
container bind-mounts it). ``entities/``, ``ca/``, the database and the manifest
keep the good certificate, so ``safeq-lab pki reissue <name>`` gives the host
good files again. File names and passwords stay those of the host's good files,
so the gateway's ``unattended-install.conf`` (rewritten identical) and the
primary's configuration need no change.

Defects do not stack: each starts from the host's good files (the PKI's
truststore, the recorded certificate) and changes one thing. Certificates made
here are in no CA record, so the OCSP responder answers "unknown" for them.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from . import export, integrity, names, profiles
from .authority import BACKDATE, CertificateAuthority, subject
from .builder import LabPKI, _now, _primary_host
from .errors import PKIError
from .fsutil import Transaction, locked
from .integrity import _check_key
from .keys import key_type, signature_hash

KINDS: dict[str, str] = {
    "expired": "the host's certificate expired a day ago",
    "not-yet-valid": "the host's certificate becomes valid in 30 days",
    "no-client-auth": "the host's certificate has extended key usage serverAuth only (no clientAuth)",
    "leaf-only": "the host's PFX holds no CA certificates (a client's store: no intermediates)",
    "issuer-not-ca": "the host's certificate is issued by a 'sub-CA' whose certificate is an end-entity one (CA:FALSE)",
    "self-signed": "the host's certificate is self-signed",
    "truststore-nokeys": "gateway: the truststore is a PKCS12 without trusted entries (openssl pkcs12 -export -nokeys)",
    "truststore-without-root": "gateway: the truststore holds another CA's root instead of ours",
}
TRUSTSTORE_KINDS = ("truststore-nokeys", "truststore-without-root")
OTHER_ROOT = "Other-CA-Root"
NOT_YET_VALID_DAYS = 30


def apply(directory: Path | str, host: str, defect: str) -> list[Path]:
    """Rewrite ``hosts/<host>/`` with files that carry ``defect``; return the files written."""
    name = names.host_name(host)
    if defect not in KINDS:
        raise PKIError(f"unknown defect {defect!r}; choose one of: {', '.join(KINDS)}")
    lab = LabPKI(directory)
    with locked(lab.root.parent):
        db, cas = lab._open()
        ent = db.require_entity(name)
        role = ent["role"]
        if defect in TRUSTSTORE_KINDS and role != "gateway":
            raise PKIError(
                f"defect {defect!r} is for gateways (the hosts with the truststore {export.TRUSTSTORE_NAME}); "
                f"{name} is a {role}"
            )
        chain = integrity.chain(db, cas, ent["issuer"])  # root ... the host's issuer
        if defect == "leaf-only" and len(chain) == 1:
            raise PKIError(
                "defect 'leaf-only' leaves out the intermediate CAs, and this PKI has none "
                "(the root issues directly); pick another defect"
            )
        host = _Host(lab, db, ent, chain)
        key, cert, pfx_cas, layout_cas, truststore = host.make(defect)
        settings = db.settings
        pfx = export.entity_pfx(name, key, cert, pfx_cas, ent["password"], settings.legacy_pfx)
        target = lab.root / "hosts" / name
        with Transaction() as txn:
            hdir = txn.stage_dir(target, in_place=True)
            export.write_host_dir(
                hdir, name=name, role=role, key=key, cert=cert, cas=layout_cas, pfx=pfx,
                pfx_password=ent["password"], truststore_bytes=truststore,
                truststore_password=settings.truststore_password, primary_host=_primary_host(db, name, role),
            )
            written = sorted(target / p.relative_to(hdir) for p in hdir.rglob("*") if p.is_file())
            txn.commit()
        export.tighten_secrets(target)
        return written


class _Host:
    """One host's good material and the makers of its defective variants.

    ``make`` returns (key, certificate, CAs for the PFX, CAs for the folder's
    layout, truststore bytes); CA lists are root first, as in :mod:`pki.export`."""

    def __init__(self, lab: LabPKI, db, ent: dict, chain: list[CertificateAuthority]):
        self.lab, self.db, self.ent, self.chain = lab, db, ent, chain
        self.settings = db.settings
        self.kt = key_type(ent["key_type"])
        self.issuer = chain[-1]
        self.sans = [names.san(s) for s in ent["sans"]]
        self.dn = subject(ent["name"], self.settings.org)

    def make(self, defect: str):
        truststore = self.lab._truststore_bytes(self.db, self.chain)
        if defect in ("leaf-only", *TRUSTSTORE_KINDS):
            key, cert = self._recorded()
            if defect == "leaf-only":
                # A client's store keeps its root (Windows ships it) but lacks the intermediates.
                return key, cert, [], self.chain[:1] if self.ent["role"] == "client" else self.chain, truststore
            return key, cert, self.chain, self.chain, self._truststore(defect)
        key = self.kt.generate()
        if defect == "self-signed":
            return key, self._self_signed(key), [], self.chain, truststore
        if defect == "issuer-not-ca":
            sub = self._not_a_ca()
            cert = self._issue(sub, key)
            layout = [*self.chain, sub] if self.ent["role"] == "client" else self.chain
            return key, cert, [*self.chain, sub], layout, truststore
        now = _now()
        if defect == "expired":
            cert = self._issue(self.issuer, key, now=now - dt.timedelta(days=30), days=29)
        elif defect == "not-yet-valid":
            start = now + dt.timedelta(days=NOT_YET_VALID_DAYS)
            if self.issuer.cert.not_valid_after_utc <= start + dt.timedelta(days=1):
                raise PKIError(f"CA {self.issuer.name} expires before {start:%Y-%m-%d}; a not-yet-valid "
                               "certificate from it cannot be made")
            cert = self._issue(self.issuer, key, now=start + BACKDATE)
        else:  # no-client-auth
            eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
            cert = self._issue(self.issuer, key, changes={x509.ExtendedKeyUsage: eku})
        return key, cert, self.chain, self.chain, truststore

    def _recorded(self):
        """The host's good key and certificate, as recorded (entities/<name>/)."""
        cert = x509.load_pem_x509_certificate(self.ent["cert_pem"].encode("ascii"))
        key = _check_key(self.lab.root / self.ent["key_file"], cert, f"entity {self.ent['name']}")
        return key, cert

    def _extensions(self, key, issuer: x509.Certificate, changes=None):
        """The normal profile's extensions, with ``changes`` {type: replacement or None (drop)}."""
        exts = profiles.entity_extensions(
            key.public_key(), issuer, self.ent["role"], self.sans, self.kt.is_rsa,
            self.lab._urls(self.settings, self.issuer.name),
        )
        changes = changes or {}
        return [(changes.get(type(v), v), c) for v, c in exts if changes.get(type(v), v) is not None]

    def _issue(self, ca: CertificateAuthority, key, *, now=None, days=None, changes=None) -> x509.Certificate:
        builder = ca._builder(self.dn, key.public_key(), days or self.settings.days_entity, now or _now())
        return ca._sign(builder, self._extensions(key, ca.cert, changes=changes))

    def _not_a_ca(self) -> CertificateAuthority:
        """A 'sub-CA' under the host's issuer made from an end-entity template: CA:FALSE and no key usage
        at all, so that the CA flag is what a JRE trips over ("basic constraints check failed")."""
        sub_name = f"{self.issuer.name}-Sub"
        key = self.kt.generate()
        builder = self.issuer._builder(subject(sub_name, self.settings.org), key.public_key(),
                                       self.settings.days_entity, _now())
        exts = self._extensions(key, self.issuer.cert, changes={x509.SubjectAlternativeName: None,
                                                                          x509.KeyUsage: None, x509.ExtendedKeyUsage: None})
        return CertificateAuthority(sub_name, self.issuer._sign(builder, exts), key)

    def _self_signed(self, key) -> x509.Certificate:
        now = _now()
        builder = (
            x509.CertificateBuilder().subject_name(self.dn).issuer_name(self.dn).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=self.settings.days_entity))
        )
        own_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
        changes = {x509.AuthorityKeyIdentifier: own_aki, x509.AuthorityInformationAccess: None,
                   x509.CRLDistributionPoints: None}
        for ext, critical in self._extensions(key, self.issuer.cert, changes=changes):
            builder = builder.add_extension(ext, critical)
        return builder.sign(key, signature_hash(key))

    def _truststore(self, defect: str) -> bytes:
        password, legacy = self.settings.truststore_password, self.settings.legacy_pfx
        if defect == "truststore-nokeys":
            # What `openssl pkcs12 -export -nokeys -in root.crt` writes: no trusted-key-usage attribute.
            enc = export.pfx_encryption(password, legacy)
            return pkcs12.serialize_key_and_certificates(None, None, None, [self.chain[0].cert], enc)
        other = CertificateAuthority.create_root(OTHER_ROOT, self.settings.org, self.kt.generate(), self.settings.days_ca)
        return export.java_truststore([(other.cert, OTHER_ROOT.lower())], password, legacy)
