"""safeq-cloud-server: mutual TLS on 2560, decided by the account's certificate policy."""
from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading

from safeqlab import javastore, proto, util
from safeqlab.tlsinfo import (common_name, describe, java_reason, load_identity, pem, peer_chain,
                              self_signed_localhost)

from . import account, hocon, paths
from .registry import Registry

log = logging.getLogger("safeq-cloud-server")
HANDSHAKE_TIMEOUT = 5.0
SESSION_TIMEOUT = 3 * proto.HEARTBEAT_SECONDS + 1


def load_keystore_from_conf():
    """(key, chain, keystore status). Any failure gives the built-in localhost identity,
    the symptom the doc tells admins to look for."""
    ks = {"file": None, "loaded": False, "reason": None}
    try:
        conf = hocon.parse(paths.CONF.read_text())
        ks["file"] = hocon.setting(conf, "default-keystore-file")
        password = hocon.setting(conf, "default-keystore-password") or ""
        if not ks["file"]:
            raise javastore.StoreError(f"default-keystore-file is not set in {paths.CONF}")
        store = javastore.load_keystore(ks["file"], password, keytool=paths.KEYTOOL)
        ks.update(loaded=True, alias=store.alias)
        log.info("Loaded keystore %s (alias %s): %s", ks["file"], store.alias, describe(store.chain[0])["subject"])
        return store.key, store.chain, ks
    except (OSError, hocon.HoconError, javastore.StoreError) as exc:
        ks["reason"] = str(exc)
        log.warning("Could not load keystore %s: %s. Falling back to the built-in self-signed certificate (CN=localhost).",
                    ks["file"], exc)
        key, chain = self_signed_localhost()
        return key, chain, ks


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


