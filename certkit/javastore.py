"""Judge key and trust stores the way a JRE does, by asking the JRE: its keytool, or the JRE
validator a service already runs (certkit.jre: KeyStore.load in that JVM, what keytool -list runs).

Java only counts PKCS12 certificates that carry its trusted-cert attribute as
trust anchors, and refuses some encryptions other tools accept; parsing the
file ourselves would hide exactly the mistakes the lab is for.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from . import fsio
from .jre import Validator, ValidatorError

KEYTOOL = os.environ.get("SAFEQ_KEYTOOL", "keytool")
# keytool's own JVM, started for one short listing: the client compiler only and the serial collector
# start it about a fifth faster; they change no verdict.
KEYTOOL_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class StoreError(Exception):
    """A store Java would not load; the message is what the lab logs."""


class _Refused(StoreError):
    """keytool refused the store itself (its verdict, kept with the store's other verdicts)."""


@dataclass
class Entry:
    alias: str
    kind: str  # PrivateKeyEntry | trustedCertEntry | SecretKeyEntry
    certs: list[x509.Certificate] = field(default_factory=list)


def _check_readable(path: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"keystore file {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):  # keytool's words; a FIFO would also block the read below
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise StoreError(f"keystore file {path} does not exist ({path} is {kind})")
    if not os.access(path, os.R_OK):
        raise StoreError(
            f"keystore file {path} is not readable by this service "
            f"(mode {stat.filemode(st.st_mode)}, owner uid {st.st_uid})"
        )


Keytool = str | Sequence[str]  # the keytool binary, or a command that runs one (e.g. in a container)


# The JRE's verdict per store as it is on disk (keytool's, or the validator's): a gateway asks again at
# each reconnect, and a keytool JVM costs more than half a second of CPU. The key is the file's content
# (its SHA-256: a copy of the same bytes, as the doc's `cp` makes, is the same store), the password's
# digest, the store type and the tool itself (keytool, or the validator's command), so any change to what
# is read asks again. Whether the service may read the file at all is checked before (_check_readable),
# never remembered.
_VERDICTS: dict[tuple, list[Entry] | StoreError] = {}
_VERDICTS_MAX = 64
_LOCK = threading.Lock()
# A file that keeps the verdicts across restarts (a service's own data volume): a container started
# again on the same stores reads them before its JVM is up. The tool's identity is in the key too.
VERDICTS_FILE_VAR = "SAFEQ_KEYTOOL_VERDICTS"
_loaded: set[str] = set()


def _content(path: str) -> tuple[int, str]:
    with open(path, "rb") as f:
        data = f.read()
    return len(data), hashlib.sha256(data).hexdigest()


def _verdict_key(path: str, password: str, storetype: str, prefix: list[str]) -> tuple:
    digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()
    tool = shutil.which(prefix[0])
    tool_st = os.stat(tool) if tool else None  # a JRE updated in place judges anew
    tool_id = (os.path.realpath(tool), tool_st.st_ino, tool_st.st_mtime_ns) if tool_st else ()
    return (path, *_content(path), digest, storetype, tuple(prefix), tool_id)


def list_entries(path: str, password: str, storetype: str | None = "PKCS12", keytool: Keytool = KEYTOOL,
                 jre: Validator | None = None) -> list[Entry]:
    """The store's entries as keytool lists them (once per store as it is on disk: ``_VERDICTS``); the
    password goes in the environment variable SAFEQ_STOREPASS (a ``keytool`` command running elsewhere
    must pass it on). With ``jre`` the running JRE validator loads the store instead: the same entries
    and refusals without a JVM of its own."""
    _check_readable(path)
    prefix = list(jre.cmd) if jre is not None else [keytool] if isinstance(keytool, str) else list(keytool)
    key = _verdict_key(path, password, storetype, prefix)
    _load_kept()
    known = _VERDICTS.get(key)
    if isinstance(known, StoreError):
        raise StoreError(str(known))
    if known is not None:
        return _copies(known)
    try:
        entries = _ask_jre(jre, path, password, storetype) if jre is not None else \
            _ask_keytool(path, password, storetype, prefix)
    except _Refused as exc:  # keytool's own verdict on the store (not a keytool that is missing or hung)
        _remember(key, exc)
        raise
    _remember(key, entries)
    return _copies(entries)


def _copies(entries: list[Entry]) -> list[Entry]:
    return [Entry(e.alias, e.kind, list(e.certs)) for e in entries]


def _remember(key: tuple, verdict) -> None:
    if not _still(key):  # the file changed while keytool read it: which version was judged is unknown
        return
    with _LOCK:
        if len(_VERDICTS) >= _VERDICTS_MAX:
            _VERDICTS.pop(next(iter(_VERDICTS)))
        _VERDICTS[key] = verdict
        kept = os.environ.get(VERDICTS_FILE_VAR)
        if kept:
            try:  # the stores as they are now only: the file stays as small as the stores in use
                fsio.write_json(kept, [_to_json(k, v) for k, v in _VERDICTS.items() if _still(k)], 0o600)
            except OSError:
                pass  # kept in this process only: the next start asks keytool again


def _still(key: tuple) -> bool:
    """Whether the store a verdict is about is still on disk as it was judged."""
    try:
        return _content(key[0]) == key[1:3]
    except OSError:
        return False


def _to_json(key: tuple, verdict) -> dict:
    if isinstance(verdict, StoreError):
        return {"key": key, "refused": str(verdict)}
    return {"key": key, "entries": [{"alias": e.alias, "kind": e.kind,
                                     "certs": [c.public_bytes(Encoding.PEM).decode() for c in e.certs]}
                                    for e in verdict]}


def _key_from_json(raw: list) -> tuple:
    return tuple(tuple(item) if isinstance(item, list) else item for item in raw)


def _load_kept() -> None:
    """The kept verdicts, read once per process. A damaged or unreadable file is not trusted: keytool is
    asked again and the file written anew."""
    kept = os.environ.get(VERDICTS_FILE_VAR)
    if not kept or kept in _loaded:
        return
    with _LOCK:
        _loaded.add(kept)
        try:
            items = fsio.read_json(kept, [])
            verdicts = {_key_from_json(item["key"]): _Refused(item["refused"]) if "refused" in item else
                        [Entry(e["alias"], e["kind"], [x509.load_pem_x509_certificate(c.encode()) for c in e["certs"]])
                         for e in item["entries"]] for item in items}
        except (OSError, fsio.StateError, KeyError, TypeError, ValueError, AttributeError):
            return
        for key, verdict in list(verdicts.items())[-_VERDICTS_MAX:]:
            _VERDICTS.setdefault(key, verdict)


def _ask_keytool(path: str, password: str, storetype: str, prefix: list[str]) -> list[Entry]:
    env = dict(os.environ, SAFEQ_STOREPASS=password)
    cmd = [*prefix, *KEYTOOL_JVM, "-list", "-rfc", "-keystore", path, "-storepass:env", "SAFEQ_STOREPASS"]
    if storetype:
        cmd += ["-storetype", storetype]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    except FileNotFoundError:
        raise StoreError(f"keytool not found ({prefix[0]})") from None
    except subprocess.TimeoutExpired:
        raise StoreError(f"keytool did not answer within 60 s for {path}") from None
    if proc.returncode != 0:
        text = (proc.stdout + proc.stderr).strip().splitlines()
        raise _Refused(java_words(text[-1]) if text else f"keytool exited {proc.returncode}")
    return parse_list_rfc(proc.stdout)


def _ask_jre(jre: Validator, path: str, password: str, storetype: str | None) -> list[Entry]:
    try:
        reply = jre.store(path, password, storetype)
    except ValidatorError as exc:
        raise StoreError(f"the JRE could not be asked about {path}: {exc}") from None
    if "refused" in reply:
        raise _Refused(str(reply["refused"]))
    return [Entry(e["alias"], e["kind"], [x509.load_der_x509_certificate(base64.b64decode(c)) for c in e["certs"]])
            for e in reply["entries"]]


def java_words(line: str) -> str:
    """keytool's last line without its own "keytool error: " label: what the Java program that
    loads the store (the product) throws, e.g. "java.io.IOException: keystore password was incorrect"."""
    return line.removeprefix("keytool error: ")


def parse_list_rfc(text: str) -> list[Entry]:
    entries: list[Entry] = []
    for block in re.split(r"^Alias name: ", text, flags=re.M)[1:]:
        alias = block.splitlines()[0].strip()
        kind = re.search(r"^Entry type: (\S+)", block, re.M)
        certs = [x509.load_pem_x509_certificate(m.group(0).encode()) for m in _PEM.finditer(block)]
        entries.append(Entry(alias, kind.group(1) if kind else "unknown", certs))
    return entries


def trusted_certs(entries: list[Entry]) -> list[x509.Certificate]:
    """The certificates Java trusts in a store: those of its trustedCertEntry entries."""
    return [c for e in entries if e.kind == "trustedCertEntry" for c in e.certs]


def trust_anchors(path: str, password: str, storetype: str | None = "PKCS12", keytool: Keytool = KEYTOOL,
                  jre: Validator | None = None) -> list[x509.Certificate]:
    """Only trustedCertEntry certificates are anchors; an empty result is what Java
    rejects with 'the trustAnchors parameter must be non-empty'."""
    anchors = trusted_certs(list_entries(path, password, storetype, keytool, jre))
    if not anchors:
        raise StoreError(
            "java.security.InvalidAlgorithmParameterException: the trustAnchors parameter must be non-empty "
            f"(truststore {path} has no trustedCertEntry)"
        )
    return anchors


@dataclass
class KeyStore:
    alias: str
    key: object
    chain: list[x509.Certificate]  # leaf first, as Java serves it


def load_keystore(path: str, password: str, keytool: Keytool = KEYTOOL, jre: Validator | None = None) -> KeyStore:
    entries = list_entries(path, password, "PKCS12", keytool, jre)
    keyed = [e for e in entries if e.kind == "PrivateKeyEntry"]
    if not keyed:
        raise StoreError(f"keystore {path} holds no PrivateKeyEntry (a truststore or certificate-only file?)")
    with open(path, "rb") as f:
        data = f.read()
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password.encode())
    except ValueError as exc:
        raise StoreError(f"keystore {path}: {exc}") from None
    chain = keyed[0].certs
    if key is None or cert is None or not chain or chain[0] != cert:
        raise StoreError(f"keystore {path}: private key entry without a matching certificate")
    return KeyStore(keyed[0].alias, key, chain)
