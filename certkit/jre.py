"""Chain verdicts decided by a JRE: its PKIX trust manager, its java.security, its messages.

A small Java program (``pkixjudge.Main``) runs once per ``Validator`` and answers one JSON
line per request, so a verdict costs milliseconds, not a JVM start. The chain is judged by
the JRE's own ``X509TrustManager`` (checkClientTrusted / checkServerTrusted) with the anchors
as trusted entries of an in-memory PKCS12 store; the host name by the JRE's HTTPS endpoint
identification. Handshake-level rules (jdk.tls.disabledAlgorithms, the peer's
signature_algorithms_cert) are not part of a chain verdict: they need a live session.
The same JVM loads key and trust stores (``store``: KeyStore.load, as keytool -list and the
product do), so a service that judges chains starts no keytool JVM for its stores.

Environment:
  SAFEQ_VALIDATOR_CMD      the whole command (shell words) instead of the default
  SAFEQ_VALIDATOR_CLASSES  the compiled classes (default /opt/safeqlab/validator)
  SAFEQ_JAVA_SECURITY      a java.security file passed as -Djava.security.properties=FILE:
                           its entries add to / override the JRE's ("=FILE" replaces it whole)
"""
from __future__ import annotations

import base64
import collections
import functools
import hashlib
import itertools
import json
import os
import queue
import shlex
import shutil
import subprocess
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .jsse import handshake_message, refusal_alert

MAIN_CLASS = "pkixjudge.Main"
CLASSES_DIR = "/opt/safeqlab/validator"
PRODUCT_JAVA = "/opt/safeqcloud/jre/bin/java"
# The validator uses the JRE's own host name checker and validator classes.
EXPORTS = ("--add-exports", "java.base/sun.security.util=ALL-UNNAMED",
           "--add-exports", "java.base/sun.security.validator=ALL-UNNAMED")
