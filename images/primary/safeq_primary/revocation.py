"""The account's OCSP settings applied to connecting endpoints (trusted-CA policy only)."""
from __future__ import annotations

import threading

from cryptography import x509

from safeqlab.ocspcheck import OcspChecker, Result

from . import account

# Answers are cached until nextUpdate, but at most this long, so a revocation made
# during a lab shows within seconds.
MAX_CACHE_AGE = 5.0
# A verified chain longer than this is not a corporate PKI: check no further up (each step may be a fetch).
MAX_CHECKED = 4


class Revocation:
    def __init__(self):
        self._lock = threading.Lock()
        self._checker: OcspChecker | None = None
        self._key = None

    def checker(self) -> OcspChecker | None:
        """None while "enable OCSP revocation checks" is off; one checker (and cache) per setting."""
        ocsp = account.settings()["ocsp"]
        if not ocsp["enabled"]:
            return None
        key = (ocsp["url"], ocsp["on_failure"])
        with self._lock:
            if key != self._key:
                self._checker = OcspChecker(custom_url=ocsp["url"], on_failure=ocsp["on_failure"], max_cache_age=MAX_CACHE_AGE)
                self._key = key
            return self._checker

    def check(self, chain: list[x509.Certificate]) -> Result | None:
        """``chain`` is the verified chain: a peer cannot make the primary fetch URLs from certificates it
        merely appended."""
        checker = self.checker()
        if checker is None:
            return None
        return checker.check_chain(chain[:MAX_CHECKED], account.trusted_cas_lenient()[0] + chain[1:])
