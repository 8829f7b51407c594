"""Account settings ("PKI and encryption") and the "Trusted CA certificates" list.

Persisted under /var/lib/safeqcloud (a volume), so they survive restarts and `down`/`up`.
"""
from __future__ import annotations

import datetime
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certkit import fsio
from certkit.certs import CertificateError, describe, fingerprint, is_ca, load_certs as parse_certs

from . import paths, state

POLICIES = state.POLICIES
ON_FAILURE = state.ON_FAILURE
DEFAULTS = {
    "certificate_policy": "built-in",  # the product's default
    "auto_trust": False,
    "ocsp": {"enabled": False, "url": None, "on_failure": "fail-closed"},
}
MAX_IMPORT = 1024 * 1024
_lock = threading.Lock()


class AccountError(ValueError):
    """A rejected change; the message says what to do. Nothing was changed."""


class DamagedTrustedCA(fsio.StateError):
    """A file in the Trusted CA certificates list cannot be read as certificates; the message names it."""


def settings() -> dict:
    """The saved settings over the defaults; fsio.StateError when the file is damaged (never the defaults)."""
    saved = state.read_state_unchanged(paths.SETTINGS, state.settings_problem)
    merged = {**DEFAULTS, **saved}
    merged["ocsp"] = {**DEFAULTS["ocsp"], **(saved.get("ocsp") or {})}
    return merged


def update(**changes) -> dict:
    with _lock:
        current = settings()
        if "certificate_policy" in changes and changes["certificate_policy"] not in POLICIES:
            raise AccountError(f"certificate policy must be one of {', '.join(POLICIES)}")
        if "auto_trust" in changes and not isinstance(changes["auto_trust"], bool):
            raise AccountError("auto_trust must be true or false")
        if "ocsp" in changes:
            ocsp = {**current["ocsp"], **changes["ocsp"]}
            if not isinstance(ocsp["enabled"], bool):
                raise AccountError("ocsp.enabled must be true or false")
            if ocsp["on_failure"] not in ON_FAILURE:
                raise AccountError(f"ocsp.on_failure must be one of {', '.join(ON_FAILURE)}")
            if ocsp["url"] is not None and not (isinstance(ocsp["url"], str) and ocsp["url"].startswith(("http://", "https://"))):
                raise AccountError("the custom OCSP URL must start with http:// or https://")
            changes["ocsp"] = ocsp
        current.update(changes)
        fsio.write_json(paths.SETTINGS, current)
        return current


def load_certs(data: bytes, origin: str) -> list[x509.Certificate]:
    """PEM (one or several) or DER, as the portal accepts."""
    if len(data) > MAX_IMPORT:
        raise AccountError(f"{origin}: {len(data)} bytes is more than {MAX_IMPORT // 1024} KiB: "
                           "export the CA certificate alone (.cer/.der/.crt/.pem)")
    try:
        return parse_certs(data, origin)
    except CertificateError as exc:
        raise AccountError(str(exc)) from None


def _file_for(cert: x509.Certificate) -> Path:
    return paths.TRUSTED_CA_DIR / (fingerprint(cert).replace(":", "").lower() + ".pem")


def validate_import(data: bytes, origin: str) -> list[x509.Certificate]:
    found = load_certs(data, origin)
    now = datetime.datetime.now(datetime.timezone.utc)
    seen = set()
    for cert in found:
        subject = cert.subject.rfc4514_string()
        if not is_ca(cert):
            raise AccountError(f"{origin}: {subject} is not a CA certificate (BasicConstraints CA=true missing): "
                               "import the root and intermediate CA certificates, not an entity certificate")
        if cert.not_valid_after_utc < now:
            raise AccountError(f"{origin}: {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        if _file_for(cert).exists() or fingerprint(cert) in seen:
            raise AccountError(f"{origin}: {subject} is already in the Trusted CA certificates list")
        seen.add(fingerprint(cert))
    return found


def import_cas(files: list[tuple[str, bytes]]) -> list[dict]:
    """All files or none: every certificate is checked before any is written."""
    with _lock:
        certs = []
        for origin, data in files:
            certs.extend(validate_import(data, origin))
        fps = [fingerprint(c) for c in certs]
        if len(set(fps)) != len(fps):
            raise AccountError("the same CA certificate is given twice")
        paths.TRUSTED_CA_DIR.mkdir(parents=True, exist_ok=True)
        for cert in certs:
            fsio.atomic_write(_file_for(cert), cert.public_bytes(serialization.Encoding.PEM))
        return [describe(c) for c in certs]


def remove_ca(ident: str) -> dict:
    """By SHA-256 fingerprint (or a unique prefix of at least 8 hex digits) or exact subject CN.

    A damaged file can be removed by its fingerprint (its file name) too."""
    with _lock:
        key = ident.replace(":", "").lower()
        matches = []
        for f, certs, problem in _entries():
            stem_hit = len(key) >= 8 and f.stem.startswith(key)
            if problem:
                if stem_hit:
                    matches.append((f, {"subject": f"(damaged file {f.name})", "issuer": None, "serial": None,
                                        "not_after": None, "sha256": f.stem, "damaged": problem}))
                continue
            for c in certs:
                cn_hit = any(a.value == ident for a in c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME))
                if (len(key) >= 8 and fingerprint(c).replace(":", "").lower().startswith(key)) or cn_hit:
                    matches.append((f, describe(c)))
        if not matches:
            raise AccountError(f"no Trusted CA certificate matches '{ident}': see `account show` for fingerprints")
        if len(matches) > 1:
            raise AccountError(f"'{ident}' matches {len(matches)} Trusted CA certificates: give the fingerprint")
        f, described = matches[0]
        f.unlink()
        return described


def _entries() -> list[tuple[Path, list[x509.Certificate], str | None]]:
    """(file, certificates, problem) for every file of the list; problem names the file."""
    if not paths.TRUSTED_CA_DIR.is_dir():
        return []
    out = []
    for f in sorted(paths.TRUSTED_CA_DIR.glob("*.pem")):
        try:
            out.append((f, x509.load_pem_x509_certificates(f.read_bytes()), None))
            continue
        except OSError as exc:
            what = f"cannot be read ({exc.strerror})"
        except ValueError:
            what = "is damaged (not PEM certificates)"
        out.append((f, [], f"Trusted CA file {f} {what}: remove it with `safeq-lab account remove-ca "
                           f"{f.stem[:16]}` and import the CA certificate again"))
    return out


def trusted_cas() -> list[x509.Certificate]:
    """The whole list; DamagedTrustedCA when any file of it is damaged."""
    certs, problems = trusted_cas_lenient()
    if problems:
        raise DamagedTrustedCA("; ".join(problems))
    return certs


def trusted_cas_lenient() -> tuple[list[x509.Certificate], list[str]]:
    """(the intact certificates, one problem per damaged file): the TLS context keeps serving with
    the intact ones and logs the others by name."""
    certs, problems = [], []
    for _, found, problem in _entries():
        certs.extend(found)
        if problem:
            problems.append(problem)
    return certs, problems


def system_cas() -> list[x509.Certificate]:
    """The public CA bundle: "global" CAs need no import."""
    try:
        return x509.load_pem_x509_certificates(paths.SYSTEM_BUNDLE.read_bytes())
    except (OSError, ValueError):
        return []
