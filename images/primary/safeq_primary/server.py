"""safeq-cloud-server: mutual TLS on 2560, decided by the account's certificate policy.

trusted-ca: inside the TLS handshake the JRE judges the endpoint's chain against the
  Trusted CA certificates plus the public CA bundle (handshake.py); endpoint authorization
  is not used.
built-in:   endpoints present their own self-generated certificates. A new one registers
  (its certificate, over TLS without a client certificate) and is "not trusted" until an
  admin trusts it (or at once with auto-trust); then its certificate is accepted in the
  handshake and the endpoint is served.

This module carries bytes: the decision itself is policy.judge().
"""
from __future__ import annotations

import faulthandler
import ipaddress
import logging
import signal
import socket
import ssl
import sys
import threading
import time

from cryptography import x509

from certkit.certs import cert_names, describe, pem
from certkit.fsio import StateError
from certkit.jre import Validator, ValidatorError
from certkit.jsse import java_reason
from safeqlab import proto, util

from . import account, identity, paths, state
from .contexts import Contexts
from .handshake import HandshakeRefused
from .limits import ConnectionGate, Deadlines
from .live import LiveSessions, Session
from .policy import Peer, judge
from .registry import RefusedLog, Registry
from .revocation import Revocation
from .workers import Workers

log = logging.getLogger("safeq-cloud-server")
HANDSHAKE_DEADLINE = 5.0
FIRST_MESSAGE_DEADLINE = 10.0  # from the end of the handshake, for the whole first message
SESSION_TIMEOUT = 3 * proto.HEARTBEAT_SECONDS + 1
EX_CONFIG = 78  # the supervisor does not restart a unit that exits with this until told to


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


def is_probe(ip: str) -> bool:
    """Loopback: the healthcheck's and the self-check's own connections."""
    return ipaddress.ip_address(ip).is_loopback


