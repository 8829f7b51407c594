"""Threads kept for the next connection instead of one started and ended per connection.

A connection never waits for a busy worker: with none idle, a new thread starts (the gate in
limits.py bounds the unauthenticated ones). A worker idle for ``idle_seconds`` ends, so the
threads of a burst (a reconnect storm, 128 half-open connections) are gone two seconds after it.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

IDLE_SECONDS = 2.0


class Workers:
    def __init__(self, idle_seconds: float = IDLE_SECONDS, name: str = "connection"):
        self.idle_seconds, self.name = idle_seconds, name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = 0  # workers waiting for a job, less the jobs queued for them
        self._lock = threading.Lock()

    @property
    def idle(self) -> int:
        with self._lock:
            return self._idle

    def run(self, job: Callable, *args) -> None:
        """``job(*args)`` on an idle worker, or on a new one. RuntimeError when no thread can start."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                self._jobs.put((job, args))
                return
        threading.Thread(target=self._work, args=(job, args), daemon=True, name=self.name).start()

    def _work(self, job: Callable, args: tuple) -> None:
        while True:
            job(*args)
            job = args = None  # nothing of the last connection is held while idle
            with self._lock:
                self._idle += 1
            try:
                job, args = self._jobs.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # enough others wait for the jobs queued: this one ends
                        self._idle -= 1
                        return
                # Every waiting worker is spoken for, this one too: its job is queued already.
                job, args = self._jobs.get_nowait()
