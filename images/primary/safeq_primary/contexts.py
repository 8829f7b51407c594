"""The TLS contexts the primary serves with, rebuilt when what they trust changes, and its self-check."""
from __future__ import annotations

import logging
import socket
import ssl
import threading

from certkit import fsio, javastore
from certkit.certs import common_name, describe, pem
from certkit.jsse import java_reason
from certkit.tls import load_identity

from . import account, paths

log = logging.getLogger("safeq-cloud-server")


def java_cacerts_context(key, chain) -> ssl.SSLContext:
    """The primary's own outbound (Java-side) client: trusts the JRE cacerts only."""
    anchors = javastore.trust_anchors(paths.CACERTS, paths.CACERTS_PASSWORD, storetype=None, keytool=paths.KEYTOOL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=pem(anchors))
    load_identity(ctx, key, chain, str(paths.RUN))
    return ctx


def self_check(key, chain, host: str) -> dict:
    try:
        ctx = java_cacerts_context(key, chain)
        with socket.create_connection(("127.0.0.1", paths.PORT), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=host):
                pass
        return {"ok": True, "reason": None}
    except (OSError, javastore.StoreError) as exc:
        return {"ok": False, "reason": java_reason(exc, hostname=host)}


def trusted_cas() -> list:
    """The Trusted CA certificates; a damaged file is logged by name and left out, the intact ones serve."""
    trusted, problems = account.trusted_cas_lenient()
    for problem in problems:
        log.error("Trusted CA certificates: %s", problem)
    return trusted


def inbound_anchors() -> list:
    """What the trusted-ca policy trusts: the Trusted CA certificates plus the public bundle."""
    return trusted_cas() + account.system_cas()


class Contexts:
    def __init__(self, keystore: tuple, builtin: tuple, registry):
        self.keystore_key, self.keystore_chain, self.keystore = keystore
        self.builtin_key, self.builtin_chain = builtin
        self.registry = registry
        self.status = {"keystore": self.keystore, "self_check": None}
        self._ctx, self._stamp_seen = None, None
        self._lock = threading.Lock()

    def _stamp(self, policy: str):
        if policy == "built-in":
            return (policy, tuple(sorted(self.registry.builtin_certificates())))
        files = sorted(paths.TRUSTED_CA_DIR.glob("*.pem")) if paths.TRUSTED_CA_DIR.is_dir() else []
        return (policy, tuple((f.name, f.stat().st_mtime_ns) for f in files))

    def current(self) -> tuple[ssl.SSLContext, str]:
        """The context and the policy it was built for: a session is judged by that policy,
        not by one an admin switched to while its handshake ran."""
        policy = account.settings()["certificate_policy"]
        stamp = self._stamp(policy)
        with self._lock:
            if self._ctx is None or stamp != self._stamp_seen:
                self._ctx, self._stamp_seen = self._build(policy), stamp
            return self._ctx, policy

    def _build(self, policy: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if policy == "trusted-ca":
            ctx.verify_mode = ssl.CERT_REQUIRED
            # Java treats any trusted CA (an intermediate too) as a trust anchor.
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            trusted = trusted_cas()
            if trusted:
                ctx.load_verify_locations(cadata=pem(trusted))
            if paths.SYSTEM_BUNDLE.exists():
                ctx.load_verify_locations(cafile=str(paths.SYSTEM_BUNDLE))
            log.info("Certificate policy trusted-ca: %d Trusted CA certificate(s) + the public CA bundle", len(trusted))
        else:
            # Registration comes without a client certificate; known built-in certificates are anchors.
            ctx.verify_mode = ssl.CERT_OPTIONAL
            known = self.registry.builtin_certificates()
            if known:
                ctx.load_verify_locations(cadata="".join(known))
            log.info("Certificate policy built-in: %d registered endpoint certificate(s)", len(known))
        key, chain, state = self.identity(policy)
        load_identity(ctx, key, chain, str(paths.RUN))
        ctx.sni_callback = _remember_sni
        self.status.update(state=state, policy=policy, serving=describe(chain[0]))
        fsio.write_json(paths.STATUS, self.status)
        return ctx

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
        check = self_check(self.keystore_key, self.keystore_chain, common_name(self.keystore_chain[0]))
        if not check["ok"]:
            log.warning("Self-check of the listener against the JRE cacerts failed: %s", check["reason"])
        with self._lock:
            self.status["self_check"] = check
            self.status["state"] = self.identity(account.settings()["certificate_policy"])[2]
            fsio.write_json(paths.STATUS, self.status)


def _remember_sni(sslsock, name, ctx):
    sslsock.sni_name = name