class Server:
    def __init__(self, keystore: tuple, builtin: tuple, registry: Registry, stop: threading.Event,
                 validator: Validator | None = None):
        self.registry = registry
        self.stop = stop
        self.validator = validator or Validator()
        self.contexts = Contexts(keystore, builtin, registry, self.validator)
        self.revocation = Revocation()
        self.live = LiveSessions(registry, self.revocation,
                                 lambda chain, anchors: self.validator.judge(chain, anchors, "client"))
        self.refused = RefusedLog()
        self.gate = ConnectionGate()
        self.workers = Workers()
        self.deadlines = Deadlines(stop)
        self.listener_failed = False

    # --- what the admin API calls ---------------------------------------------------------------
    def context(self):
        return self.contexts.current()[0]

    @property
    def java_version(self) -> str | None:
        """The JRE's words differ by release (jsse.handshake_message): asked of the validator (once)."""
        return self.validator.java_version

    def start_jre(self) -> None:
        """Start the JRE validator now, not in the first handshake, and record which JRE it is."""
        try:
            info = self.validator.info()
        except ValidatorError as exc:
            log.error("The JRE that judges certificate chains did not start: %s", exc)
            self.contexts.record_jre({"error": str(exc)})
            return
        log.info("Certificate chains are judged by the JRE %s (%s), java.security %s", info.get("java.version"),
                 info.get("java.vendor"), info.get("java.security"))
        self.contexts.record_jre(info)

    def run_self_check(self) -> None:
        self.contexts.run_self_check()

    def reevaluate(self, *, removed_ca: str | None = None, untrusted_id: str | None = None,
                   recheck_revocation: bool = False) -> int:
        """Judge every live session again (``untrusted_id`` needs nothing extra: its record says so)."""
        return self.live.rejudge(removed_ca=removed_ca, recheck_revocation=recheck_revocation)

    # --- listener ------------------------------------------------------------------------------
    def serve(self, ready: threading.Event) -> None:
        """Accept forever; if the listener itself dies, the process exits so the supervisor restarts it."""
        try:
            lsock = socket.create_server(("0.0.0.0", paths.PORT), backlog=128)
            lsock.settimeout(0.2)
            ready.set()
            log.info("Listening on port %d (mutual TLS)", paths.PORT)
            with lsock:
                while not self.stop.is_set():
                    self._accept_one(lsock)
        except BaseException:
            log.exception("The listener on port %d failed; exiting so the service is restarted", paths.PORT)
            self.listener_failed = True
            self.stop.set()
            raise

    def _accept_one(self, lsock: socket.socket) -> None:
        try:
            conn, addr = lsock.accept()
        except TimeoutError:
            return
        except OSError as exc:  # e.g. out of file descriptors: keep listening
            log.warning("accept failed: %s", exc)
            time.sleep(0.1)
            return
        ip = addr[0]
        if not self.gate.admit(ip):  # unauthenticated connections are capped; the gate logs why
            conn.close()
            return
        try:
            self.workers.run(self.handle, conn, ip)
        except RuntimeError as exc:  # can't start new thread: refuse this one, keep accepting
            log.warning("Refused connection from %s: no thread available (%s)", ip, exc)
            self.gate.release(ip)
            conn.close()

    def handle(self, conn: socket.socket, ip: str) -> None:
        admitted = [True]  # released once, when the session is accepted or when it ends

        def release() -> None:
            if admitted[0]:
                admitted[0] = False
                self.gate.release(ip)
        try:
            self._handle(conn, ip, release)
        finally:
            release()

    def _handle(self, conn: socket.socket, ip: str, release) -> None:
        conn.settimeout(HANDSHAKE_DEADLINE)
        tls, token = None, None
        try:
            server_tls, policy = self.contexts.current()
            token = self.deadlines.add(conn, HANDSHAKE_DEADLINE)  # the whole handshake, not each read
            tls = server_tls.accept(conn, HANDSHAKE_DEADLINE)
        except HandshakeRefused as exc:
            self._refused_chain(ip, exc)
            quiet_close(conn)
            return
        except ValidatorError as exc:  # no verdict, no session
            log.error("Refused TLS connection from %s: the JRE could not judge its certificate chain: %s", ip, exc)
            quiet_close(conn)
            return
        except (ssl.SSLError, OSError) as exc:
            if not is_probe(ip):
                log.warning("Refused TLS connection from %s: %s", ip, java_reason(exc, self.java_version))
            quiet_close(conn)
            return
        except StateError as exc:  # account state damaged while running: refuse, say why
            log.error("Refused connection from %s: %s", ip, exc)
            conn.close()
            return
        finally:
            if token is not None:
                self.deadlines.cancel(token)
        try:
            self.session(tls, ip, policy, release)
        except (OSError, proto.ProtocolError) as exc:
            if not is_probe(ip):
                log.info("Session from %s ended: %s", ip, java_reason(exc, self.java_version))
        except StateError as exc:
            log.error("Session from %s ended: %s", ip, exc)
        finally:
            tls.close()

    def _refused_chain(self, ip: str, exc: HandshakeRefused) -> None:
        """The JRE refused the chain (or there was none): logged as a Java server logs it, and
        listed among the refused connections (no identity was established)."""
        if is_probe(ip):
            return
        reason = exc.logged(self.java_version)
        log.warning("Refused TLS connection from %s: %s", ip, reason)
        self.refused.add(ip, reason)

    # --- application protocol ------------------------------------------------------------------
    def session(self, tls, ip: str, policy: str, release) -> None:
        reader = proto.Reader(tls)
        token = self.deadlines.add(tls, FIRST_MESSAGE_DEADLINE)
        try:
            msg = reader.read(deadline=time.monotonic() + FIRST_MESSAGE_DEADLINE)
        finally:
            self.deadlines.cancel(token)
        if msg is None:
            return
        if msg["type"] == "register":
            return self.register(tls, ip, msg, policy)
        role, name = msg.get("role"), msg.get("name")
        if msg["type"] != "hello" or role not in ("gateway", "client") or not isinstance(name, str):
            proto.send(tls, {"type": "refused", "reason": "first message must be a hello with role gateway|client and a name"})
            return
        verdict = tls.judged
        chain = (verdict.path or tuple(tls.judged_chain)) if verdict is not None else ()
        peer = Peer(chain=tuple(chain), role=role, name=name, policy=policy, sent=tuple(tls.judged_chain))
        decision = self._judge(peer, verdict)
        if not peer.chain:
            log.warning("Refused %s %s from %s: %s", role, name, ip, decision.reason)
            self.refused.add(ip, decision.reason)
            proto.send(tls, {"type": "refused", "reason": decision.reason})
            return
        info = describe(peer.chain[0])
        base = dict(name=name, role=role, sni=tls.server_name(), subject=info["subject"],
                    issuer=info["issuer"], chain=[describe(c)["subject"] for c in peer.chain], tls=tls.version(),
                    policy=policy, kind="built-in" if policy == "built-in" else "corporate")
        if not decision.accepted:
            record = self.registry.by_fingerprint(info["sha256"])
            self.registry.record(info["sha256"], ip, decision=decision.decision, reason=decision.reason,
                                 state="disconnected", **base)
            log.warning("Refused %s %s (serial %s): %s", role, name, info["serial"], decision.reason)
            answer = {"type": "refused", "reason": decision.reason}
            if policy == "built-in" and record:
                answer["endpoint_id"] = record["id"]
            proto.send(tls, answer)
            return
        if decision.warning:
            log.warning("Accepting %s %s without a revocation answer (fail-open): %s", role, name, decision.warning)
        ep = self.registry.record(info["sha256"], ip, decision="accepted", reason=decision.reason, **base)
        self.serve_session(tls, ip, Session(tls, ep["id"], peer), release)

    def _judge(self, peer: Peer, verdict):
        """The inputs judge() needs, gathered for this peer; the chain verdict is the handshake's."""
        if not peer.chain:
            return judge(peer, policy=peer.policy, chain_verdict=None, record=None, revocation=None)
        record = self.registry.by_fingerprint(describe(peer.chain[0])["sha256"]) if peer.policy == "built-in" else None
        trusted_ca = peer.policy == "trusted-ca"
        revocation = self.revocation.check(list(peer.chain)) if trusted_ca else None
        return judge(peer, policy=peer.policy, chain_verdict=verdict if trusted_ca else None, record=record,
                     revocation=revocation)

    def serve_session(self, tls, ip: str, sess: Session, release) -> None:
        """An accepted endpoint: heartbeats until it leaves or is disconnected."""
        peer = sess.peer
        self.registry.connected(sess.endpoint_id)
        self.live.add(sess)
        release()  # authenticated: no longer counted against the unauthenticated caps
        # A change made while this session was being judged did not see it: judge it again.
        if account.settings()["certificate_policy"] != peer.policy:
            self.live.rejudge()
        log.info("Accepted %s %s (%s, issuer %s, %s)", peer.role, peer.name, peer.chain[0].subject.rfc4514_string(),
                 peer.chain[0].issuer.rfc4514_string(), tls.version())
        tls.settimeout(SESSION_TIMEOUT)
        reader = proto.Reader(tls)
        try:
            proto.send(tls, {"type": "welcome", "decision": "accepted", "endpoint_id": sess.endpoint_id})
            while not self.stop.is_set():
                msg = reader.read()
                if msg is None:
                    break
                if msg["type"] == "heartbeat":
                    proto.send(tls, {"type": "ack"})
                    self.registry.record(sess.sha256, ip, force=False)  # last seen; written at most once a second
        except (OSError, proto.ProtocolError):
            if not sess.closed:
                raise
        finally:
            self.live.discard(sess)
            self.registry.disconnected(sess.endpoint_id)
            if sess.closed:
                self.registry.update(sess.endpoint_id, decision=sess.closed.decision, reason=sess.closed.reason)
                log.warning("Disconnected %s %s: %s", peer.role, peer.name, sess.closed.reason)
            else:
                log.info("%s %s disconnected", peer.role, peer.name)

    def register(self, tls, ip: str, msg: dict, policy: str) -> None:
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
        existing = self.registry.by_fingerprint(info["sha256"])
        already = bool(existing and existing.get("trusted"))
        auto = account.settings()["auto_trust"] and not already
        fields = dict(name=name, role=role, subject=info["subject"], issuer=info["issuer"], chain=[info["subject"]],
                      kind="built-in", certificate=pem([cert]), policy=policy, state="disconnected")
        if auto:
            fields.update(trusted=True, auto_trusted=True, decision="accepted",
                          reason="built-in policy: endpoint trusted by an administrator (auto-trust)")
        elif not already:
            fields.update(decision="not-trusted", reason="new endpoint: not trusted until an administrator trusts it")
        ep = self.registry.record(info["sha256"], ip, **fields)
        log.info("Registered %s %s as endpoint %s (%s)%s", role, name, ep["id"], info["sha256"],
                 ", trusted automatically" if auto else ("" if ep.get("trusted") else ", not trusted"))
        proto.send(tls, {"type": "registered", "endpoint_id": ep["id"], "trusted": bool(ep.get("trusted"))})


