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
        self._flush()

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
