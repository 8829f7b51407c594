"""safeq-cloud-server: mutual TLS on 2560, decided by the account's certificate policy.

trusted-ca: the TLS handshake verifies the endpoint's chain against the Trusted CA
  certificates plus the public CA bundle; endpoint authorization is not used.
built-in:   endpoints present their own self-generated certificates. A new one registers
  (its certificate, over TLS without a client certificate) and is "not trusted" until an
  admin trusts it (or at once with auto-trust); then its certificate is accepted in the
  handshake and the endpoint is served.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from certkit import fsio, javastore
from safeqlab import proto, util
from certkit.certs import common_name, describe, fingerprint, pem
from certkit.jsse import java_reason
from certkit.tls import load_identity, peer_chain

from . import account, identity, paths
from .registry import Registry
from .revocation import Revocation

log = logging.getLogger("safeq-cloud-server")
PKIX_SHORT = "PKIX path building failed"
HANDSHAKE_TIMEOUT = 5.0
SESSION_TIMEOUT = 3 * proto.HEARTBEAT_SECONDS + 1


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


def cert_names(cert: x509.Certificate) -> set[str]:
    names = {common_name(cert)}
    try:
        names.update(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return names


def trust_anchor(chain: list[x509.Certificate], anchors: list[x509.Certificate]) -> x509.Certificate | None:
    """The nearest trusted CA the chain (leaf first) still leads to, or None."""
    by_fp = {fingerprint(a): a for a in anchors}
    for cert in chain:
        if fingerprint(cert) in by_fp and cert is not chain[0]:
            return by_fp[fingerprint(cert)]
        for anchor in anchors:
            if anchor.subject == cert.issuer:
                try:
                    cert.verify_directly_issued_by(anchor)
                    return anchor
                except (ValueError, TypeError, InvalidSignature):
                    continue
    return None


def quiet_close(sock: socket.socket) -> None:
    """Close without a TCP reset: under TLS 1.3 the peer has already sent data when we
    refuse it, and a reset would overtake our alert, hiding the reason from the peer."""
    try:
        raw = socket.socket(fileno=sock.detach())
    except OSError:
        sock.close()
        return
    with raw:
        try:
            raw.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 1.0  # bounded: a peer that keeps sending cannot hold us
            raw.settimeout(0.5)
            while time.monotonic() < deadline and raw.recv(4096):
                pass
        except OSError:
            pass


def peer_name(ip: str) -> str:
    try:
        return socket.gethostbyaddr(ip)[0].split(".")[0]
    except OSError:
        return "unknown"


class Session:
    """A live, accepted session: what re-evaluation needs to decide whether it may stay."""

    def __init__(self, tls: ssl.SSLSocket, endpoint_id: str, policy: str, chain: list[x509.Certificate]):
        self.tls, self.endpoint_id, self.policy, self.chain = tls, endpoint_id, policy, chain
        self.closed_reason: str | None = None
        self.decision = "not-trusted"

    def close(self, reason: str, decision: str = "not-trusted") -> None:
        self.closed_reason, self.decision = reason, decision
        try:
            self.tls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server:
    def __init__(self, keystore: tuple, builtin: tuple, registry: Registry):
        self.keystore_key, self.keystore_chain, self.keystore = keystore
        self.builtin_key, self.builtin_chain = builtin
        self.registry = registry
        self.revocation = Revocation()
        self.status = {"keystore": self.keystore, "self_check": None}
        self._ctx, self._ctx_stamp = None, None
        self._ctx_lock = threading.Lock()
        self.sessions: set[Session] = set()
        self.sessions_lock = threading.Lock()

    # --- TLS context, rebuilt when what it trusts changes ---------------------------------------
    def _stamp(self, policy: str):
        if policy == "built-in":
            return (policy, tuple(sorted(self.registry.builtin_certificates())))
        files = sorted(paths.TRUSTED_CA_DIR.glob("*.pem")) if paths.TRUSTED_CA_DIR.is_dir() else []
        return (policy, tuple(f.name for f in files))

    def context(self) -> ssl.SSLContext:
        return self.context_for_policy()[0]

    def context_for_policy(self) -> tuple[ssl.SSLContext, str]:
        """The context and the policy it was built for: a session is judged by that policy,
        not by one an admin switched to while its handshake ran."""
        policy = account.settings()["certificate_policy"]
        stamp = self._stamp(policy)
        with self._ctx_lock:
            if self._ctx is not None and stamp == self._ctx_stamp:
                return self._ctx, policy
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if policy == "trusted-ca":
                ctx.verify_mode = ssl.CERT_REQUIRED
                # Java treats any trusted CA (an intermediate too) as a trust anchor.
                ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
                trusted = account.trusted_cas()
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
            ctx.sni_callback = self._remember_sni
            self._ctx, self._ctx_stamp = ctx, stamp
            self.status.update(state=state, policy=policy, serving=describe(chain[0]))
            fsio.write_json(paths.STATUS, self.status)
            return ctx, policy

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
        with self._ctx_lock:
            self.status["self_check"] = check
            self.status["state"] = self.identity(account.settings()["certificate_policy"])[2]
            fsio.write_json(paths.STATUS, self.status)

    @staticmethod
    def _remember_sni(sslsock, name, ctx):
        sslsock.sni_name = name

    # --- listener ------------------------------------------------------------------------------
    def serve(self, stop: threading.Event, ready: threading.Event) -> None:
        lsock = socket.create_server(("0.0.0.0", paths.PORT), backlog=64)
        lsock.settimeout(0.2)
        ready.set()
        log.info("Listening on port %d (mutual TLS)", paths.PORT)
        while not stop.is_set():
            try:
                conn, addr = lsock.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # e.g. out of file descriptors: keep listening
                log.warning("accept failed: %s", exc)
                time.sleep(0.1)
                continue
            threading.Thread(target=self.handle, args=(conn, addr, stop), daemon=True).start()
        lsock.close()

    def handle(self, conn: socket.socket, addr, stop: threading.Event) -> None:
        ip = addr[0]
        conn.settimeout(HANDSHAKE_TIMEOUT)
        tls = None
        try:
            ctx, policy = self.context_for_policy()
            tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self._refused_handshake(ip, exc)
            quiet_close(tls or conn)
            return
        try:
            self.session(tls, ip, stop, policy)
        except (OSError, proto.ProtocolError) as exc:
            if not ipaddress.ip_address(ip).is_loopback:  # loopback: the self-check and healthcheck probes
                log.info("Session from %s ended: %s", ip, java_reason(exc))
        finally:
            tls.close()

    def _refused_handshake(self, ip: str, exc: BaseException) -> None:
        reason = java_reason(exc, client_side=False)
        if ipaddress.ip_address(ip).is_loopback:
            return  # the healthcheck's own probe (no client certificate)
        name = peer_name(ip)
        log.warning("Refused TLS connection from %s (%s): %s", name, ip, reason)
        # Only our own verdict on the endpoint's certificate is a "not-trusted" decision;
        # an alert from the peer is its complaint about us, and garbage is not an endpoint.
        ours = isinstance(exc, ssl.SSLCertVerificationError) or getattr(exc, "reason", None) == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        if not ours:
            return
        self.registry.record(None, ip, name=name, role="unknown", subject=None, issuer=None, chain=[],
                             decision="not-trusted", reason=reason, state="disconnected")

    # --- application protocol ------------------------------------------------------------------
    def session(self, tls: ssl.SSLSocket, ip: str, stop: threading.Event, policy: str) -> None:
        reader = proto.Reader(tls)
        tls.settimeout(SESSION_TIMEOUT)
        msg = reader.read()
        if msg is None:
            return
        chain = peer_chain(tls)
        if msg["type"] == "register":
            return self.register(tls, ip, msg, policy)
        role, name = msg.get("role"), msg.get("name")
        if msg["type"] != "hello" or role not in ("gateway", "client") or not isinstance(name, str):
            proto.send(tls, {"type": "refused", "reason": "first message must be a hello with role gateway|client and a name"})
            return
        if not chain:
            reason = "Empty client certificate chain"
            log.warning("Refused %s %s from %s: %s", role, name, ip, reason)
            proto.send(tls, {"type": "refused", "reason": reason})
            return
        leaf = chain[0]
        info = describe(leaf)
        # What the endpoint sent plus what verification added: enough to re-judge it live.
        sent = [x509.load_der_x509_certificate(bytes(d)) for d in (getattr(tls, "get_unverified_chain", lambda: [])() or [])]
        verified = {fingerprint(c) for c in chain}
        full_chain = chain + [c for c in sent if fingerprint(c) not in verified]
        base = dict(name=name, role=role, sni=getattr(tls, "sni_name", None), subject=info["subject"], issuer=info["issuer"],
                    chain=[describe(c)["subject"] for c in chain], tls=tls.version(), policy=policy,
                    kind="built-in" if policy == "built-in" else "corporate")
        if name not in cert_names(leaf):
            reason = f"announced name {name} does not match the certificate ({info['subject']})"
            self.registry.record(info["sha256"], ip, decision="refused", reason=reason, state="disconnected", **base)
            log.warning("Refused %s %s: %s", role, name, reason)
            proto.send(tls, {"type": "refused", "reason": reason})
            return
        if policy == "built-in":
            known = self.registry.by_fingerprint(info["sha256"])
            if not known or not known.get("trusted"):
                ident = known["id"] if known else "?"
                reason = f"endpoint not trusted: an administrator must trust endpoint {ident} in the endpoints list"
                self.registry.record(info["sha256"], ip, decision="not-trusted", reason=reason, state="disconnected", **base)
                log.warning("Refused %s %s (%s): %s", role, name, info["sha256"], reason)
                proto.send(tls, {"type": "refused", "reason": reason, "endpoint_id": ident})
                return
            reason = "built-in policy: endpoint trusted by an administrator" + (" (auto-trust)" if known.get("auto_trusted") else "")
        else:
            reason = f"trusted-ca policy: chain verified to trusted CA {chain[-1].subject.rfc4514_string()}"
            revocation = self.revocation.check(full_chain)
            if revocation is not None and not revocation.ok:
                reason = f"OCSP: {revocation.reason}"
                self.registry.record(info["sha256"], ip, decision="refused", reason=reason, state="disconnected", **base)
                log.warning("Refused %s %s (serial %s): %s", role, name, info["serial"], reason)
                proto.send(tls, {"type": "refused", "reason": reason})
                return
            if revocation is not None and revocation.status == "unavailable":  # fail-open
                reason += f"; OCSP warning (fail-open): {revocation.reason}"
                log.warning("Accepting %s %s without a revocation answer (fail-open): %s", role, name, revocation.reason)
        ep = self.registry.record(info["sha256"], ip, decision="accepted", reason=reason, **base)
        self.registry.connected(ep["id"])
        sess = Session(tls, ep["id"], policy, full_chain)
        with self.sessions_lock:
            self.sessions.add(sess)
        # A change made while this session was being judged did not see it: look again.
        if account.settings()["certificate_policy"] != policy or (
                policy == "built-in" and not (self.registry.get(ep["id"]) or {}).get("trusted")):
            sess.close("the account settings changed while it connected: judged again on reconnect")
        log.info("Accepted %s %s (%s, issuer %s, %s)", role, name, info["subject"], info["issuer"], base["tls"])
        proto.send(tls, {"type": "welcome", "decision": "accepted", "endpoint_id": ep["id"]})
        try:
            while not stop.is_set():
                msg = reader.read()
                if msg is None:
                    break
                if msg["type"] == "heartbeat":
                    proto.send(tls, {"type": "ack"})
                    self.registry.record(info["sha256"], ip, force=False)
        except (OSError, proto.ProtocolError):
            if not sess.closed_reason:
                raise
        finally:
            with self.sessions_lock:
                self.sessions.discard(sess)
            self.registry.disconnected(ep["id"])
            if sess.closed_reason:
                self.registry.update(ep["id"], decision=sess.decision, reason=sess.closed_reason)
                log.warning("Disconnected %s %s: %s", role, name, sess.closed_reason)
            else:
                log.info("%s %s disconnected", role, name)

    def register(self, tls: ssl.SSLSocket, ip: str, msg: dict, policy: str) -> None:
        """A built-in endpoint introduces its self-generated certificate."""
        if policy != "built-in":
            proto.send(tls, {"type": "refused", "reason": "registration is only used with the built-in certificate policy"})
            return
        try:
            cert = x509.load_pem_x509_certificate(str(msg.get("certificate", "")).encode())
        except ValueError:
            proto.send(tls, {"type": "refused", "reason": "registration without a PEM certificate"})
            return
        role, name = msg.get("role"), msg.get("name")
        if role not in ("gateway", "client") or not isinstance(name, str) or name not in cert_names(cert):
            proto.send(tls, {"type": "refused", "reason": "registration needs role gateway|client and the certificate's name"})
            return
        info = describe(cert)
        settings = account.settings()
        existing = self.registry.by_fingerprint(info["sha256"])
        auto = settings["auto_trust"] and not (existing and existing.get("trusted"))
        fields = dict(name=name, role=role, subject=info["subject"], issuer=info["issuer"], chain=[info["subject"]],
                      kind="built-in", certificate=pem([cert]), policy=policy, state="disconnected")
        if auto:
            fields.update(trusted=True, auto_trusted=True, decision="accepted", reason="built-in policy: auto-trust")
        elif not (existing and existing.get("trusted")):
            fields.update(decision="not-trusted", reason="new endpoint: not trusted until an administrator trusts it")
        ep = self.registry.record(info["sha256"], ip, **fields)
        log.info("Registered %s %s as endpoint %s (%s)%s", role, name, ep["id"], info["sha256"],
                 ", trusted automatically" if auto else ("" if ep.get("trusted") else ", not trusted"))
        proto.send(tls, {"type": "registered", "endpoint_id": ep["id"], "trusted": bool(ep.get("trusted"))})

    # --- live changes --------------------------------------------------------------------------
    def revocation_watch(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Connected endpoints are checked again as their cached answers expire."""
        while not stop.wait(interval):
            try:
                if self.revocation.checker() is not None:
                    self.reevaluate(recheck_revocation=True)
            except Exception:  # noqa: BLE001 - the watch must outlive one bad answer
                log.exception("Revocation re-check failed; trying again in %.0f s", interval)

    def reevaluate(self, *, removed_ca: str | None = None, untrusted_id: str | None = None,
                   recheck_revocation: bool = False) -> int:
        """Disconnect sessions that no longer pass the policy; they reconnect and are judged anew."""
        policy = account.settings()["certificate_policy"]
        anchors = account.trusted_cas() + account.system_cas() if removed_ca else None
        closed = 0
        with self.sessions_lock:
            sessions = list(self.sessions)
        for sess in sessions:
            reason = None
            if sess.policy != policy:
                reason = f"certificate policy changed to {policy}"
            elif untrusted_id and sess.endpoint_id == untrusted_id:
                reason = "endpoint no longer trusted by an administrator"
            elif recheck_revocation and sess.policy == "trusted-ca":
                result = self.revocation.check(sess.chain)
                # Only a definite answer ends a live session; an unreachable responder does not.
                if result is not None and result.status in ("revoked", "unknown"):
                    log.warning("Disconnecting endpoint %s: OCSP: %s", sess.endpoint_id, result.reason)
                    sess.close(f"OCSP: {result.reason}", decision="refused")
                    closed += 1
                    continue
            elif anchors is not None and sess.policy == "trusted-ca":
                anchor = trust_anchor(sess.chain, anchors)
                if anchor is None:
                    reason = (f"{PKIX_SHORT}: its chain no longer leads to a trusted CA "
                              f"({removed_ca} was removed from the Trusted CA certificates list)")
                else:
                    self.registry.update(sess.endpoint_id, reason=f"trusted-ca policy: chain verified to trusted CA {anchor.subject.rfc4514_string()}")
            if reason:
                sess.close(reason)
                closed += 1
        return closed

def main() -> int:
    util.setup_logging("safeq-cloud-server", str(paths.LOG))
    stop = util.stop_event_on_signals()
    paths.RUN.mkdir(parents=True, exist_ok=True)
    server = Server(identity.load_keystore(), identity.builtin_identity(), Registry())
    server.context()  # writes the status file before the listener opens
    ready = threading.Event()
    threading.Thread(target=server.serve, args=(stop, ready), daemon=True).start()
    from .api import start_api
    start_api(server, stop)
    threading.Thread(target=server.revocation_watch, args=(stop,), daemon=True).start()
    ready.wait(5)
    server.run_self_check()
    stop.wait()
    log.info("Stopping")
    return 0