class Server:
    def __init__(self, key, chain, registry: Registry):
        self.key, self.chain, self.registry = key, chain, registry
        self._ctx, self._ctx_stamp = None, None

    def _trust_stamp(self):
        files = sorted(paths.TRUSTED_CA_DIR.glob("*.pem")) if paths.TRUSTED_CA_DIR.is_dir() else []
        return tuple((f.name, f.stat().st_mtime_ns) for f in files)

    def context(self) -> ssl.SSLContext:
        """Rebuilt when the Trusted CA list changes, so imports apply without a restart."""
        stamp = self._trust_stamp()
        if self._ctx is None or stamp != self._ctx_stamp:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.verify_mode = ssl.CERT_REQUIRED
            # Java treats any trusted CA (an intermediate too) as a trust anchor.
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            trusted = account.trusted_cas()
            if trusted:
                ctx.load_verify_locations(cadata=pem(trusted))
            if paths.SYSTEM_BUNDLE.exists():
                ctx.load_verify_locations(cafile=str(paths.SYSTEM_BUNDLE))
            load_identity(ctx, self.key, self.chain, str(paths.RUN))
            ctx.sni_callback = self._remember_sni
            self._ctx, self._ctx_stamp = ctx, stamp
            log.info("Certificate policy %s: %d trusted CA certificate(s) + system bundle",
                     account.settings()["certificate_policy"], len(trusted))
        return self._ctx

    @staticmethod
    def _remember_sni(sslsock, name, ctx):
        sslsock.sni_name = name

    def serve(self, stop: threading.Event, ready: threading.Event) -> None:
        lsock = socket.create_server(("0.0.0.0", paths.PORT), reuse_port=False, backlog=64)
        lsock.settimeout(0.2)
        ready.set()
        log.info("Listening on port %d (mutual TLS)", paths.PORT)
        while not stop.is_set():
            try:
                conn, addr = lsock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self.handle, args=(conn, addr, stop), daemon=True).start()
        lsock.close()

    def handle(self, conn: socket.socket, addr, stop: threading.Event) -> None:
        ip = addr[0]
        conn.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.context().wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self._refused_handshake(ip, exc)
            conn.close()
            return
        try:
            self.session(tls, ip, stop)
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
        # Only our own verdict on the endpoint's certificate makes a "not-trusted" record;
        # an alert from the peer is its complaint about us, and garbage is not an endpoint.
        ours = isinstance(exc, ssl.SSLCertVerificationError) or getattr(exc, "reason", None) == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        if ours:
            self.registry.update(f"address:{ip}", name=name, role="unknown", address=ip, subject=None, issuer=None,
                                 chain=[], decision="not-trusted", reason=reason, state="disconnected")

    def session(self, tls: ssl.SSLSocket, ip: str, stop: threading.Event) -> None:
        chain = peer_chain(tls)
        leaf = chain[0]
        reader = proto.Reader(tls)
        tls.settimeout(SESSION_TIMEOUT)
        hello = reader.read()
        if hello is None:
            return
        role, name = hello.get("role"), hello.get("name")
        base = dict(address=ip, sni=getattr(tls, "sni_name", None), subject=describe(leaf)["subject"],
                    issuer=describe(leaf)["issuer"], sha256=describe(leaf)["sha256"],
                    chain=[describe(c)["subject"] for c in chain], tls=tls.version())
        key = f"{role}:{name}"
        if hello.get("type") != "hello" or role not in ("gateway", "client") or not isinstance(name, str):
            reason = "first message must be a hello with role gateway|client and a name"
            log.warning("Refused %s: %s", ip, reason)
            proto.send(tls, {"type": "refused", "reason": reason})
            return
        if name not in cert_names(leaf):
            reason = f"announced name {name} does not match the certificate ({base['subject']})"
            self.registry.update(key, name=name, role=role, decision="refused", reason=reason, state="disconnected", **base)
            log.warning("Refused %s %s: %s", role, name, reason)
            proto.send(tls, {"type": "refused", "reason": reason})
            return
        policy = account.settings()["certificate_policy"]
        reason = f"{policy} policy: chain verified to trusted CA {chain[-1].subject.rfc4514_string()}"
        self.registry.connected(key, name=name, role=role, decision="accepted", reason=reason, **base)
        log.info("Accepted %s %s (%s, issuer %s, %s)", role, name, base["subject"], base["issuer"], base["tls"])
        proto.send(tls, {"type": "welcome", "decision": "accepted", "endpoint": key})
        try:
            while not stop.is_set():
                msg = reader.read()
                if msg is None:
                    break
                if msg["type"] == "heartbeat":
                    proto.send(tls, {"type": "ack"})
                    self.registry.update(key, force=False, state="connected")
        finally:
            self.registry.disconnected(key)
            log.info("%s %s disconnected", role, name)


def cert_names(cert) -> set[str]:
    from cryptography import x509
    names = {common_name(cert)}
    try:
        names.update(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return names


def peer_name(ip: str) -> str:
    try:
        return socket.gethostbyaddr(ip)[0].split(".")[0]
    except OSError:
        return "unknown"


def main() -> int:
    util.setup_logging("safeq-cloud-server", str(paths.LOG))
    stop = util.stop_event_on_signals()
    paths.RUN.mkdir(parents=True, exist_ok=True)
    key, chain, keystore = load_keystore_from_conf()
    serving = describe(chain[0])
    status = {"keystore": keystore, "serving": serving, "self_check": None,
              "state": "serving" if keystore["loaded"] else "fallback",
              "policy": account.settings()["certificate_policy"]}
    util.write_json(paths.STATUS, status)
    server = Server(key, chain, Registry())
    ready = threading.Event()
    threading.Thread(target=server.serve, args=(stop, ready), daemon=True).start()
    ready.wait(5)
    if keystore["loaded"]:
        check = self_check(key, chain, common_name(chain[0]))
        status["self_check"] = check
        if not check["ok"]:
            status["state"] = "degraded"
            log.warning("Self-check of the listener against the JRE cacerts failed: %s", check["reason"])
        util.write_json(paths.STATUS, status)
    stop.wait()
    log.info("Stopping")
    return 0
