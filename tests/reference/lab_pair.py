"""The lab's primary and gateway against each other on loopback, for the reference's cases: one JSON line each.

The same files as the reference pair (reference.py): the primary serves its PFX, read by the JRE's
keytool as the primary reads it, and trusts the CA files as its Trusted CA certificates (the
public CA bundle left out, so the CA names compare with the reference's); inside the handshake
the JRE judges the gateway's chain (safeq_primary.handshake.ServerTLS) and a refusal is worded
with the primary's own calls (``HandshakeRefused.logged``, ``java_reason``). The gateway reads an
unattended installation file naming the client's PFX and a truststore, as the gateway service
does (safeqlab.gateway), and runs its connection test (``Session.probe``). A truststore is made
from the client's CA files with keytool -importcert, or given as it is (--client-truststore).

    python3 lab_pair.py pair --server-keystore F --server-password P [--server-trust F]...
        [--client-keystore F --client-password P] [--client-trust F]...
        [--client-truststore F --client-truststore-password P] --host NAME [--protocols L] [--timeout-ms N]
    python3 lab_pair.py batch < requests   # one {"id": ..., "args": [pair's arguments]} per line

Runs where certkit, safeqlab, safeq_primary and pyOpenSSL import (the primary image, or this
repository's virtualenv); the JRE validator is certkit.jre's default unless --java and
--validator-classes say otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from certkit import javastore, keychoice
from certkit.jre import Validator, ValidatorError
from certkit.jsse import java_reason
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from safeq_primary.account import load_certs
from safeq_primary.handshake import HandshakeRefused, ServerTLS
from safeq_primary.server import FIRST_MESSAGE_DEADLINE, HANDSHAKE_DEADLINE, quiet_close
from safeqlab import proto
from safeqlab.endpoint import Session, SetupError
from safeqlab.gateway import Gateway

# As the reference's JVMs: dates in messages (NotAfter: ...) in UTC whatever this machine's zone.
JVM_OPTIONS = ("-Duser.timezone=UTC",)
KEYTOOL_TIMEOUT = 60
AFTER_WELCOME = 5.0  # the connection test closes once welcomed; a primary waiting longer learns nothing
VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
WELCOME = {"type": "welcome", "decision": "accepted", "endpoint_id": "lab-pair"}
TRUSTSTORE_PASSWORD = "changeit"  # of the truststores made here from CA files
GATEWAY_LOG = logging.getLogger("lab-pair-gateway")
GATEWAY_LOG.propagate = False  # its lines are kept with each result, not printed


class PairFailed(RuntimeError):
    """No verdict: the pair could not be set up or did not finish in time."""


def subjects(certs) -> list[str]:
    return [c.subject.rfc4514_string() for c in certs]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab_pair.py pair", exit_on_error=False)
    for side in ("server", "client"):
        p.add_argument(f"--{side}-keystore")
        p.add_argument(f"--{side}-password", default="")
        p.add_argument(f"--{side}-trust", action="append", default=[])
    p.add_argument("--client-truststore")
    p.add_argument("--client-truststore-password", default="")
    p.add_argument("--host", required=True)
    p.add_argument("--protocols")
    p.add_argument("--timeout-ms", type=int, default=10_000)
    return p


# --- the primary ------------------------------------------------------------------------------------

class Primary:
    """The primary's listener for one connection, each outcome worded as server.py words it."""

    def __init__(self, tls: ServerTLS, served, java_version: str | None, wait: float):
        self.tls, self.java_version = tls, java_version
        self.result: dict = {"connected": False, "ok": False, "refused": False, "stage": None, "message": None,
                             "served": subjects(served)}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(wait,), daemon=True, name="lab-primary")
        self.thread.start()

    def finish(self, timeout: float) -> dict:
        """Once the gateway is done: stop waiting for a connection that will not come, collect the result."""
        self.stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise PairFailed(f"the primary did not finish within {timeout:g} s")
        return self.result

    def _serve(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        with self.listener:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                self.result["connected"] = True
                self._handle(conn)
                return

    def _handle(self, conn: socket.socket) -> None:
        """server.py's _handle: the handshake (the JRE judging inside it), then the session."""
        conn.settimeout(HANDSHAKE_DEADLINE)
        try:
            tls = self.tls.accept(conn, HANDSHAKE_DEADLINE)
        except HandshakeRefused as exc:
            self._failed(conn, exc.logged(self.java_version), refused=True)
            return
        except ValidatorError as exc:
            self._failed(conn, f"the JRE could not judge its certificate chain: {exc}", refused=True)
            return
        except (ssl.SSLError, OSError) as exc:
            self._failed(conn, java_reason(exc, self.java_version), refused=False)
            return
        self.result.update(protocol=tls.version(), peer_chain=subjects(tls.peer_chain()))
        try:
            self._session(tls)
        except (OSError, proto.ProtocolError) as exc:
            self.result.update(stage="session", message=java_reason(exc, self.java_version))
        finally:
            tls.close()

    def _failed(self, conn: socket.socket, message: str, refused: bool) -> None:
        self.result.update(stage="handshake", message=message, refused=refused)
        quiet_close(conn)

    def _session(self, tls) -> None:
        """server.py's session for an accepted chain: a hello is welcomed; nothing logged when none comes."""
        reader = proto.Reader(tls)
        msg = reader.read(deadline=time.monotonic() + FIRST_MESSAGE_DEADLINE)
        if msg is None:
            self.result["stage"] = "session"  # the gateway left without a word: the primary logs nothing
            return
        if msg.get("type") != "hello":
            raise proto.ProtocolError(f"first message {msg.get('type')!r}, not hello")
        proto.send(tls, WELCOME)
        self.result["ok"] = True
        reader.read(deadline=time.monotonic() + AFTER_WELCOME)


def primary_tls(store, anchors: list, validator: Validator, protocols: str | None) -> ServerTLS:
    """The trusted-ca context as contexts.py builds it; the anchors are the case's CA files."""
    tls = ServerTLS(store.key, store.chain, anchors, lambda sent: validator.judge(sent, anchors, "client"),
                    require=True)
    if protocols:
        wanted = [VERSIONS[p] for p in protocols.split(",")]
        tls.context.set_min_proto_version(min(wanted))
        tls.context.set_max_proto_version(max(wanted))
    return tls


# --- the gateway ------------------------------------------------------------------------------------

@contextlib.contextmanager
def resolving(name: str):
    """``name`` resolves to loopback while the gateway connects, as the lab's network resolves it to the primary."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real("127.0.0.1" if host == name else host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


@contextlib.contextmanager
def observed_key_choice():
    """What the gateway's key choice was asked (the CertificateRequest's CA names) and chose, as the
    reference's ObservedKeyManager records Java's; None when it was never asked."""
    seen: dict = {"requested_issuers": None, "offered_chain": None}
    real = keychoice.choose

    def choose(chains, ca_names):
        chosen = real(chains, ca_names)
        seen.update(requested_issuers=[n.rfc4514_string() for n in ca_names or ()],
                    offered_chain=subjects(chosen or ()))
        return chosen
    keychoice.choose = choose
    try:
        yield seen
    finally:
        keychoice.choose = real


class Notes(logging.Handler):
    """The gateway's log lines of one attempt."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def unattended(path: Path, opts, truststore: tuple[str, str], host: str, port: int) -> Path:
    """The gateway's unattended installation file; without a client keystore the keystore lines are left out."""
    lines = []
    if opts.client_keystore:
        lines += [f'HCP_DEFAULT_KEYSTORE="{opts.client_keystore}"',
                  f'HCP_DEFAULT_KEYSTORE_PASSWORD="{opts.client_password}"']
    lines += [f'HCP_DEFAULT_TRUSTSTORE="{truststore[0]}"', f'HCP_DEFAULT_TRUSTSTORE_PASSWORD="{truststore[1]}"',
              f'HCP_PRIMARY_SERVER_ADDRESS="{host}:{port}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def probe(conf: Path, validator: Validator) -> dict:
    """``safeq-gateway test-connection --unattended conf`` with this validator (service.session's Session)."""
    spec = Gateway(unattended=str(conf), jre=lambda: validator)
    notes = Notes()
    GATEWAY_LOG.addHandler(notes)
    try:
        return _probe(spec, validator, GATEWAY_LOG, notes)
    finally:
        GATEWAY_LOG.removeHandler(notes)


def _probe(spec: Gateway, validator: Validator, log: logging.Logger, notes: Notes) -> dict:
    loaded = {"setup": False}
    factory = spec.trusted_identity(log)

    def identity():
        try:
            return factory()
        except SetupError:
            loaded["setup"] = True  # the keystore or truststore did not load: nothing was sent
            raise
    try:
        host, port = spec.address()
    except SetupError as exc:  # as test-connection: the file itself is not usable
        return {"ok": False, "stage": "setup", "message": str(exc), "requested_issuers": None,
                "offered_chain": None, "log": notes.lines}
    session = Session(host=host, port=port, role=spec.role, state=None, log=log, stop=threading.Event(),
                      trusted=identity, check_peer=spec.check_peer(), validator=lambda: validator)
    with resolving(host), observed_key_choice() as seen:
        ok, why = session.probe()
    return {"ok": ok, "stage": "setup" if loaded["setup"] else "handshake",
            "message": why.replace(f":{port};", ":PORT;"), **seen, "log": notes.lines}


# --- one pair ---------------------------------------------------------------------------------------

class Lab:
    """One validator (one JVM) for every pair; stores read once per file, as each service reads its own once."""

    def __init__(self, validator: Validator, workdir: Path):
        self.validator, self.workdir = validator, Path(workdir)
        self._keystores: dict[tuple[str, str], object] = {}
        self._truststores: dict[tuple[str, ...], tuple[str, str]] = {}

    def pair(self, argv: Sequence[str]) -> dict:
        try:
            opts = parser().parse_args(list(argv))
        except (argparse.ArgumentError, SystemExit) as exc:
            raise PairFailed(f"usage: {exc}") from None
        if not opts.server_keystore:
            raise PairFailed("the primary needs a keystore (--server-keystore)")
        if bool(opts.client_trust) == bool(opts.client_truststore):
            raise PairFailed("the gateway needs either --client-trust files or --client-truststore")
        store = self._primary_keystore(opts.server_keystore, opts.server_password)
        anchors = [c for f in opts.server_trust for c in load_certs(Path(f).read_bytes(), f)]
        tls = primary_tls(store, anchors, self.validator, opts.protocols)
        truststore = ((opts.client_truststore, opts.client_truststore_password) if opts.client_truststore
                      else self._truststore(opts.client_trust))
        primary = Primary(tls, store.chain, self.validator.java_version, opts.timeout_ms / 1000)
        try:
            with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
                conf = unattended(Path(tmp) / "unattended-install.conf", opts, truststore, opts.host, primary.port)
                client = probe(conf, self.validator)
        finally:
            server = primary.finish(opts.timeout_ms / 1000 + HANDSHAKE_DEADLINE + FIRST_MESSAGE_DEADLINE)
        return combine(server, client)

    def _primary_keystore(self, path: str, password: str):
        key = (path, password)
        if key not in self._keystores:
            try:
                self._keystores[key] = javastore.load_keystore(path, password)
            except javastore.StoreError as exc:
                raise PairFailed(f"the primary's keystore does not load: {exc}") from None
        return self._keystores[key]

    def _truststore(self, files: Sequence[str]) -> tuple[str, str]:
        """A PKCS12 truststore holding the CA files' certificates as trusted entries (keytool -importcert)."""
        key = tuple(files)
        if key not in self._truststores:
            out = self.workdir / f"truststore-{len(self._truststores)}.p12"
            certs = [c for f in files for c in load_certs(Path(f).read_bytes(), f)]
            for n, cert in enumerate(certs):
                keytool("-importcert", "-noprompt", "-alias", f"ca-{n}", "-keystore", str(out),
                        "-storetype", "PKCS12", stdin=_pem(cert))
            self._truststores[key] = (str(out), TRUSTSTORE_PASSWORD)
        return self._truststores[key]



def _pem(cert) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def keytool(*args: str, stdin: str) -> None:
    env = dict(os.environ, LAB_PAIR_STOREPASS=TRUSTSTORE_PASSWORD)
    try:
        proc = subprocess.run([javastore.KEYTOOL, *args, "-storepass:env", "LAB_PAIR_STOREPASS"], input=stdin,
                              capture_output=True, text=True, timeout=KEYTOOL_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise PairFailed(f"keytool did not answer within {KEYTOOL_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise PairFailed(f"keytool {args[0]} exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()}")


def combine(server: dict, client: dict) -> dict:
    """Shaped as the reference's line: the refusing end's verdict on top, both ends below. The primary
    refused when it decided (the JRE said no, or could not say); else a gateway that failed refused."""
    result: dict = {"ok": server["ok"] and client["ok"]}
    if result["ok"]:
        result["protocol"] = server.get("protocol")
    else:
        side = "server" if server["refused"] or client["ok"] else "client"
        origin = server if side == "server" else client
        result.update(side=side, stage=origin["stage"], message=origin["message"])
    if server["connected"]:
        result["server"] = server
    result["client"] = client
    return result


# --- command line -----------------------------------------------------------------------------------

def validator_from(args: argparse.Namespace) -> Validator:
    return Validator(java=args.java, classes_dir=args.validator_classes, jvm_options=JVM_OPTIONS)


def batch(lab: Lab, lines, out) -> None:
    """One result line per request line; a request that gives no verdict says why instead."""
    for line in lines:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = {"id": request["id"], "result": lab.pair(request["args"])}
        except (PairFailed, ValidatorError, javastore.StoreError, OSError, ValueError) as exc:
            answer = {"id": request["id"], "error": f"{exc.__class__.__name__}: {exc}"}
        print(json.dumps(answer), file=out, flush=True)


def main(argv: list[str]) -> int:
    top = argparse.ArgumentParser(prog="lab_pair.py")
    top.add_argument("--java", help="the JRE's java (default: certkit.jre's)")
    top.add_argument("--validator-classes", help="the validator's classes (default: certkit.jre's)")
    top.add_argument("mode", choices=("pair", "batch"))
    args, rest = top.parse_known_args(argv)
    with validator_from(args) as validator, tempfile.TemporaryDirectory(prefix="lab-pair-") as workdir:
        lab = Lab(validator, Path(workdir))
        if args.mode == "batch":
            batch(lab, sys.stdin, sys.stdout)
            return 0
        try:
            print(json.dumps(lab.pair(rest)))
        except PairFailed as exc:
            print(f"lab_pair.py: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
