"""The manifest: what ``pki show --json`` prints and ``manifest.json`` holds.

A contract read by other tools; the keys are fixed::

    {"dir", "key_type",
     "cas": [{"name", "subject", "der_path", "pem_path", "not_after", "serial"}],
     "issuing": <CA name that signs entities>, "issuing_chain": [<root>, ..., <issuing>],
     "retired": [<CA name>, ...],
     "entities": [{"name", "role", "subject", "issuer", "serial", "not_before",
                   "not_after", "status": "good"|"revoked",
                   "revocation": null | {"time", "reason"},
                   "pfx_path", "pfx_password", "key_type", "sans"}],
     "truststores": [{"path", "password", "entries": [alias, ...]}],
     "ocsp": {"url": AIA OCSP URL | null, "host_dir": <hosts/ocsp-host> | null,
              "signers": [{"issuer", "subject", "serial", "not_after"}]}}

``ocsp.host_dir`` and ``ocsp.signers`` are null/empty only for a PKI made
before OCSP signers existed (see :mod:`pki.ocsp`).

Paths are absolute, dates ISO 8601 UTC (``YYYY-MM-DDTHH:MM:SSZ``), serials
lowercase hex, subjects/issuers RFC 4514 strings (``CN=...,O=...``).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from . import ocsp
from .database import CADatabase, serial_hex
from .export import TRUSTSTORE_ALIAS, TRUSTSTORE_NAME

MANIFEST_NAME = "manifest.json"


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(db: CADatabase, root: Path) -> dict[str, Any]:
    """``root`` is the final absolute PKI directory (not a staging dir)."""
    settings = db.settings
    cas = []
    for rec in db.cas:
        cert = x509.load_pem_x509_certificate(rec["cert_pem"].encode())
        cas.append(
            {
                "name": rec["name"],
                "subject": cert.subject.rfc4514_string(),
                "der_path": str(root / "cas" / f"{rec['name']}.der"),
                "pem_path": str(root / "cas" / f"{rec['name']}.crt"),
                "not_after": iso(cert.not_valid_after_utc),
                "serial": serial_hex(cert.serial_number),
            }
        )
    entities = []
    for ent in db.entities:
        cert = x509.load_pem_x509_certificate(ent["cert_pem"].encode())
        rev = db.revocation(ent["issuer"], ent["serial"])
        entities.append(
            {
                "name": ent["name"],
                "role": ent["role"],
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "serial": ent["serial"],
                "not_before": iso(cert.not_valid_before_utc),
                "not_after": iso(cert.not_valid_after_utc),
                "status": "revoked" if rev else "good",
                "revocation": {"time": rev["time"], "reason": rev["reason"]} if rev else None,
                "pfx_path": str(root / "entities" / ent["name"] / f"{ent['name']}.pfx"),
                "pfx_password": ent["password"],
                "key_type": ent["key_type"],
                "sans": list(ent["sans"]),
            }
        )
    return {
        "dir": str(root),
        "key_type": settings.key_type,
        "cas": cas,
        "issuing": db.issuing,
        "issuing_chain": db.chain_names(db.issuing),
        "retired": list(db.retired),
        "entities": entities,
        "truststores": [
            {
                "path": str(root / "truststores" / TRUSTSTORE_NAME),
                "password": settings.truststore_password,
                # keytool's aliases: the first trusted root is acme-ca, each other one by its name
                "entries": [TRUSTSTORE_ALIAS] + [name.lower() for name in _roots(db)[1:]],
            }
        ],
        "ocsp": _ocsp(db, root),
    }


def _roots(db: CADatabase) -> list[str]:
    return [c["name"] for c in db.cas if c["issuer"] is None and c["name"] not in db.retired]


def _ocsp(db: CADatabase, root: Path) -> dict[str, Any]:
    signers = []
    for rec in db.signers:
        cert = x509.load_pem_x509_certificate(rec["cert_pem"].encode())
        signers.append(
            {
                "issuer": cert.issuer.rfc4514_string(),
                "subject": cert.subject.rfc4514_string(),
                "serial": rec["serial"],
                "not_after": iso(cert.not_valid_after_utc),
            }
        )
    return {
        "url": db.settings.ocsp_url,
        "host_dir": str(ocsp.host_dir(root)) if signers else None,
        "signers": signers,
    }


def to_json(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"