def main() -> int:
    util.setup_logging("safeq-cloud-server", str(paths.LOG))
    # `kill -USR1 <pid>` writes every thread's stack to stderr (the container log): a hung server explains itself.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop = util.stop_event_on_signals()
    paths.RUN.mkdir(parents=True, exist_ok=True)
    try:
        state.preflight()
    except StateError as exc:
        log.error("Not starting: %s", exc)
        print(f"safeq-cloud-server: not starting: {exc}", file=sys.stderr)
        return EX_CONFIG
    jre = Validator()  # loads the keystore (as the product's JRE does) and judges every chain after
    server = Server(identity.load_keystore(jre), identity.builtin_identity(), Registry(), stop, jre)
    # The JVM starts beside the listener and the admin API, which need none (a handshake waits for it).
    threading.Thread(target=server.start_jre, daemon=True).start()
    server.context()  # writes the status file before the listener opens
    ready = threading.Event()
    threading.Thread(target=server.serve, args=(ready,), daemon=True).start()
    from .api import start_api
    start_api(server, stop, socket_path=str(paths.ADMIN_SOCKET) if paths.ADMIN_SOCKET_DIR.is_dir() else None)
    threading.Thread(target=server.live.watch, args=(stop,), daemon=True).start()
    ready.wait(5)
    server.run_self_check()
    stop.wait()
    if server.listener_failed:
        return 1
    log.info("Stopping")
    return 0
