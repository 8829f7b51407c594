"""The operations on a PKI directory: init, issue, revoke, reissue, show.

Every operation validates all input and opens (and checks) the existing PKI
before writing anything; writes go through :mod:`pki.fsutil`, so a failure
leaves the directory byte-for-byte as it was:

* ``init`` builds the whole tree in a hidden sibling directory and renames
  it into place (an existing PKI, with ``force``, is moved aside first and
  deleted only once the new one is in place);
* ``issue``/``reissue`` stage ``entities/<name>/`` and ``hosts/<name>/`` as
  new directories, then swap them in together with ``manifest.json`` and
  ``ca/db.json`` (last: the commit point);
* ``revoke`` rewrites ``ca/db.json`` and ``manifest.json`` only;
* ``issue``/``reissue``/``revoke`` also replace ``hosts/ocsp-host/status.json``
  (the OCSP responder's view, see :mod:`pki.ocsp`) in the same transaction.

Writers of one PKI are serialized with a flock on its parent directory.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Iterable

from cryptography import x509

from certkit.certs import key_pem

from . import export, integrity, manifest, names, ocsp, passwords, profiles
from .authority import CertificateAuthority
from .database import DB_PATH, REASONS, CADatabase, serial_hex
from .errors import PKIError
from .fsutil import SECRET_DIR_MODE, Transaction, locked, make_dir, replace_tree, temp_dir_beside
from .keys import DEFAULT_KEY_TYPE, key_type
from .settings import Settings

DEFAULT_DIR = Path("build/pki")
# The vendor page's three hosts, created by init.
DEFAULT_ENTITIES = (("primary-host", "primary"), ("gateway-host", "gateway"), ("pcclient-host", "client"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class LabPKI:
    """One PKI directory (default ``build/pki``)."""

    def __init__(self, directory: Path | str = DEFAULT_DIR):
        # Resolved, so a symlinked --dir is replaced behind the link, not the link itself.
        self.root = Path(directory).expanduser().resolve()

    # -- queries -------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / DB_PATH).is_file()

    def manifest(self) -> dict[str, Any]:
        with locked(self.root.parent, shared=True):
            db, _ = self._open()
            return manifest.build(db, self.root)

    # -- init ----------------------------------------------------------------
    def init(
        self, *, intermediates: int = 1, key_type: str = DEFAULT_KEY_TYPE, force: bool = False, **options: Any
    ) -> dict[str, Any]:
        settings = Settings.create(intermediates, key_type, **options)
        if self.root.exists() and not self.root.is_dir():
            raise PKIError(f"{self.root} exists and is not a directory; choose another --dir")
        with locked(self.root.parent):
            if not force:
                if self.exists():
                    raise PKIError(f"a PKI already exists in {self.root}; pass --force to replace it")
                if self.root.is_dir() and any(self.root.iterdir()):
                    raise PKIError(
                        f"{self.root} is not empty and holds no PKI; choose an empty or new --dir, "
                        "or pass --force to replace its contents"
                    )
            with temp_dir_beside(self.root) as staging:
                db = self._build_tree(staging, settings)
                replace_tree(staging, self.root)
            return manifest.build(db, self.root)

    def _build_tree(self, staging: Path, settings: Settings) -> CADatabase:
        now = _now()
        os.chmod(staging, 0o755)
        dirs = export.make_tree_dirs(staging)
        kt = key_type(settings.key_type)
        db = CADatabase.new(settings)

        root = CertificateAuthority.create_root(settings.root_name, settings.org, kt.generate(), settings.days_ca, now)
        cas = [root]
        for depth, name in enumerate(settings.intermediate_names):
            parent = cas[-1]
            path_len = len(settings.intermediate_names) - depth - 1
            cas.append(
                parent.create_intermediate(
                    name, settings.org, kt.generate(), path_len, settings.days_ca, self._urls(settings, parent.name), now
                )
            )
        for ca in cas:
            db.add_ca(
                {
                    "name": ca.name,
                    "issuer": None if ca is root else cas[cas.index(ca) - 1].name,
                    "serial": serial_hex(ca.cert.serial_number),
                    "cert_pem": export.pem(ca.cert).decode("ascii"),
                    "key_file": f"ca/{ca.name}.key.pem",
                }
            )
        export.write_ca_keys(dirs["ca"], cas)
        export.write_ca_files(dirs["cas"], cas)
        signers = self._new_signers(db, cas, dirs["ca"], now)
        ts_bytes = export.truststore(root, settings.truststore_password, settings.legacy_pfx)
        export.write(dirs["truststores"] / export.TRUSTSTORE_NAME, ts_bytes)

        for name, role in DEFAULT_ENTITIES:
            password = passwords.random_password() if settings.random_passwords else passwords.default_entity_password(name, role)
            sans = [x509.DNSName(name)]
            record, files = self._new_entity(db, cas, name, role, sans, password, now)
            db.add_entity(record)
            files(make_dir(dirs["entities"] / name), make_dir(dirs["hosts"] / name), ts_bytes)
        ocsp.write_host_dir(make_dir(dirs["hosts"] / ocsp.OCSP_HOST), cas, signers, db)

        export.write(staging / DB_PATH, db.to_bytes())
        export.write(staging / manifest.MANIFEST_NAME, manifest.to_json(manifest.build(db, self.root)).encode())
        return db

    @staticmethod
    def _new_signers(db: CADatabase, cas: list[CertificateAuthority], ca_dir: Path, now: dt.datetime):
        """One delegated OCSP signer per CA; returns [(cert, key)] in CA order."""
        settings = db.settings
        kt = key_type(settings.key_type)
        key_dir = make_dir(ca_dir / ocsp.SIGNER_DIR, SECRET_DIR_MODE)
        out = []
        for ca in cas:
            key = kt.generate()
            cert = ca.issue_ocsp_signer(settings.org, key.public_key(), ocsp.SIGNER_DAYS, now)
            db.add_signer(
                {
                    "issuer": ca.name,
                    "serial": serial_hex(cert.serial_number),
                    "cert_pem": export.pem(cert).decode("ascii"),
                    "key_file": ocsp.signer_key_file(ca.name),
                }
            )
            export.write(key_dir / f"{ca.name}-ocsp.key.pem", key_pem(key))
            out.append((cert, key))
        return out

    # -- issue / reissue ---------------------------------------------------------
    def issue(self, name: str, role: str, sans: Iterable[str] = (), password: str | None = None) -> dict[str, Any]:
        return self.issue_many([(name, role, tuple(sans), password)])

    def issue_many(self, requests: Iterable[tuple[str, str, Iterable[str], str | None]]) -> dict[str, Any]:
        """New hosts (name, role, SANs, password or None) in one transaction: all or none; every request is
        checked before anything is written, and the PKI is opened once (`up --clients 200`)."""
        wanted = []
        for name, role, sans, password in requests:
            host = names.host_name(name)
            if host == ocsp.OCSP_HOST:
                raise PKIError(f"the name {host!r} is reserved for the OCSP responder's folder hosts/{host}/; pick another name")
            if host in (w[0] for w in wanted):
                raise PKIError(f"the host {host!r} is asked for twice; give each host once")
            profiles.check_role(role)
            if password is not None:
                passwords.check(password)
            wanted.append((host, role, _sans(host, sans), password))
        with locked(self.root.parent):
            db, cas = self._open()
            for host, _, _, _ in wanted:
                existing = db.entity(host)
                if existing is not None:
                    raise PKIError(
                        f"an entity named {host!r} already exists (role {existing['role']}); pick another "
                        f"name, or run `safeq-lab pki reissue {host}` for a fresh certificate"
                    )
            settings, now, writers = db.settings, _now(), []
            for host, role, general, password in wanted:
                if password is None:
                    password = passwords.random_password() if settings.random_passwords else passwords.default_entity_password(host, role)
                record, files = self._new_entity(db, cas, host, role, general, password, now)
                db.add_entity(record)
                writers.append((host, files))
            self._commit_entities(db, cas, writers)
            return manifest.build(db, self.root)

    def reissue(self, name: str) -> dict[str, Any]:
        host = names.host_name(name)
        with locked(self.root.parent):
            db, cas = self._open(skip_entity=host)
            ent = db.require_entity(host)
            now = _now()
            sans = [names.san(s) for s in ent["sans"]]
            record, files = self._new_entity(db, cas, host, ent["role"], sans, ent["password"], now)
            old_cert = x509.load_pem_x509_certificate(ent["cert_pem"].encode())
            ent["history"].append(
                {
                    "serial": ent["serial"],
                    "issuer": ent["issuer"],  # a rotation reissues under another CA
                    "cert_pem": ent["cert_pem"],
                    "not_before": manifest.iso(old_cert.not_valid_before_utc),
                    "not_after": manifest.iso(old_cert.not_valid_after_utc),
                    "superseded_at": manifest.iso(now),
                }
            )
            if db.revocation(ent["issuer"], ent["serial"]) is None:
                # The replaced certificate must not stay usable: OCSP reports it superseded.
                db.revoke(ent["issuer"], ent["serial"], time=manifest.iso(now), reason="superseded",
                          subject=old_cert.subject.rfc4514_string())
            for key in ("serial", "cert_pem", "key_type", "issuer", "key_file"):
                ent[key] = record[key]
            self._commit_entities(db, cas, [(host, files)])
            return manifest.build(db, self.root)

    def _new_entity(self, db: CADatabase, cas: list[CertificateAuthority], name: str, role: str,
                    sans: list[x509.GeneralName], password: str, now: dt.datetime):
        """Make key and certificate; return the DB record and a writer for its files."""
        settings = db.settings
        kt = key_type(settings.key_type)
        anchors = anchors_of(db, cas)
        cas = integrity.chain(db, cas, db.issuing)  # root ... the CA that issues entities now
        issuer = cas[-1]
        key = kt.generate()
        cert = issuer.issue_entity(
            name, settings.org, role, sans, key.public_key(), kt.is_rsa, settings.days_entity,
            self._urls(settings, issuer.name), now,
        )
        pfx = export.entity_pfx(name, key, cert, cas, password, settings.legacy_pfx)
        record = {
            "name": name,
            "role": role,
            "sans": [names.san_text(g) for g in sans],
            "password": password,
            "key_type": settings.key_type,
            "issuer": issuer.name,
            "serial": serial_hex(cert.serial_number),
            "cert_pem": export.pem(cert).decode("ascii"),
            "key_file": f"entities/{name}/{name}.key.pem",
            "history": [],
        }

        def files(edir: Path, hdir: Path, truststore_bytes: bytes) -> None:
            export.write_entity_dir(edir, name, key, cert, cas, pfx)
            export.write_host_dir(
                hdir, name=name, role=role, key=key, cert=cert, cas=cas, pfx=pfx, pfx_password=password,
                truststore_bytes=truststore_bytes, truststore_password=settings.truststore_password,
                primary_host=_primary_host(db, name, role), anchors=anchors,
            )

        return record, files

    def _commit_entities(self, db: CADatabase, cas: list[CertificateAuthority], writers: list[tuple[str, Any]]) -> None:
        """Each (name, files writer) staged, then the records: one transaction."""
        truststore = self._truststore_bytes(db, cas)
        with Transaction() as txn:
            for name, files in writers:
                edir = txn.stage_dir(self.root / "entities" / name)
                hdir = txn.stage_dir(self.root / "hosts" / name, in_place=True)
                files(edir, hdir, truststore)
            self._stage_records(txn, db)
            txn.commit()
        export.tighten_secrets(self.root)

    # -- revoke ------------------------------------------------------------------
    def revoke(self, name: str, reason: str = "unspecified") -> dict[str, Any]:
        host = names.host_name(name)
        if reason not in REASONS:
            raise PKIError(f"unknown revocation reason {reason!r}; choose one of: {', '.join(REASONS)}")
        with locked(self.root.parent):
            db, _ = self._open()
            ent = db.require_entity(host)
            done = db.revocation(ent["issuer"], ent["serial"])
            if done is not None:
                raise PKIError(
                    f"entity {host!r} is already revoked ({done['reason']} at {done['time']}); "
                    f"run `safeq-lab pki reissue {host}` for a fresh certificate"
                )
            cert = x509.load_pem_x509_certificate(ent["cert_pem"].encode())
            db.revoke(ent["issuer"], ent["serial"], time=manifest.iso(_now()), reason=reason,
                      subject=cert.subject.rfc4514_string())
            with Transaction() as txn:
                self._stage_records(txn, db)
                txn.commit()
            export.tighten_secrets(self.root)
            return manifest.build(db, self.root)

    # -- helpers -------------------------------------------------------------------
    def _open(self, skip_entity: str | None = None) -> tuple[CADatabase, list[CertificateAuthority]]:
        path = self.root / DB_PATH
        if not path.is_file():
            raise PKIError(f"no PKI found in {self.root} (no {DB_PATH}); create one with `safeq-lab pki init --dir {self.root}`")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PKIError(f"cannot read the CA database {path}: {exc.strerror}") from None
        db = CADatabase.parse(raw, path)
        cas = integrity.check_cas(db, self.root)
        integrity.check_entities(db, self.root, cas, skip=skip_entity)
        integrity.check_signers(db, self.root, cas)
        return db, cas

    def _stage_records(self, txn: Transaction, db: CADatabase) -> None:
        """The responder's status.json, manifest.json, then ca/db.json: the database last, as the commit point.

        status.json is replaced in place: the responder's folder is bind-mounted, never swap the folder."""
        hdir = ocsp.host_dir(self.root)
        records = [(hdir / ocsp.STATUS_FILE, ocsp.status_bytes(db))] if db.signers and hdir.is_dir() else []
        records.append((self.root / manifest.MANIFEST_NAME, manifest.to_json(manifest.build(db, self.root)).encode()))
        records.append((self.root / DB_PATH, db.to_bytes()))
        for path, data in records:
            txn.write_file(path, data, export.mode_for(path))

    @staticmethod
    def _urls(settings: Settings, issuer_name: str) -> profiles.Urls:
        return profiles.Urls(settings.ocsp_url, settings.ca_issuers_for(issuer_name), settings.crl_for(issuer_name))

    def _truststore_bytes(self, db: CADatabase, cas: list[CertificateAuthority]) -> bytes:
        path = self.root / "truststores" / export.TRUSTSTORE_NAME
        try:
            return path.read_bytes()
        except FileNotFoundError:
            settings = db.settings
            return export.truststore(cas[0], settings.truststore_password, settings.legacy_pfx)