# A small helper process: one GC thread, a small heap, the quick compiler (verdicts are
# short; measured ~0.5 ms each against ~1.3 ms with the defaults), no perf file in /tmp.
# Options given by the caller come later and so win.
JVM_OPTIONS = ("-XX:+UseSerialGC", "-Xmx64m", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData")
DEFAULT_TIMEOUT = 10.0
_ANCHOR_SETS_KEPT = 8  # as many as the validator keeps (Main.ANCHOR_SETS_KEPT)
_STDERR_LINES = 20


class ValidatorError(RuntimeError):
    """The validator could not give a verdict (not started, hung, died, refused the request)."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    anchor: str | None = None       # RFC 2253 subject of the trust anchor of the validated path
    path: tuple[x509.Certificate, ...] = ()  # the validated path, leaf first, ending at the anchor
    exception: str | None = None    # fully qualified class the trust manager threw
    message: str | None = None      # its getMessage()
    cause: str | None = None        # its cause, "class: message"
    causes: tuple[str, ...] = ()    # the whole cause chain, outermost first
    certificate_exception: bool = False

    @property
    def reason(self) -> str:
        """The one line a JRE endpoint logs for this failed handshake ('' when ok).

        JSSE turns the trust manager's exception into an SSLException carrying the
        same getMessage(), e.g. "PKIX path building failed: sun.security.provider.
        certpath.SunCertPathBuilderException: unable to find valid certification
        path to requested target" or "No subject alternative DNS name matching x found.".
        """
        if self.ok:
            return ""
        return self.message or self.exception or "unknown failure"

    @property
    def logged(self) -> str:
        """As the JRE prints the handshake exception: class, colon, reason ('' when ok)."""
        if self.ok:
            return ""
        # Certificate problems become handshake alerts; anything else an internal SSLException.
        cls = "javax.net.ssl.SSLHandshakeException" if self.certificate_exception else "javax.net.ssl.SSLException"
        return f"{cls}: {self.reason}"

    @classmethod
    def from_reply(cls, reply: dict) -> Verdict:
        if reply.get("ok") is True:
            path = tuple(x509.load_der_x509_certificate(base64.b64decode(c)) for c in reply.get("path") or ())
            return cls(ok=True, anchor=reply.get("anchor"), path=path)
        return cls(ok=False, exception=reply.get("exception"), message=reply.get("message"),
                   cause=reply.get("cause"), causes=tuple(reply.get("causes") or ()),
                   certificate_exception=bool(reply.get("certificate_exception")))


def default_java() -> str:
    """The product's JRE when this is a product host, else the java on PATH."""
    if os.access(PRODUCT_JAVA, os.X_OK):
        return PRODUCT_JAVA
    found = shutil.which("java")
    if found is None:
        raise ValidatorError(f"no Java runtime: neither {PRODUCT_JAVA} nor java on PATH")
    return found


def default_command(java: str | None = None, classes_dir: str | os.PathLike | None = None,
                    java_security: str | None = None, jvm_options: Sequence[str] = ()) -> list[str]:
    classes = Path(classes_dir or os.environ.get("SAFEQ_VALIDATOR_CLASSES") or CLASSES_DIR)
    main_file = classes / (MAIN_CLASS.replace(".", "/") + ".class")
    if not main_file.is_file():
        raise ValidatorError(f"validator classes not found: {main_file} is missing (set SAFEQ_VALIDATOR_CLASSES)")
    options = [*JVM_OPTIONS, *jvm_options]
    if java_security:
        # Java silently ignores a java.security.properties file it cannot read: refuse here instead.
        path = java_security[1:] if java_security.startswith("=") else java_security
        if not os.access(path, os.R_OK):
            raise ValidatorError(f"java.security override {path} is missing or unreadable")
        options.append(f"-Djava.security.properties={java_security}")
    return [java or default_java(), *EXPORTS, *options, "-cp", str(classes), MAIN_CLASS]


class _Failure(Exception):
    """One failed exchange with one validator process (timeout, exit, broken pipe)."""


class _Process:
    """One validator JVM; reader threads keep its stdout lines and the tail of its stderr."""

    def __init__(self, cmd: list[str]):
        try:
            self.popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                          errors="replace", bufsize=1)
        except OSError as exc:
            raise ValidatorError(f"cannot start the validator ({cmd[0]}): {exc.strerror or exc}") from None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.anchor_refs: set[str] = set()  # anchor sets this JVM holds
        self.stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._err_reader = threading.Thread(target=self._pump_stderr, daemon=True, name="jre-validator-err")
        threading.Thread(target=self._pump_stdout, daemon=True, name="jre-validator-out").start()
        self._err_reader.start()

    # Each pipe is closed by the thread reading it: closing it from another thread
    # would wait on the reader's buffer lock.
    def _pump_stdout(self) -> None:
        try:
            for line in self.popen.stdout:
                self.lines.put(line)
        finally:
            self.lines.put(None)  # end of stream: the process is gone or going
            self.popen.stdout.close()

    def _pump_stderr(self) -> None:
        try:
            for line in self.popen.stderr:
                self.stderr.append(line.rstrip("\n"))
        finally:
            self.popen.stderr.close()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def ask(self, line: str, timeout: float) -> str:
        try:
            self.popen.stdin.write(line + "\n")
            self.popen.stdin.flush()
        except OSError:
            raise _Failure(self._gone("its input closed")) from None
        try:
            reply = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise _Failure(f"no answer within {timeout:g} s") from None
        if reply is None:
            raise _Failure(self._gone("it closed its output"))
        return reply

    def _gone(self, what: str) -> str:
        try:
            code = self.popen.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return f"{what}, still running"
        self._err_reader.join(timeout=1)  # its last words, usually why it exited
        tail = " | ".join(list(self.stderr)[-3:])
        return f"{what}, exit code {code}" + (f" (stderr: {tail})" if tail else "")

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # unkillable within 5 s: nothing more we can do, the OS reaps it later
        try:
            self.popen.stdin.close()
        except OSError:
            pass  # a pipe already broken is closed enough

    def close(self) -> None:
        """End of input asks the validator to exit; kill it if it does not."""
        try:
            self.popen.stdin.close()
        except OSError:
            pass  # broken pipe: the process is gone already
        try:
            self.popen.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def _close_box(box: list) -> None:
    proc = box[0]
    box[0] = None
    if proc is not None:
        proc.close()


