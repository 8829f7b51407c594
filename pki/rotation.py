"""A CA rotation: a new CA beside the old one, which CA issues, and the old one retired.

* ``add_ca`` issues a new intermediate CA under an existing CA (by default the root above the issuing
  CA), or a new root, with its own OCSP signer. Its files are written where init writes a CA's: ``ca/<NAME>.key.pem``,
  ``cas/<NAME>.{cer,der,crt}``, the responder's folder (``<NAME>.crt``, its signer, ``responder.json``;
  the responder reads its issuers at start, so it must restart to answer for the new CA), and
  ``<NAME>.cer`` in each primary's host folder: the doc's Trusted CA import takes every ``.cer`` there.
  A new root is trusted beside the old one from then on: in the truststores, the client stores' Root
  folder and the primary's ``cacert-<NAME>.crt`` (the cacerts import) — the cross-trust period.
* ``set_issuing``: new and reissued entity certificates come from that CA from now on.
* ``retire``: the CA's ``.cer`` leaves the primary's host folders (no longer imported as a Trusted CA
  certificate); a retired root leaves the truststores, stores and cacerts files too. It stays in the
  database: what it issued still has an OCSP answer.

Each writes through one :class:`pki.fsutil.Transaction` with ``ca/db.json`` last, as issue does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography import x509

from certkit.certs import key_pem

from . import export, integrity, manifest, names, ocsp
from .authority import CertificateAuthority
from .builder import LabPKI, _now, anchors_of
from .database import CADatabase, serial_hex
from .errors import PKIError
from .fsutil import Transaction, locked
from .keys import key_type


def _write(txn: Transaction, path: Path, data: bytes) -> None:
    txn.write_file(path, data, export.mode_for(path))  # keys 0600, as init writes them


def _by_name(cas: list[CertificateAuthority], name: str, what: str) -> CertificateAuthority:
    for ca in cas:
        if ca.name == name:
            return ca
    raise PKIError(f"no CA named {name!r} for {what} (known: {', '.join(ca.name for ca in cas)}); "
                   "check the name with `safeq-lab pki show`")


def _may_sign_cas(cert: x509.Certificate) -> bool:
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    return constraints.ca and constraints.path_length != 0


def add_ca(directory: Path | str, name: str, under: str | None = None, root: bool = False) -> dict[str, Any]:
    """A new intermediate CA ``name`` signed by ``under`` (default: the root above the issuing CA), or
    with ``root`` a new self-signed root, which every host trusts beside the old one from now on."""
    name = names.ca_name(name, "the new CA's name")
    lab = LabPKI(directory)
    with locked(lab.root.parent):
        db, cas = lab._open()
        if any(c["name"].lower() == name.lower() for c in db.cas):
            raise PKIError(f"a CA named {name!r} exists already (names are file names); pick another name")
        settings, now = db.settings, _now()
        key = key_type(settings.key_type).generate()
        if root:
            if under:
                raise PKIError("a root signs itself: give --root or --under, not both")
            ca, parent_name = CertificateAuthority.create_root(name, settings.org, key, settings.days_ca, now), None
        else:
            parent = _by_name(cas, under or db.chain_names(db.issuing)[0], "--under")
            if not _may_sign_cas(parent.cert):
                raise PKIError(f"CA {parent.name} may not sign CAs (its basic constraints say pathLen 0); "
                               "choose another with --under")
            ca = parent.create_intermediate(name, settings.org, key, 0, settings.days_ca,
                                            LabPKI._urls(settings, parent.name), now)
            parent_name = parent.name
        db.add_ca({"name": name, "issuer": parent_name, "serial": serial_hex(ca.cert.serial_number),
                   "cert_pem": export.pem(ca.cert).decode("ascii"), "key_file": f"ca/{name}.key.pem"})
        with Transaction() as txn:
            _write(txn, lab.root / "ca" / f"{name}.key.pem", key_pem(ca.key))
            for suffix, data in ((".cer", export.der(ca.cert)), (".der", export.der(ca.cert)), (".crt", export.pem(ca.cert))):
                _write(txn, lab.root / "cas" / f"{name}{suffix}", data)
            if db.signers:  # a PKI made before OCSP signers existed has none to extend
                _add_signer(txn, lab.root, db, ca, now)
            _stage_trust(txn, lab, db, [*cas, ca])
            lab._stage_records(txn, db)
            txn.commit()
        export.tighten_secrets(lab.root)
        return manifest.build(db, lab.root)


def _stage_trust(txn: Transaction, lab: LabPKI, db: CADatabase, cas: list[CertificateAuthority]) -> None:
    """Every host's trust files again: truststores, the store's Root folder, the primary's cacert and
    Trusted CA files. Each folder is replaced file by file (containers bind-mount them)."""
    anchors, settings = anchors_of(db, cas), db.settings
    truststore = export.truststore(anchors.roots[0], settings.truststore_password, settings.legacy_pfx, *anchors.roots[1:])
    _write(txn, lab.root / "truststores" / export.TRUSTSTORE_NAME, truststore)
    for ent in db.entities:
        hdir = lab.root / "hosts" / ent["name"]
        if not hdir.is_dir():
            continue
        if ent["role"] == "gateway":
            _write(txn, hdir / export.TRUSTSTORE_NAME, truststore)
        elif ent["role"] == "client":
            export.write_store_roots(txn.stage_dir(hdir / "store" / "Root", in_place=True), anchors)
        elif ent["role"] == "primary":
            pfx = hdir / f"{ent['name']}.pfx"
            staged = txn.stage_dir(hdir, in_place=True)
            export.write(staged / pfx.name, pfx.read_bytes())
            export.write_primary_trust(staged, integrity.chain(db, cas, ent["issuer"])[0], anchors)


def _add_signer(txn: Transaction, root: Path, db: CADatabase, ca: CertificateAuthority, now) -> None:
    """The new CA's delegated OCSP signer, and the responder's folder extended with both."""
    settings = db.settings
    key = key_type(settings.key_type).generate()
    cert = ca.issue_ocsp_signer(settings.org, key.public_key(), ocsp.SIGNER_DAYS, now)
    db.add_signer({"issuer": ca.name, "serial": serial_hex(cert.serial_number),
                   "cert_pem": export.pem(cert).decode("ascii"), "key_file": ocsp.signer_key_file(ca.name)})
    _write(txn, root / ocsp.signer_key_file(ca.name), key_pem(key))
    hdir = ocsp.host_dir(root)
    if hdir.is_dir():
        _write(txn, hdir / f"{ca.name}.crt", export.pem(ca.cert))
        _write(txn, hdir / "signers" / f"{ca.name}-ocsp.crt", export.pem(cert))
        _write(txn, hdir / "signers" / f"{ca.name}-ocsp.key", key_pem(key))
        config = ocsp.responder_config([c["name"] for c in db.cas])
        _write(txn, hdir / ocsp.RESPONDER_CONFIG, (json.dumps(config, indent=2) + "\n").encode("ascii"))


def set_issuing(directory: Path | str, name: str) -> dict[str, Any]:
    """From now on ``name`` signs new and reissued entity certificates."""
    lab = LabPKI(directory)
    with locked(lab.root.parent):
        db, cas = lab._open()
        _by_name(cas, name, "the issuing CA")
        if name in db.retired:
            raise PKIError(f"CA {name} is retired (no longer a Trusted CA file); pick a CA that is not")
        db.data["issuing"] = name
        with Transaction() as txn:
            lab._stage_records(txn, db)
            txn.commit()
        return manifest.build(db, lab.root)


def retire(directory: Path | str, name: str) -> dict[str, Any]:
    """``name`` is no longer a Trusted CA file of the primary; its certificates still get OCSP answers."""
    lab = LabPKI(directory)
    with locked(lab.root.parent):
        db, cas = lab._open()
        _by_name(cas, name, "retire")
        if name in db.chain_names(db.issuing):
            raise PKIError(f"CA {name} signs entities now or is above the CA that does ({db.issuing}); "
                           "make another CA the issuing one first (`safeq-lab pki ca issuing NAME`)")
        if name not in db.retired:
            db.data["retired"] = [*db.retired, name]
        with Transaction() as txn:
            _stage_trust(txn, lab, db, cas)
            lab._stage_records(txn, db)
            txn.commit()
        return manifest.build(db, lab.root)