def anchors_of(db: CADatabase, cas: list[CertificateAuthority]) -> export.Anchors:
    """The roots hosts trust and the CAs the primary imports: every CA not retired (two roots while
    a new one is rolled out)."""
    issuers = {c["name"]: c["issuer"] for c in db.cas}
    kept = [ca for ca in cas if ca.name not in db.retired]
    return export.Anchors(tuple(ca for ca in kept if issuers[ca.name] is None), tuple(kept))


def _sans(host: str, extra: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [x509.DNSName(host)]
    for value in extra:
        general = names.san(value)
        if general not in out:
            out.append(general)
    return out


def _primary_host(db: CADatabase, name: str, role: str) -> str:
    """The address a gateway connects to: the first entity with role primary."""
    for ent in db.entities:
        if ent["role"] == "primary":
            return ent["name"]
    return name if role == "primary" else DEFAULT_ENTITIES[0][0]


# -- functional API (what the lab orchestrator imports) ------------------------------
def exists(dir: Path | str) -> bool:
    return LabPKI(dir).exists()


def init_pki(dir: Path | str, *, intermediates: int = 1, key_type: str = DEFAULT_KEY_TYPE, force: bool = False,
             **options: Any) -> dict[str, Any]:
    return LabPKI(dir).init(intermediates=intermediates, key_type=key_type, force=force, **options)


def load_manifest(dir: Path | str) -> dict[str, Any]:
    return LabPKI(dir).manifest()


def issue(dir: Path | str, name: str, role: str, sans: Iterable[str] = (), password: str | None = None) -> dict[str, Any]:
    return LabPKI(dir).issue(name, role, sans, password)


def issue_many(dir: Path | str, requests: Iterable[tuple[str, str, Iterable[str], str | None]]) -> dict[str, Any]:
    return LabPKI(dir).issue_many(requests)


def revoke(dir: Path | str, name: str, reason: str = "unspecified") -> dict[str, Any]:
    return LabPKI(dir).revoke(name, reason)


def reissue(dir: Path | str, name: str) -> dict[str, Any]:
    return LabPKI(dir).reissue(name)
