"""The endpoints list: every gateway and client the primary has seen, with a stable UUID.

Persisted (a volume) so that built-in endpoint authorization survives restarts.
`safeq-admin endpoints` and the lab's status read the same records. A record belongs to a
certificate (its SHA-256); connections refused before showing one are kept apart, in a
short in-memory RefusedLog, so that probes and scanners do not fill the list.
"""
from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
import uuid
from pathlib import Path

from certkit import fsio
from safeqlab.records import current_record
from safeqlab.util import now_iso

from . import paths, state

TRUSTED_REASON = "built-in policy: endpoint trusted by an administrator"
UNTRUSTED_REASON = "endpoint not trusted: untrusted by an administrator"


class AmbiguousName(LookupError):
    """A name shared by several endpoints; the message lists their ids."""


def current(records: list[dict], name: str) -> dict | None:
    """The record for host ``name``: the connected one, else the one seen last."""
    return current_record(records, name)


class Registry:
    def __init__(self, path=None):
        self.path = Path(path) if path else paths.ENDPOINTS
        self.lock = threading.RLock()
        # A damaged file raises fsio.StateError here: it is never replaced by an empty list.
        data = state.read_state(self.path, state.endpoints_problem)
        # Records without a fingerprint are refused connections an older version listed.
        self.endpoints: dict[str, dict] = {k: v for k, v in data.get("endpoints", {}).items()
                                           if "id" in v and v.get("sha256")}
        for ep in self.endpoints.values():
            ep["state"] = "disconnected"  # nobody is connected to a freshly started process
        self._sessions: dict[str, int] = {}
        self._last_write = 0.0
        self._pen = threading.Lock()  # one writer at a time; never held with self.lock wanted
        self._seq = self._written = 0
        self._dirty = False
        with self._changing():
            self._flush()

    # --- lookups -----------------------------------------------------------------------------
    def get(self, ident: str) -> dict | None:
        """By UUID, or by name when exactly one endpoint has it; AmbiguousName when several do."""
        with self.lock:
            if ident in self.endpoints:
                return self.endpoints[ident]
            named = [ep for ep in self.endpoints.values() if ep.get("name") == ident]
            if len(named) > 1:
                ids = ", ".join(ep["id"] for ep in named)
                raise AmbiguousName(f"name {ident} matches {len(named)} endpoints ({ids}): give the id")
            return named[0] if named else None

    def current(self, name: str) -> dict | None:
        with self.lock:
            return current(list(self.endpoints.values()), name)

    def by_fingerprint(self, sha256: str) -> dict | None:
        with self.lock:
            return next((ep for ep in self.endpoints.values() if ep.get("sha256") == sha256), None)

    def builtin_certificates(self) -> list[str]:
        with self.lock:
            return [ep["certificate"] for ep in self.endpoints.values() if ep.get("kind") == "built-in" and ep.get("certificate")]

    def all(self) -> list[dict]:
        with self.lock:
            return [dict(ep) for ep in self.endpoints.values()]

    # --- changes -----------------------------------------------------------------------------
    def record(self, sha256: str, address: str, force: bool = True, **fields) -> dict:
        """Create or update the record for a certificate (its SHA-256 fingerprint)."""
        if not sha256:
            raise ValueError("an endpoint record needs a certificate fingerprint; "
                             "list refused connections in RefusedLog instead")
        with self._changing():
            ep = self.by_fingerprint(sha256)
            if ep is None:
                ep = {"id": str(uuid.uuid4()), "sha256": sha256, "trusted": False, "first_seen": now_iso()}
                self.endpoints[ep["id"]] = ep
            ep.update(fields, address=address, last_seen=now_iso())
            if force or time.monotonic() - self._last_write > 1.0:  # heartbeats: at most one write a second
                self._flush()
            return ep

    def update(self, ident: str, **fields) -> dict:
        """Decision, reason and other facts; trust changes go through trust()/untrust()."""
        if {"trusted", "auto_trusted"} & set(fields):
            raise ValueError("change trust with Registry.trust() or Registry.untrust()")
        with self._changing():
            ep = self.endpoints[ident]
            ep.update(fields)
            self._flush()
            return ep

    def trust(self, ident: str) -> dict:
        """Trusted by an administrator: accepted from now on (built-in policy). KeyError if unknown."""
        with self._changing():
            ep = self.endpoints[ident]
            ep.update(trusted=True, auto_trusted=False, decision="accepted", reason=TRUSTED_REASON)
            self._flush()
            return dict(ep)

    def untrust(self, ident: str) -> dict:
        with self._changing():
            ep = self.endpoints[ident]
            ep.update(trusted=False, auto_trusted=False, decision="not-trusted", reason=UNTRUSTED_REASON)
            self._flush()
            return dict(ep)

    def connected(self, ident: str) -> None:
        with self._changing():
            self._sessions[ident] = self._sessions.get(ident, 0) + 1
            self.endpoints[ident]["state"] = "connected"
            self._flush()

    def disconnected(self, ident: str) -> None:
        """An endpoint may hold more than one session (a connection test beside the service)."""
        with self._changing():
            left = max(0, self._sessions.get(ident, 0) - 1)
            self._sessions[ident] = left
            self.endpoints[ident]["state"] = "connected" if left else "disconnected"
            self._flush()

    @contextlib.contextmanager
    def _changing(self):
        """A change under the lock; the file is written after the lock is let go, so readers (the
        admin API, handshakes) never wait on the disk. Writes land newest-last."""
        with self.lock:
            yield
            snapshot = self._snapshot() if self._dirty else None
        if snapshot is not None:
            self._write(*snapshot)

    def _flush(self) -> None:
        """Under the lock: the list changed and goes to disk when the change is done."""
        self._dirty = True

    def _snapshot(self) -> tuple[int, bytes]:
        self._dirty = False
        self._seq += 1
        self._last_write = time.monotonic()
        return self._seq, (json.dumps({"endpoints": self.endpoints}, indent=2, sort_keys=True) + "\n").encode()

    def _write(self, seq: int, data: bytes) -> None:
        with self._pen:
            if seq <= self._written:  # a newer list is on disk already
                return
            fsio.atomic_write(self.path, data, fsio.FILE_MODE)
            self._written = seq


class RefusedLog:
    """Recent connections refused before they showed an identity (no certificate, failed handshake)."""

    def __init__(self, size: int = 50):
        self._items: collections.deque[dict] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, address: str, reason: str) -> None:
        with self._lock:
            self._items.append({"time": now_iso(), "address": address, "reason": reason})

    def recent(self) -> list[dict]:
        """Newest first."""
        with self._lock:
            return [dict(item) for item in reversed(self._items)]