def b64_der(cert: x509.Certificate) -> str:
    """A certificate as the validator takes it: base64 of its DER."""
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def _wire(anchors: Sequence[x509.Certificate]) -> tuple[str, list[str]]:
    """(ref, base64 DER): the ref names the set by its content."""
    encoded = [b64_der(a) for a in anchors]
    return hashlib.sha256("\n".join(encoded).encode()).hexdigest(), encoded


class Anchors(tuple):
    """Trust anchors judged against again and again (a server context's): encoded for the JVM
    once, where a plain list is looked up by its certificates at every verdict (hashing and
    comparing ~150 of them cost a primary about a third of its Python time per handshake)."""

    @functools.cached_property
    def wire(self) -> tuple[str, list[str]]:
        return _wire(self)


class Validator:
    """A long-lived JRE validator; thread-safe (one request at a time), restarted when it hangs or dies.

    Every request waits at most ``timeout`` seconds. On a timeout or a dead process the
    JVM is killed, a fresh one started and the request tried once more; a second failure
    raises ValidatorError. The JVM starts on first use and stops at ``close()`` or at
    interpreter exit.
    """

    def __init__(self, cmd: Sequence[str] | None = None, *, java: str | None = None,
                 classes_dir: str | os.PathLike | None = None, java_security: str | None = None,
                 jvm_options: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT):
        env_cmd = os.environ.get("SAFEQ_VALIDATOR_CMD")
        java_security = java_security or os.environ.get("SAFEQ_JAVA_SECURITY") or None
        # Explicit arguments win over the environment.
        if cmd is None and env_cmd and not (java or classes_dir or jvm_options):
            cmd = shlex.split(env_cmd)
        if cmd is not None:
            if java_security:
                raise ValidatorError("a java.security override applies to the default command only; "
                                     "put -Djava.security.properties=FILE into the validator command")
            self.cmd = list(cmd)
        else:
            self.cmd = default_command(java, classes_dir, java_security, jvm_options)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._box: list[_Process | None] = [None]
        self._version: str | None = None
        self._anchor_sets: dict[tuple, tuple[str, list[str]]] = {}
        self._finalizer = weakref.finalize(self, _close_box, self._box)

    def __enter__(self) -> Validator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            _close_box(self._box)

    @property
    def pid(self) -> int | None:
        """The current JVM's process id (None before the first request)."""
        proc = self._box[0]
        return proc.popen.pid if proc is not None else None

    def info(self) -> dict:
        """java.version, java.vendor, java.home, the java.security in effect and its disabledAlgorithms."""
        reply = self._call({"cmd": "info"})
        reply.pop("id", None)
        return reply

    @property
    def java_version(self) -> str | None:
        """java.version of the running JRE (asked once; None if it cannot be asked)."""
        if self._version is None:
            try:
                self._version = self.info().get("java.version") or ""
            except ValidatorError:
                return None
        return self._version or None

    def store(self, path: str, password: str, storetype: str | None) -> dict:
        """The key or trust store as this JRE loads it (KeyStore.load; the type probed when None):
        {"entries": [{"alias", "kind", "certs": [base64 DER]}]} as keytool -list orders them, or
        {"refused": the exception as Java prints it}."""
        reply = self._call({"cmd": "store", "path": path, "password": password, "type": storetype or ""})
        reply.pop("id", None)
        return reply

    def refusal(self, verdict: Verdict) -> str:
        """A refused chain as this JRE's handshake logs it: "(certificate_unknown) PKIX ..." on JRE 21."""
        return handshake_message(refusal_alert(verdict.certificate_exception), verdict.reason, self.java_version)

    def judge(self, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate], mode: str,
              host: str | None = None, auth_type: str = "UNKNOWN") -> Verdict:
        """The JRE's verdict on ``chain`` (as sent, leaf first) against ``anchors``.

        mode "client": as a Java server judges a client (checkClientTrusted);
        mode "server": as a Java client judges a server (checkServerTrusted), then
        the host name check when ``host`` is given. ``auth_type`` is JSSE's key
        exchange name ("UNKNOWN" for TLS 1.3, "ECDHE_ECDSA", "RSA", ...).
        """
        if mode not in ("client", "server"):
            raise ValueError(f"mode must be 'client' or 'server', not {mode!r}")
        if not chain:
            raise ValueError("an empty chain is refused by the handshake before any trust manager")
        request = {"mode": mode, "chain": [b64_der(c) for c in chain], "auth_type": auth_type}
        if host is not None:
            request["host"] = host
        return Verdict.from_reply(self._call(request, self._anchor_set(anchors)))

    def _anchor_set(self, anchors: Sequence[x509.Certificate]) -> tuple[str, list[str]]:
        """(ref, base64 DER): the JVM keeps the last few anchor sets by ref, so a primary's ~150
        anchors cross the pipe once, not at every handshake."""
        if isinstance(anchors, Anchors):
            return anchors.wire
        key = tuple(anchors)
        with self._lock:
            found = self._anchor_sets.get(key)
            if found is None:
                found = _wire(anchors)
                if len(self._anchor_sets) >= _ANCHOR_SETS_KEPT:
                    self._anchor_sets.pop(next(iter(self._anchor_sets)))
                self._anchor_sets[key] = found
            return found

    def _call(self, request: dict, anchor_set: tuple[str, list[str]] | None = None) -> dict:
        with self._lock:
            failures: list[str] = []
            for _attempt in range(2):
                proc = self._running()
                try:
                    return self._exchange(proc, request, anchor_set)
                except _Failure as exc:
                    failures.append(str(exc))
                    proc.kill()
                    self._box[0] = None
            raise ValidatorError(f"the JRE validator failed: {failures[0]}; after a restart: {failures[1]} "
                                 f"(command: {shlex.join(self.cmd)})")

    def _exchange(self, proc: _Process, request: dict, anchor_set: tuple[str, list[str]] | None) -> dict:
        """One request; the anchors by ref once this process has them, else in full under the ref."""
        for full in (False, True):
            rid = next(self._ids)
            body = {"id": rid, **request}
            if anchor_set is not None:
                ref, encoded = anchor_set
                body["anchors_ref"] = ref
                if full or ref not in proc.anchor_refs:
                    body["anchors"] = encoded
            reply = self._decode(proc, proc.ask(json.dumps(body), self.timeout), rid)
            if not reply.get("unknown_anchors"):
                if anchor_set is not None:
                    proc.anchor_refs.add(anchor_set[0])
                return reply
            proc.anchor_refs.discard(anchor_set[0])  # the JVM dropped that set: send it again
        raise ValidatorError("the JRE validator lost the anchors it was just sent")

    def _running(self) -> _Process:
        proc = self._box[0]
        if proc is None or not proc.alive():
            if proc is not None:
                proc.kill()
            proc = self._box[0] = _Process(self.cmd)
        return proc

    def _decode(self, proc: _Process, line: str, rid: int) -> dict:
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict) or reply.get("id") != rid:
            # Out of step with the process: it cannot be trusted for the next request either.
            proc.kill()
            self._box[0] = None
            raise ValidatorError(f"the JRE validator answered out of protocol: {line.strip()[:200]!r}")
        if "error" in reply:
            raise ValidatorError(f"the JRE validator refused the request: {reply['error']}")
        return reply
