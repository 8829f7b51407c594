"""The endpoints list: every gateway and client the primary has seen, with a stable UUID.

Persisted (a volume) so that built-in endpoint authorization survives restarts.
`safeq-admin endpoints` and the lab's status read the same records.
"""
from __future__ import annotations

import threading
import time
import uuid

from certkit import fsio
from safeqlab import util
from safeqlab.util import now_iso

from . import paths


class Registry:
    def __init__(self, path=paths.ENDPOINTS):
        self.path = path
        self.lock = threading.RLock()
        data = fsio.read_json(path, {}) or {}
        self.endpoints: dict[str, dict] = {k: v for k, v in data.get("endpoints", {}).items() if "id" in v}
        for ep in self.endpoints.values():
            ep["state"] = "disconnected"  # nobody is connected to a freshly started process
        self._sessions: dict[str, int] = {}
        self._last_write = 0.0
        self._flush()

    # --- lookups -----------------------------------------------------------------------------
    def get(self, ident: str) -> dict | None:
        """By UUID, or by name when exactly one endpoint has it."""
        with self.lock:
            if ident in self.endpoints:
                return self.endpoints[ident]
            named = [ep for ep in self.endpoints.values() if ep.get("name") == ident]
            if len(named) == 1:
                return named[0]
            if len(named) > 1:  # prefer the one connected or seen last
                return sorted(named, key=lambda e: (e.get("state") == "connected", e.get("last_seen") or ""))[-1]
            return None

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
    def record(self, sha256: str | None, address: str, force: bool = True, **fields) -> dict:
        """Create or update the record for a certificate (or, without one, for an address)."""
        with self.lock:
            ep = self.by_fingerprint(sha256) if sha256 else None
            if ep is None and not sha256:
                ep = next((e for e in self.endpoints.values() if e.get("address") == address and not e.get("sha256")), None)
            if ep is None:
                ep = {"id": str(uuid.uuid4()), "sha256": sha256, "trusted": False, "first_seen": now_iso()}
                self.endpoints[ep["id"]] = ep
            ep.update(fields, address=address, last_seen=now_iso())
            if force or time.monotonic() - self._last_write > 1.0:  # heartbeats: at most one write a second
                self._flush()
            return ep

    def update(self, ident: str, **fields) -> dict:
        with self.lock:
            ep = self.endpoints[ident]
            ep.update(fields)
            self._flush()
            return ep

    def connected(self, ident: str) -> None:
        with self.lock:
            self._sessions[ident] = self._sessions.get(ident, 0) + 1
            self.endpoints[ident]["state"] = "connected"
            self._flush()

    def disconnected(self, ident: str) -> None:
        """An endpoint may hold more than one session (a connection test beside the service)."""
        with self.lock:
            left = max(0, self._sessions.get(ident, 0) - 1)
            self._sessions[ident] = left
            self.endpoints[ident]["state"] = "connected" if left else "disconnected"
            self._flush()

    def _flush(self) -> None:
        fsio.write_json(self.path, {"endpoints": self.endpoints})
        self._last_write = time.monotonic()
