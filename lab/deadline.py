"""One deadline for a whole run (`safeq-lab up --timeout S`), shared by its steps.

Each step gets the time that is left, so S bounds the run however slow one step is,
and the error names the step that was running when the time ran out.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from .docker import CommandTimeout
from .errors import LabError

SLACK = 1.0  # a command killed at its timeout ends a moment after the deadline


class Deadline:
    def __init__(self, seconds: float, what: str = "safeq-lab up",
                 hint: str = "raise --timeout, or see `safeq-lab status` and `safeq-lab logs SERVICE`",
                 clock=time.monotonic):
        self.seconds, self.what, self.hint, self.clock = seconds, what, hint, clock
        self.end = clock() + seconds
        self.step = "start"

    def remaining(self) -> float:
        return self.end - self.clock()

    def left(self, cap: float | None = None) -> float:
        """Seconds a command may take now (at most ``cap``); past the deadline, the run's error."""
        remaining = self.remaining()
        if remaining <= 0:
            raise self.expired()
        return remaining if cap is None else min(cap, remaining)

    def expired(self, detail: str = "") -> LabError:
        why = f": {detail}" if detail else ""
        return LabError(f"{self.what} did not finish within {self.seconds:g} s (at step {self.step}){why}; {self.hint}")

    @contextmanager
    def at(self, step: str):
        """Name the running step; a command cut short by the deadline becomes the run's error."""
        self.step = step
        try:
            yield self
        except CommandTimeout:
            if self.remaining() < SLACK:
                raise self.expired() from None
            raise
