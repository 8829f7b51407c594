"""OCSP: each CA's delegated signer and the responder's folder ``hosts/ocsp-host/``.

Every CA (the root, which answers for the intermediate(s), and each
intermediate) gets a delegated OCSP signing certificate (profile in
:mod:`pki.profiles`); its key is ``ca/ocsp-signers/<CA>-ocsp.key.pem`` (0600,
in a 0700 directory of its own so no CA name can collide with it).

``hosts/ocsp-host/`` is what the ``ocsp`` container mounts read-only at
``/pki``; it is the only place a signer key is copied to, and no CA key ever is::

    responder.json            {"issuers": [{"name", "cert", "signer_cert", "signer_key"}],
                               "status_file": "status.json"}
    <CA>.crt                  PEM, one per CA
    signers/<CA>-ocsp.crt     PEM, the CA's delegated signer
    signers/<CA>-ocsp.key     PEM, its key (0600)
    status.json               {<CA>: {<serial hex>: {"status": "good"|"revoked",
                                                     "revocation_time": ISO 8601 | null,
                                                     "reason": null | RFC 5280 reason name}}}

``status.json`` lists every certificate each CA issued (child CAs, its signer,
entities current and superseded); a serial missing under its issuer is
"unknown" to the responder. The key copy here is 0600 like every key
(:func:`pki.export.mode_for`): root reads the read-only mount in the container.

The folder is never replaced as a whole after ``init``: a running container
keeps the directory it mounted, so ``issue``/``revoke``/``reissue`` replace
``status.json`` alone (temporary file + ``os.replace`` in the same
directory), which the responder sees on its next request.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography import x509

from certkit.certs import key_pem

from .authority import CertificateAuthority
from .database import CADatabase
from .export import pem, write
from .fsutil import make_dir
from .keys import PrivateKey

OCSP_HOST = "ocsp-host"
RESPONDER_CONFIG = "responder.json"
STATUS_FILE = "status.json"
SIGNER_DIR = "ocsp-signers"  # under ca/
SIGNER_DAYS = 397


def signer_key_file(ca_name: str) -> str:
    """Path of a CA's signer key, relative to the PKI root (as recorded in the DB)."""
    return f"ca/{SIGNER_DIR}/{ca_name}-ocsp.key.pem"


def host_dir(root: Path) -> Path:
    return root / "hosts" / OCSP_HOST


def responder_config(ca_names: list[str]) -> dict[str, Any]:
    return {
        "issuers": [
            {
                "name": name,
                "cert": f"{name}.crt",
                "signer_cert": f"signers/{name}-ocsp.crt",
                "signer_key": f"signers/{name}-ocsp.key",
            }
            for name in ca_names
        ],
        "status_file": STATUS_FILE,
    }


def status_document(db: CADatabase) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for ca in db.cas:
        entries = out.setdefault(ca["name"], {})
        for serial in db.issued_serials(ca["name"]):
            entries[serial] = {"status": "good", "revocation_time": None, "reason": None}
        # Revocations are listed even if no issued serial matches (a record is the truth).
        for serial, rec in db.data["revocations"].get(ca["name"], {}).items():
            entries[serial] = {"status": "revoked", "revocation_time": rec["time"], "reason": rec["reason"]}
    return out


def status_bytes(db: CADatabase) -> bytes:
    return (json.dumps(status_document(db), indent=2, sort_keys=True) + "\n").encode("ascii")


def write_host_dir(hdir: Path, cas: list[CertificateAuthority], signers: list[tuple[x509.Certificate, PrivateKey]],
                   db: CADatabase) -> None:
    """Fill a new (staged) ``hosts/ocsp-host/``; ``signers`` are in CA order."""
    sdir = make_dir(hdir / "signers")
    for ca, (cert, key) in zip(cas, signers):
        write(hdir / f"{ca.name}.crt", pem(ca.cert))
        write(sdir / f"{ca.name}-ocsp.crt", pem(cert))
        write(sdir / f"{ca.name}-ocsp.key", key_pem(key))
    config = json.dumps(responder_config([ca.name for ca in cas]), indent=2) + "\n"
    write(hdir / RESPONDER_CONFIG, config.encode("ascii"))
    write(hdir / STATUS_FILE, status_bytes(db))
