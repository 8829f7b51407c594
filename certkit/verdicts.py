"""The JRE's acceptances, remembered by a server that judges the same endpoints again and again
(AcceptedChains, in its process), and kept by an endpoint across its restarts (KeptAcceptances).

The JRE's chain verdict depends on the chain as sent, the anchors, the JVM (its java.security)
and the time, through each certificate's validity; revocation is not part of it (the primary
asks OCSP after the handshake). So a chain the JRE accepted is accepted again, for the same
anchors and JVM, for as long as every certificate of its validated path stays within its
validity: within that window it is not asked again. A refusal is asked every time (a
certificate not yet valid becomes valid; the reason must be the JRE's of the moment).
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import fsio
from .jre import Anchors, Validator, Verdict, b64_der

Clock = Callable[[], datetime.datetime]
KEPT = 1024  # distinct accepted chains remembered; the oldest is forgotten first


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def window(path: Sequence[x509.Certificate]) -> tuple[datetime.datetime, datetime.datetime]:
    """When every certificate of ``path`` is within its validity: (latest notBefore, earliest notAfter)."""
    return (max(c.not_valid_before_utc for c in path), min(c.not_valid_after_utc for c in path))


class AcceptedChains:
    """judge(chain as sent) -> the JRE's verdict against one fixed set of anchors, in one mode
    ("client": checkClientTrusted); an accepted chain is remembered while its path is valid."""

    def __init__(self, validator: Validator, anchors: Anchors, mode: str, *, kept: int = KEPT,
                 clock: Clock = _now):
        self.validator, self.anchors, self.mode = validator, anchors, mode
        self.kept, self.clock = kept, clock
        self._accepted: dict[tuple[bytes, ...], tuple[Verdict, tuple]] = {}
        self._lock = threading.Lock()

    def __call__(self, sent: Sequence[x509.Certificate]) -> Verdict:
        key = tuple(c.public_bytes(Encoding.DER) for c in sent)
        now = self.clock()
        with self._lock:
            found = self._accepted.get(key)
        if found is not None:
            verdict, (begins, ends) = found
            if begins <= now <= ends:
                return verdict
        verdict = self.validator.judge(list(sent), self.anchors, self.mode)
        if verdict.ok and verdict.path:  # the path bounds how long it holds; without one nothing is kept
            with self._lock:
                if key not in self._accepted and len(self._accepted) >= self.kept:
                    self._accepted.pop(next(iter(self._accepted)))
                self._accepted[key] = (verdict, window(verdict.path))
        return verdict


# -- kept across restarts --------------------------------------------------------------------------

KEPT_ON_DISK = 64  # acceptances an endpoint keeps in its file (it judges one primary: a few at most)
JVM_ENV = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")  # options any JVM picks up


def _files_under(folder: Path) -> list[Path]:
    folder = folder.resolve()
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def jre_identity(cmd: Sequence[str]) -> str | None:
    """What a validator started with ``cmd`` reads besides the question, as one digest: the command and
    the JVM option variables, its java.home's security settings and lists (conf/security, lib/security,
    release), the validator's classes (-cp) and a java.security override on the command. None when
    ``cmd`` names no java binary on this host (then nothing is kept)."""
    java = shutil.which(cmd[0]) if cmd else None
    if java is None:
        return None
    home = Path(os.path.realpath(java)).parent.parent
    digest = hashlib.sha256(json.dumps([list(cmd), [os.environ.get(v) for v in JVM_ENV]]).encode())
    try:
        files = [home / "release", *_files_under(home / "conf" / "security"), *_files_under(home / "lib" / "security")]
        for flag, value in zip(cmd, cmd[1:]):
            if flag in ("-cp", "-classpath"):
                files += _files_under(Path(value))
        files += [Path(a.split("=", 1)[1].lstrip("=")) for a in cmd if a.startswith("-Djava.security.properties=")]
        for file in files:
            digest.update(f"{file}\0".encode())
            digest.update(file.read_bytes() if file.is_file() else b"\0missing\0")
    except OSError:  # what cannot be read cannot be vouched for
        return None
    return digest.hexdigest()


class KeptAcceptances:
    """An endpoint's validator whose acceptances of servers' chains (checkServerTrusted and the host
    name check) are kept in a file on its data volume, so that the service started again on the same
    files does not start a JVM to hear them again. Kept for the same question (chain as sent, anchors,
    host name, key exchange), the same JRE as :func:`jre_identity` saw it when the service started
    (before its JVM did), the same UTC day (java.security's `denyAfter` constraints are dates) and
    while the validated path is valid; refusals are asked every time. Anything else is the validator's.
    A damaged or unreadable file is not trusted: the JRE is asked and the file written anew."""

    def __init__(self, validator: Validator, path: str | os.PathLike, clock: Clock = _now):
        self.validator, self.path, self.clock = validator, Path(path), clock
        self.jre = jre_identity(validator.cmd)
        self._lock = threading.Lock()
        self._kept: dict[str, dict] | None = None

    @property
    def java_version(self) -> str | None:
        return self.validator.java_version

    def refusal(self, verdict: Verdict) -> str:
        return self.validator.refusal(verdict)

    def _entries(self) -> dict[str, dict]:
        if self._kept is None:
            try:
                found = fsio.read_json(self.path, {})
            except fsio.StateError:  # damaged or unreadable
                found = {}
            self._kept = {k: e for k, e in found.items() if isinstance(e, dict)} if isinstance(found, dict) else {}
        return self._kept

    def holds_any(self) -> bool:
        """Whether acceptances of this JRE and day are kept (the JVM need not start before a handshake)."""
        today = self.clock().date().isoformat()
        with self._lock:
            return any((e.get("jre"), e.get("day")) == (self.jre, today) for e in self._entries().values())

    def judge(self, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], mode: str,
              host: str | None = None, auth_type: str = "UNKNOWN") -> Verdict:
        if mode != "server" or self.jre is None:
            return self.validator.judge(chain, anchors, mode, host=host, auth_type=auth_type)
        now = self.clock()
        sent = [b64_der(c) for c in chain]
        anchor_set = anchors.wire[0] if isinstance(anchors, Anchors) else Anchors(anchors).wire[0]
        key = hashlib.sha256(json.dumps([self.jre, now.date().isoformat(), host, auth_type, sent,
                                         anchor_set]).encode()).hexdigest()
        with self._lock:
            found = self._entries().get(key)
        try:
            if found and datetime.datetime.fromisoformat(found["begins"]) <= now <= \
                    datetime.datetime.fromisoformat(found["ends"]):
                return Verdict.from_reply({"ok": True, "anchor": found["anchor"], "path": found["path"]})
        except (KeyError, TypeError, ValueError):
            pass  # a damaged entry: the JRE is asked, and the entry replaced
        verdict = self.validator.judge(chain, anchors, mode, host=host, auth_type=auth_type)
        if verdict.ok and verdict.path:
            self._keep(key, verdict, now)
        return verdict

    def _keep(self, key: str, verdict: Verdict, now: datetime.datetime) -> None:
        begins, ends = window(verdict.path)
        entry = {"jre": self.jre, "day": now.date().isoformat(), "anchor": verdict.anchor,
                 "path": [b64_der(c) for c in verdict.path],
                 "begins": begins.isoformat(), "ends": ends.isoformat()}
        with self._lock:
            kept = self._entries()
            kept.pop(key, None)
            kept[key] = entry
            for old in list(kept)[:-KEPT_ON_DISK]:
                del kept[old]
            try:
                fsio.write_json(self.path, kept, 0o600)
            except OSError:
                pass  # kept in this process only: the next start asks the JRE again
