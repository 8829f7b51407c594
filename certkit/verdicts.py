"""The JRE's acceptances, remembered by a server that judges the same endpoints again and again.

The JRE's chain verdict depends on the chain as sent, the anchors, the JVM (its java.security)
and the time, through each certificate's validity; revocation is not part of it (the primary
asks OCSP after the handshake). So a chain the JRE accepted is accepted again, for the same
anchors and JVM, for as long as every certificate of its validated path stays within its
validity: within that window it is not asked again. A refusal is asked every time (a
certificate not yet valid becomes valid; the reason must be the JRE's of the moment).
"""
from __future__ import annotations

import datetime
import threading
from typing import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .jre import Anchors, Validator, Verdict

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
