"""What the primary knows about each endpoint; `safeq-admin endpoints` reads the file."""
from __future__ import annotations

import datetime
import threading
import time

from safeqlab import util

from . import paths


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Registry:
    def __init__(self, path=paths.ENDPOINTS):
        self.path = path
        self.lock = threading.Lock()
        self.endpoints: dict[str, dict] = (util.read_json(path, {}) or {}).get("endpoints", {})
        for ep in self.endpoints.values():
            ep["state"] = "disconnected"  # nobody is connected to a freshly started process
        self._last_write = 0.0
        self._sessions: dict[str, int] = {}
        self._flush()

    def connected(self, key: str, **fields) -> None:
        with self.lock:
            self._sessions[key] = self._sessions.get(key, 0) + 1
        self.update(key, state="connected", **fields)

    def disconnected(self, key: str) -> None:
        """An endpoint may hold more than one session (a connection test beside the service)."""
        with self.lock:
            self._sessions[key] = max(0, self._sessions.get(key, 0) - 1)
            left = self._sessions[key]
        self.update(key, state="connected" if left else "disconnected")

    def update(self, key: str, force: bool = True, **fields) -> None:
        with self.lock:
            ep = self.endpoints.setdefault(key, {})
            ep.update(fields, last_seen=now_iso())
            # Heartbeats only touch last_seen: write those at most once a second.
            if force or time.monotonic() - self._last_write > 1.0:
                self._flush()

    def _flush(self) -> None:
        util.write_json(self.path, {"endpoints": self.endpoints})
        self._last_write = time.monotonic()
