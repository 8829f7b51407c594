"""The CA database: one JSON file, ``ca/db.json`` (mode 0600), written atomically.

Layout (``version`` 1)::

    {
      "format": "safeq-pki-lab/ca-db", "version": 1,
      "settings": {...},                      # see pki.settings.Settings
      "cas": [                                # init's chain root first, lowest intermediate last; CAs added
        {"name", "issuer": <CA name>|null,    # later (`pki ca add`) follow, each after its issuer
         "serial": hex, "cert_pem", "key_file": "ca/<name>.key.pem"}
      ],
      "issuing": <CA name>,                   # optional: the CA that signs entities (default: init's lowest)
      "retired": [<CA name>, ...],            # optional: CAs no longer among the Trusted CA files
      "entities": [
        {"name", "role", "sans": [...], "password", "key_type", "issuer": <CA name>,
         "serial": hex, "cert_pem", "key_file",
         "history": [{"serial", "issuer" (absent: the entity's), "cert_pem", "not_before", "not_after",
                      "superseded_at"}]}
      ],
      "revocations": {<issuer CA name>: {<serial hex>: {"time", "reason", "subject"}}},
      "signers": [                            # one delegated OCSP signer per CA, root first
        {"issuer": <CA name>, "serial": hex, "cert_pem", "key_file": "ca/ocsp-signers/<CA>-ocsp.key.pem"}
      ],
      "integrity": {"algorithm": "sha256", "digest": hex}
    }

A database without ``signers`` comes from a PKI made before OCSP signers
existed; it still opens, but has no OCSP responder folder (``pki init --force``
re-creates the PKI with one).

Serials are lowercase hex without leading zeros; times are ISO 8601 UTC
(``...Z``). An OCSP responder answers from :meth:`CADatabase.status`: a serial
recorded under its issuer in ``revocations`` is revoked, a serial the issuer
issued (an entity's current or past serial, a child CA's or its OCSP signer's)
is good, anything else is unknown. ``reissue`` records the replaced serial as
revoked with reason ``superseded`` (unless it was revoked already).
``hosts/ocsp-host/status.json`` is this view, written out (see :mod:`pki.ocsp`).

Integrity: ``integrity.digest`` is the SHA-256 of the canonical JSON (sorted
keys, no whitespace, ASCII) of everything else. It catches edits and damage,
not a deliberate forger who recomputes it; :mod:`pki.integrity` adds the
cryptographic checks (every certificate verifies under its recorded issuer and
matches its recorded serial, every CA key matches its certificate, exported
certificate files match the database).
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import PKIError
from .settings import Settings

FORMAT = "safeq-pki-lab/ca-db"
VERSION = 1
DB_PATH = Path("ca") / "db.json"

# RFC 5280 CRLReason names; they equal cryptography's x509.ReasonFlags values.
REASONS = (
    "unspecified",
    "keyCompromise",
    "caCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
)

_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "version": int,
    "settings": dict,
    "cas": list,
    "entities": list,
    "revocations": dict,
    "integrity": dict,
}
_CA_KEYS = {"name": str, "issuer": (str, type(None)), "serial": str, "cert_pem": str, "key_file": str}
_ENTITY_KEYS = {
    "name": str, "role": str, "sans": list, "password": str, "key_type": str, "issuer": str,
    "serial": str, "cert_pem": str, "key_file": str, "history": list,
}
_HISTORY_KEYS = {"serial": str, "cert_pem": str, "not_before": str, "not_after": str, "superseded_at": str}
_REVOCATION_KEYS = {"time": str, "reason": str, "subject": str}
_SIGNER_KEYS = {"issuer": str, "serial": str, "cert_pem": str, "key_file": str}


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def canonical_digest(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class CADatabase:
    """In-memory view of ``ca/db.json``; it never touches the disk itself."""

    def __init__(self, data: dict[str, Any]):
        self.data = data

    # -- creation / (de)serialization ------------------------------------
    @classmethod
    def new(cls, settings: Settings) -> "CADatabase":
        return cls(
            {
                "format": FORMAT,
                "version": VERSION,
                "settings": settings.to_dict(),
                "cas": [],
                "entities": [],
                "revocations": {},
                "signers": [],
            }
        )

    @classmethod
    def parse(cls, raw: bytes, where: Path) -> "CADatabase":
        def corrupt(why: str) -> PKIError:
            return PKIError(
                f"the CA database {where} is corrupt ({why}); restore it from a backup "
                "or re-create the PKI with `safeq-lab pki init --force`"
            )

        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise corrupt(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise corrupt("not a JSON object")
        _check_keys(data, _SCHEMA, "the top level", corrupt)
        if data["format"] != FORMAT or data["version"] != VERSION:
            raise corrupt(f"unsupported format {data['format']!r} version {data['version']!r}")
        for i, ca in enumerate(data["cas"]):
            _check_keys(ca, _CA_KEYS, f"cas[{i}]", corrupt)
        known = {ca["name"] for ca in data["cas"]}
        if data.get("issuing", "") not in known | {""}:
            raise corrupt(f"issuing names no CA of the database: {data.get('issuing')!r}")
        retired = data.get("retired", [])
        if not isinstance(retired, list) or not set(retired) <= known:
            raise corrupt("retired is not a list of the database's CA names")
        for i, ent in enumerate(data["entities"]):
            _check_keys(ent, _ENTITY_KEYS, f"entities[{i}]", corrupt)
            for j, old in enumerate(ent["history"]):
                _check_keys(old, _HISTORY_KEYS, f"entities[{i}].history[{j}]", corrupt)
                if not isinstance(old.get("issuer", ""), str):
                    raise corrupt(f"entities[{i}].history[{j}].issuer has the wrong type")
        signers = data.get("signers", [])
        if not isinstance(signers, list):
            raise corrupt("signers is not a list")
        for i, signer in enumerate(signers):
            _check_keys(signer, _SIGNER_KEYS, f"signers[{i}]", corrupt)
        for issuer, records in data["revocations"].items():
            if not isinstance(records, dict):
                raise corrupt(f"revocations[{issuer!r}] is not an object")
            for serial, rec in records.items():
                _check_keys(rec, _REVOCATION_KEYS, f"revocations[{issuer!r}][{serial!r}]", corrupt)
        try:
            Settings.from_dict(data["settings"])
        except (KeyError, TypeError) as exc:
            raise corrupt(f"missing key {exc} in settings") from None

        integrity = data.pop("integrity")
        if integrity.get("algorithm") != "sha256" or integrity.get("digest") != canonical_digest(data):
            raise PKIError(
                f"the CA database {where} failed its integrity check (SHA-256 mismatch): "
                "it was edited or damaged outside safeq-lab; restore it from a backup "
                "or re-create the PKI with `safeq-lab pki init --force`"
            )
        return cls(data)

    def to_bytes(self) -> bytes:
        body = copy.deepcopy(self.data)
        body["integrity"] = {"algorithm": "sha256", "digest": canonical_digest(self.data)}
        return (json.dumps(body, sort_keys=True, indent=2) + "\n").encode("ascii")

    # -- accessors ---------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return Settings.from_dict(self.data["settings"])

    @property
    def cas(self) -> list[dict[str, Any]]:
        return self.data["cas"]

    @property
    def entities(self) -> list[dict[str, Any]]:
        return self.data["entities"]

    @property
    def signers(self) -> list[dict[str, Any]]:
        """Empty for a PKI made before OCSP signers existed."""
        return self.data.get("signers", [])

    @property
    def issuing(self) -> str:
        """The CA that signs new and reissued entity certificates."""
        return self.data.get("issuing") or self.settings.ca_names[-1]

    @property
    def retired(self) -> list[str]:
        return self.data.get("retired", [])

    def ca_record(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.cas if c["name"] == name), None)

    def chain_names(self, name: str) -> list[str]:
        """CA ``name`` and those above it, root first."""
        out: list[str] = []
        rec = self.ca_record(name)
        while rec is not None and rec["name"] not in out:
            out.insert(0, rec["name"])
            rec = self.ca_record(rec["issuer"]) if rec["issuer"] else None
        return out

    def entity(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.entities if e["name"] == name), None)

    def require_entity(self, name: str) -> dict[str, Any]:
        ent = self.entity(name)
        if ent is None:
            known = ", ".join(e["name"] for e in self.entities) or "none"
            raise PKIError(f"no entity named {name!r} in this PKI (known: {known}); check the name with `safeq-lab pki show`")
        return ent

    def revocation(self, issuer: str, serial: str) -> dict[str, Any] | None:
        return self.data["revocations"].get(issuer, {}).get(serial)

    def status(self, issuer: str, serial: str | int) -> tuple[str, dict[str, Any] | None]:
        """OCSP-style status of ``serial`` issued by CA ``issuer``: good, revoked or unknown."""
        serial = serial_hex(serial) if isinstance(serial, int) else serial.lower()
        rec = self.revocation(issuer, serial)
        if rec is not None:
            return "revoked", rec
        return ("good" if serial in self.issued_serials(issuer) else "unknown"), None

    def issued_serials(self, issuer: str) -> list[str]:
        """Every serial CA ``issuer`` signed: child CAs, its OCSP signer, entities old and new."""
        issued = [c["serial"] for c in self.cas if c["issuer"] == issuer]
        issued += [s["serial"] for s in self.signers if s["issuer"] == issuer]
        for ent in self.entities:
            if ent["issuer"] == issuer:
                issued.append(ent["serial"])
            issued += [h["serial"] for h in ent["history"] if h.get("issuer", ent["issuer"]) == issuer]
        return issued

    # -- mutations -----------------------------------------------------------
    def add_ca(self, record: dict[str, Any]) -> None:
        self.cas.append(record)

    def add_entity(self, record: dict[str, Any]) -> None:
        self.entities.append(record)

    def add_signer(self, record: dict[str, Any]) -> None:
        self.data.setdefault("signers", []).append(record)

    def revoke(self, issuer: str, serial: str, *, time: str, reason: str, subject: str) -> None:
        self.data["revocations"].setdefault(issuer, {})[serial] = {
            "time": time, "reason": reason, "subject": subject,
        }


def _check_keys(obj: Any, spec: dict[str, Any], where: str, corrupt) -> None:
    if not isinstance(obj, dict):
        raise corrupt(f"{where} is not an object")
    for key, kind in spec.items():
        if key not in obj:
            raise corrupt(f"missing key {key!r} in {where}")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise corrupt(f"{where}.{key} has the wrong type")
