"""Is the OCSP responder reachable? A TCP connect, remembered for a moment: every open lab page
polls, and the answer must not cost each of them a connect."""
from __future__ import annotations

import socket
import threading
import time

TIMEOUT = 1.0
KEEP = 2.0  # seconds an answer is reused


def split_address(address: str) -> tuple[str, int] | None:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class Reachability:
    def __init__(self, address: str | None, timeout: float = TIMEOUT, keep: float = KEEP, clock=time.monotonic):
        self.target = split_address(address) if address else None
        self.timeout = timeout
        self.keep = keep
        self.clock = clock
        self._lock = threading.Lock()
        self._answer: tuple[float, bool] | None = None

    def up(self) -> bool | None:
        """True/False; None when no address is configured."""
        if self.target is None:
            return None
        with self._lock:  # one probe at a time; the others wait for its answer
            if self._answer and self.clock() - self._answer[0] < self.keep:
                return self._answer[1]
            answer = self._connect()
            self._answer = (self.clock(), answer)
            return answer

    def _connect(self) -> bool:
        try:
            with socket.create_connection(self.target, timeout=self.timeout):
                return True
        except OSError:  # refused, unresolvable, timed out
            return False
