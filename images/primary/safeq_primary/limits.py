"""Bounds on what unauthenticated peers can hold: connection counts and overall deadlines.

A thread per connection is cheap until someone opens thousands and never finishes a
handshake; the gate refuses before a thread starts, and the reaper ends sockets that
outlive their deadline however slowly their bytes arrive.
"""
from __future__ import annotations

import itertools
import logging
import socket
import threading
import time

log = logging.getLogger("safeq-cloud-server")
LOG_EVERY = 10.0  # seconds between refusal log lines for one address


class ConnectionGate:
    """Counts connections that have not authenticated yet, per address and in all."""

    def __init__(self, max_total: int = 128, max_per_address: int = 16, clock=time.monotonic):
        self.max_total, self.max_per_address = max_total, max_per_address
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        self._total = 0
        self._logged: dict[str, float] = {}

    def admit(self, address: str) -> bool:
        """True: counted, the caller must release() it once. False: close the connection at once."""
        with self._lock:
            mine = self._open.get(address, 0)
            if mine < self.max_per_address and self._total < self.max_total:
                self._open[address] = mine + 1
                self._total += 1
                return True
            count = mine if mine >= self.max_per_address else self._total
            should_log = self._should_log(address)
        if should_log:
            log.warning("Refused connection from %s: %d unauthenticated connections already open "
                        "(limit %d per address, %d in all)", address, count, self.max_per_address, self.max_total)
        return False

    def _should_log(self, address: str) -> bool:
        now = self._clock()
        if now - self._logged.get(address, -LOG_EVERY) < LOG_EVERY:
            return False
        if len(self._logged) > 4 * self.max_total:  # many addresses: forget the quiet ones
            self._logged = {a: t for a, t in self._logged.items() if now - t < LOG_EVERY}
        self._logged[address] = now
        return True

    def release(self, address: str) -> None:
        with self._lock:
            mine = self._open.get(address, 0)
            if mine <= 0:
                raise ValueError(f"release({address!r}) without a matching admit()")
            if mine == 1:
                del self._open[address]
            else:
                self._open[address] = mine - 1
            self._total -= 1

    def counts(self) -> dict:
        with self._lock:
            return {"total": self._total, "per_address": dict(self._open)}


class Deadlines:
    """One reaper thread that shuts down sockets whose deadline has passed.

    shutdown() wakes a thread blocked in recv/handshake on that socket; its owner still
    closes it. The socket given must be the one doing the I/O: a plain socket wrapped by
    ssl.wrap_socket() is detached and can no longer be shut down."""

    def __init__(self, stop: threading.Event, tick: float = 0.25):
        self._stop, self._tick = stop, tick
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, socket.socket]] = {}
        self._tokens = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="deadline-reaper", daemon=True)
        self._thread.start()

    def add(self, sock, seconds: float) -> int:
        """``sock``: a socket, or a TLS connection over one (its ``raw`` socket is the one shut down)."""
        sock = getattr(sock, "raw", sock)
        token = next(self._tokens)
        with self._lock:
            self._due[token] = (time.monotonic() + seconds, sock)
        return token

    def cancel(self, token: int) -> None:
        with self._lock:
            self._due.pop(token, None)

    def pending(self) -> int:
        with self._lock:
            return len(self._due)

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            with self._lock:
                expired = [t for t, (due, _) in self._due.items() if due <= now]
                socks = [self._due.pop(t)[1] for t in expired]
            for sock in socks:
                try:
                    # socket.socket's own shutdown: SSLSocket.shutdown() would also drop the
                    # TLS object under the thread that is using it.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:  # already closed or never connected: nothing to wake
                    pass
