"""The TLS contexts the primary serves with, rebuilt when what they trust changes, and its self-check."""
from __future__ import annotations

import logging
import os
import threading

from cryptography import x509

from certkit import fsio, javastore
from certkit.certs import common_name, describe, fingerprint
from certkit.jre import Anchors, ValidatorError, Verdict
from certkit.jsse import PKIX
from certkit.verdicts import AcceptedChains

from . import account, paths
from .handshake import ServerTLS

log = logging.getLogger("safeq-cloud-server")


def self_check(validator, chain, host: str) -> dict:
    """Would a Java client that trusts the JRE's cacerts accept what the listener serves,
    under its own host name? The JRE judges the served chain as it judges any server."""
    try:
        anchors = javastore.trust_anchors(paths.CACERTS, paths.CACERTS_PASSWORD, storetype=None, jre=validator)
        verdict = validator.judge(chain, anchors, "server", host=host)
    except (javastore.StoreError, ValidatorError) as exc:
        return {"ok": False, "reason": str(exc)}
    return {"ok": verdict.ok, "reason": None if verdict.ok else validator.refusal(verdict)}


def trusted_cas() -> list:
    """The Trusted CA certificates; a damaged file is logged by name and left out, the intact ones serve."""
    trusted, problems = account.trusted_cas_lenient()
    for problem in problems:
        log.error("Trusted CA certificates: %s", problem)
    return trusted


def inbound_anchors() -> list:
    """What the trusted-ca policy trusts: the Trusted CA certificates plus the public bundle."""
    return trusted_cas() + account.system_cas()


def builtin_verdict(chain: list[x509.Certificate], known: frozenset[str]) -> Verdict:
    """Built-in policy: an endpoint's self-generated certificate is trusted as itself, once an
    administrator has trusted it (registered certificates, by fingerprint, are the only anchors)."""
    leaf = chain[0]
    if fingerprint(leaf) in known:
        return Verdict(ok=True, anchor=leaf.subject.rfc4514_string(), path=(leaf,))
    return Verdict(ok=False, exception="sun.security.validator.ValidatorException", message=PKIX,
                   certificate_exception=True)


class Contexts:
    """The server context for the account's policy, rebuilt when what it trusts changes."""

    def __init__(self, keystore: tuple, builtin: tuple, registry, validator):
        self.keystore_key, self.keystore_chain, self.keystore = keystore
        self.builtin_key, self.builtin_chain = builtin
        self.registry, self.validator = registry, validator
        self.status = {"keystore": self.keystore, "self_check": None}
        self._ctx, self._stamp_seen = None, None
        self._lock = threading.Lock()

    def _stamp(self, policy: str):
        if policy == "built-in":
            return (policy, tuple(sorted(self.registry.builtin_certificates())))
        try:  # asked at every connection: one scandir, no Path per file
            with os.scandir(paths.TRUSTED_CA_DIR) as found:
                files = sorted((f.name, f.stat().st_mtime_ns) for f in found
                               if f.name.endswith(".pem") and not f.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            files = []
        return (policy, tuple(files))

    def current(self) -> tuple[ServerTLS, str]:
        """The context and the policy it was built for: a session is judged by that policy,
        not by one an admin switched to while its handshake ran."""
        policy = account.settings()["certificate_policy"]
        stamp = self._stamp(policy)
        with self._lock:
            if self._ctx is None or stamp != self._stamp_seen:
                self._ctx, self._stamp_seen = self._build(policy), stamp
            return self._ctx, policy

    def _build(self, policy: str) -> ServerTLS:
        key, chain, state = self.identity(policy)
        if policy == "trusted-ca":
            trusted = trusted_cas()
            anchors = Anchors(trusted + account.system_cas())  # as inbound_anchors(), each file read once
            log.info("Certificate policy trusted-ca: %d Trusted CA certificate(s) + the public CA bundle", len(trusted))
            tls = ServerTLS(key, chain, anchors, AcceptedChains(self.validator, anchors, "client"), require=True)
        else:
            # Registration comes without a client certificate; registered built-in certificates are anchors.
            known = [x509.load_pem_x509_certificate(p.encode()) for p in self.registry.builtin_certificates()]
            log.info("Certificate policy built-in: %d registered endpoint certificate(s)", len(known))
            fingerprints = frozenset(fingerprint(k) for k in known)  # once per context, not per handshake
            tls = ServerTLS(key, chain, known, lambda sent: builtin_verdict(sent, fingerprints), require=False)
        self.status.update(state=state, policy=policy, serving=describe(chain[0]))
        fsio.write_json(paths.STATUS, self.status)
        return tls

    def identity(self, policy: str):
        """(key, chain, state): the PFX under the trusted-CA policy, the built-in certificate otherwise."""
        if policy != "trusted-ca":
            return self.builtin_key, self.builtin_chain, "built-in"
        if self.keystore_key is None:
            return self.builtin_key, self.builtin_chain, "fallback"
        check = self.status.get("self_check")
        return self.keystore_key, self.keystore_chain, "degraded" if check and not check["ok"] else "serving"

    def run_self_check(self) -> None:
        if account.settings()["certificate_policy"] != "trusted-ca" or self.keystore_key is None:
            return
        check = self_check(self.validator, self.keystore_chain, common_name(self.keystore_chain[0]))
        if not check["ok"]:
            log.warning("Self-check of the listener against the JRE cacerts failed: %s", check["reason"])
        with self._lock:
            self.status["self_check"] = check
            self.status["state"] = self.identity(account.settings()["certificate_policy"])[2]
            fsio.write_json(paths.STATUS, self.status)

    def record_jre(self, info: dict) -> None:
        """The JRE that judges chains, for `safeq-admin status`."""
        with self._lock:
            self.status["jre"] = info
            fsio.write_json(paths.STATUS, self.status)
