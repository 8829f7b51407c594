#!/usr/bin/python3
"""safeq-ocsp: the lab's OCSP responder (RFC 6960, RFC 5019 profile) for every CA of the PKI.

  safeq-ocsp run      serve OCSP over HTTP (the service, started by the supervisor)
  safeq-ocsp health   exit 0 only if the running responder answers a real OCSP request
                      for each CA's signer with a verified "good"

It reads the folder ``pki init`` exports as hosts/ocsp-host/ (mounted at /pki):
responder.json (issuers: CA certificate, delegated signer certificate and key) and
status.json (per CA, serial -> good/revoked). status.json is re-read when it changes,
so `safeq-lab pki revoke NAME` shows on the next request.

Environment: OCSP_DIR (/pki), OCSP_PORT (8080), OCSP_BIND (0.0.0.0),
OCSP_VALIDITY_SECONDS (300: nextUpdate - now, and the HTTP max-age), OCSP_LOG (a log
file besides stdout; none by default).

HTTP: POST with Content-Type application/ocsp-request and a DER body, or GET
/<url-encoded base64 of the DER request> (any path prefix). GET / and /health answer
"ok" while the configuration is loaded. Bodies over 64 KiB get HTTP 413 unread.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import json
import os
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509 import ocsp

from certkit.certs import same_public_key
from safeqlab import util

MAX_BODY = 64 * 1024
MAX_GET_PATH = 8 * 1024
SKEW = dt.timedelta(seconds=60)  # thisUpdate slightly in the past, for clients whose clock lags
CERT_ID_HASHES = (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
REASONS = {r.value: r for r in x509.ReasonFlags}
log = util.setup_logging("safeq-ocsp")


class ConfigError(Exception):
    """The mounted folder cannot be served; the message says why."""


class Malformed(Exception):
    """A request the responder cannot parse: answered with malformedRequest."""


def _signature_hash(key):
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


class Issuer:
    """One CA the responder answers for, signing with its delegated OCSP signer."""

    def __init__(self, name: str, cert: x509.Certificate, signer_cert: x509.Certificate, signer_key):
        self.name, self.cert, self.signer_cert, self.signer_key = name, cert, signer_cert, signer_key
        self.sig_hash = _signature_hash(signer_key)
        # CertID hashes as a client computes them; a request for the signer's own
        # certificate yields them without any hand-made DER.
        self.cert_ids = set()
        for algorithm in CERT_ID_HASHES:
            req = ocsp.OCSPRequestBuilder().add_certificate(signer_cert, cert, algorithm()).build()
            self.cert_ids.add((algorithm.name, req.issuer_name_hash, req.issuer_key_hash))
        self._stand_ins: dict[int, x509.Certificate] = {}
        self._stand_in_key = ed25519.Ed25519PrivateKey.generate()
        self._lock = threading.Lock()

    def stand_in(self, serial: int) -> x509.Certificate:
        """A certificate that carries only this issuer's name and ``serial``.

        cryptography 43's OCSPResponseBuilder takes the certificate asked about, not a
        CertID; the responder knows serials only (and must answer for unknown ones), so
        it hands the builder a stand-in with the same issuer name and serial. Its key
        and signature are throwaway: only the issuer name and serial reach the CertID.
        """
        with self._lock:
            cert = self._stand_ins.get(serial)
        if cert is None:
            start = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.cert.subject)
                    .public_key(self._stand_in_key.public_key()).serial_number(serial)
                    .not_valid_before(start).not_valid_after(start + dt.timedelta(days=1))
                    .sign(self._stand_in_key, None))
            with self._lock:
                if len(self._stand_ins) >= 4096:
                    self._stand_ins.clear()
                self._stand_ins[serial] = cert
        return cert


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{path} is not a PEM certificate") from None


def load_issuers(directory: Path) -> tuple[list[Issuer], Path]:
    config_path = directory / "responder.json"
    try:
        config = json.loads(config_path.read_text())
        entries = config["issuers"]
        status_file = directory / config["status_file"]
        assert isinstance(entries, list)  # empty: a spec's PKI, whose OCSP signers the lab does not have
    except OSError as exc:
        raise ConfigError(f"cannot read {config_path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ConfigError(f"{config_path} is not a responder configuration (issuers, status_file)") from None
    issuers = []
    for entry in entries:
        try:
            name, cert_file, signer_file, key_file = (entry[k] for k in ("name", "cert", "signer_cert", "signer_key"))
        except (KeyError, TypeError):
            raise ConfigError(f"{config_path}: each issuer needs name, cert, signer_cert, signer_key") from None
        cert = _load_cert(directory / cert_file)
        signer = _load_cert(directory / signer_file)
        try:
            key = serialization.load_pem_private_key((directory / key_file).read_bytes(), password=None)
        except OSError as exc:
            raise ConfigError(f"cannot read {directory / key_file}: {exc.strerror}") from None
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(f"{directory / key_file} is not an unencrypted PEM private key") from None
        if not same_public_key(key.public_key(), signer.public_key()):
            raise ConfigError(f"{directory / key_file} is not the key of {directory / signer_file}")
        try:
            signer.verify_directly_issued_by(cert)
        except Exception:
            raise ConfigError(f"{directory / signer_file} was not issued by {name} ({directory / cert_file})") from None
        issuers.append(Issuer(name, cert, signer, key))
    return issuers, status_file


class StatusTable:
    """status.json, re-read whenever the file changes (one stat per request)."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp = None
        self._table: dict | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self._failed(f"cannot read {self.path}: {exc.strerror}")
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                table = json.loads(Path(self.path).read_text())
                if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
                    raise ValueError("expected {issuer: {serial: {...}}}")
            except (OSError, ValueError) as exc:
                self._failed(f"{self.path} is unusable ({exc}); answering from the previous copy")
                return
            self._table, self._stamp, self.error = table, stamp, None
            log.info("status loaded from %s: %s", self.path,
                     ", ".join(f"{k} {len(v)} serials" for k, v in sorted(table.items())))

    def _failed(self, why: str) -> None:
        if why != self.error:
            log.error("%s", why)
        self.error = why

    @property
    def loaded(self) -> bool:
        return self._table is not None

    def lookup(self, issuer: str, serial: int) -> dict | None:
        table = self._table or {}
        return table.get(issuer, {}).get(format(serial, "x"))


class Responder:
    def __init__(self, directory: Path, validity_seconds: int):
        self.directory = directory
        self.validity = dt.timedelta(seconds=validity_seconds)
        self.issuers: list[Issuer] = []
        self.status: StatusTable | None = None
        self.error: str | None = None
        try:
            self.issuers, status_path = load_issuers(directory)
            self.status = StatusTable(status_path)
        except ConfigError as exc:
            # Keep serving (internalError) so the container stays inspectable; health says why.
            self.error = str(exc)
            log.error("%s", exc)

    def health(self) -> str | None:
        """None when ready, else why not."""
        if self.error:
            return self.error
        self.status.refresh()
        if not self.status.loaded:
            return self.status.error or "status not loaded"
        return None

    @staticmethod
    def error_response(status: ocsp.OCSPResponseStatus) -> bytes:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)

    def answer(self, der: bytes) -> tuple[bytes, str, tuple[dt.datetime, dt.datetime] | None]:
        """(DER response, log text, (thisUpdate, nextUpdate) when successful)."""
        try:
            req = ocsp.load_der_ocsp_request(der)
            serial = req.serial_number
            extensions = req.extensions
        except (ValueError, NotImplementedError) as exc:  # garbage, or more than one request
            raise Malformed(f"not a single DER OCSP request ({exc})") from None
        try:
            algorithm = req.hash_algorithm
        except UnsupportedAlgorithm:
            return self.error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED), \
                f"serial {serial:x}: unauthorized (unsupported CertID hash)", None
        nonce = None
        try:
            nonce = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            pass
        if nonce is not None and not 1 <= len(nonce) <= 32:
            raise Malformed(f"nonce of {len(nonce)} octets (RFC 8954 allows 1 to 32)")
        if not 0 < serial < 1 << 159:
            raise Malformed(f"serial {serial:x} is no certificate serial number")
        if not self.error:
            self.status.refresh()  # a status file fixed after start is picked up
        if self.error or not self.status.loaded:
            return self.error_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR), \
                f"serial {serial:x}: internalError ({self.health()})", None
        key = (algorithm.name, req.issuer_name_hash, req.issuer_key_hash)
        issuer = next((i for i in self.issuers if key in i.cert_ids), None)
        if issuer is None:
            return self.error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED), \
                f"serial {serial:x}: unauthorized (issuer not served here)", None

        self.status.refresh()
        record = self.status.lookup(issuer.name, serial)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        this_update, next_update = now - SKEW, now + self.validity
        revocation_time = reason = None
        if record is None:
            cert_status, text = ocsp.OCSPCertStatus.UNKNOWN, "unknown"
        elif record.get("status") == "revoked":
            cert_status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = _parse_time(record.get("revocation_time")) or this_update
            # The status is known from the revocation on, so thisUpdate is never before it.
            this_update = max(this_update, min(revocation_time, now))
            # RFC 5280 5.3.1: "unspecified" is expressed by leaving the reason out.
            reason = REASONS.get(record.get("reason") or "unspecified")
            if reason == x509.ReasonFlags.unspecified:
                reason = None
            text = f"revoked ({record.get('reason') or 'unspecified'})"
        else:
            cert_status, text = ocsp.OCSPCertStatus.GOOD, "good"
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response(cert=issuer.stand_in(serial), issuer=issuer.cert, algorithm=algorithm,
                                 cert_status=cert_status, this_update=this_update, next_update=next_update,
                                 revocation_time=revocation_time, revocation_reason=reason)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.signer_cert)
                   .certificates([issuer.signer_cert]))
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(issuer.signer_key, issuer.sig_hash)
        return (response.public_bytes(serialization.Encoding.DER),
                f"serial {serial:x} issuer {issuer.name}: {text}", (this_update, next_update))


def _parse_time(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def decode_get_path(path: str) -> bytes:
    """The DER request in a GET path: /<url-encoded base64>, after any path prefix.

    Base64 may itself contain '/', so each suffix after a '/' is tried, longest first.
    """
    path = path.split("?", 1)[0]
    if len(path) > MAX_GET_PATH:
        raise Malformed(f"GET path longer than {MAX_GET_PATH} characters")
    starts = [i + 1 for i, ch in enumerate(path) if ch == "/"] or [0]
    for start in starts:
        text = urllib.parse.unquote(path[start:]).replace(" ", "+").strip()
        if not text:
            continue
        try:
            der = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None,
                                   validate=True)
            ocsp.load_der_ocsp_request(der)
        except (binascii.Error, ValueError, NotImplementedError):
            continue
        return der
    raise Malformed("the GET path holds no base64 DER OCSP request")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections
    server_version = "safeq-ocsp"
    sys_version = ""
    timeout = 10  # an idle keep-alive connection closes after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    responder: Responder  # set on the subclass made by serve()

    def log_message(self, fmt, *args):  # one line per request is written by _reply instead
        pass

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/", "/health"):
            problem = self.responder.health()
            self._plain(503 if problem else 200, f"error: {problem}\n" if problem else "ok\n")
            return
        try:
            der = decode_get_path(self.path)
        except Malformed as exc:
            self._malformed(str(exc))
            return
        self._ocsp(der, cacheable=True)

    def handle_expect_100(self):
        # "Expect: 100-continue" with an oversized body: refuse before the client sends it.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            self.close_connection = True
            self._too_large(int(length))
            return False
        return super().handle_expect_100()

    def do_POST(self):
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except (TypeError, ValueError):
            self.close_connection = True  # the body's end is unknown
            self._malformed(f"no usable Content-Length ({length_text!r})")
            return
        if length > MAX_BODY:
            self.close_connection = True  # the body stays unread
            self._too_large(length)
            return
        body = self.rfile.read(length) if length else b""
        if self.headers.get_content_type() != "application/ocsp-request":
            self._malformed(f"Content-Type {self.headers.get('Content-Type')!r}, expected application/ocsp-request")
            return
        if not body:
            self._malformed("empty body")
            return
        self._ocsp(body, cacheable=False)

    def _ocsp(self, der: bytes, cacheable: bool) -> None:
        try:
            response, text, times = self.responder.answer(der)
        except Malformed as exc:
            self._malformed(str(exc))
            return
        except Exception as exc:  # never take the responder down for one request
            log.exception("internal error")
            self._log(f"internalError ({exc.__class__.__name__}: {exc})")
            self._send_ocsp(self.responder.error_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR), None, False)
            return
        self._log(text)  # before the answer: whoever got an answer finds its line in the log
        self._send_ocsp(response, times, cacheable)

    def _too_large(self, length: int) -> None:
        self._log(f"HTTP 413 ({length} bytes)")
        self._plain(413, f"request body of {length} bytes; at most {MAX_BODY} accepted\n")

    def _malformed(self, why: str) -> None:
        self._log(f"malformedRequest ({why})")
        self._send_ocsp(self.responder.error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST), None, False)

    def _send_ocsp(self, body: bytes, times, cacheable: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        if times is None:
            self.send_header("Cache-Control", "no-store")
        else:
            # RFC 5019 6.2: caches may keep the response until nextUpdate.
            this_update, next_update = times
            max_age = max(0, int((next_update - dt.datetime.now(dt.timezone.utc)).total_seconds()))
            self.send_header("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate")
            if cacheable:
                self.send_header("Last-Modified", email.utils.format_datetime(this_update, usegmt=True))
                self.send_header("Expires", email.utils.format_datetime(next_update, usegmt=True))
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _log(self, text: str) -> None:
        log.info("%s %s %s", self.client_address[0], self.command, text)


class Server(ThreadingHTTPServer):
    daemon_threads = True  # open keep-alive connections never delay a stop
    allow_reuse_address = True
    request_queue_size = 128


def serve(directory: Path, host: str, port: int, validity: int, stop: threading.Event) -> int:
    responder = Responder(directory, validity)
    handler = type("BoundHandler", (Handler,), {"responder": responder})
    try:
        server = Server((host, port), handler)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror)
        return 1
    log.info("OCSP responder on %s:%d for %s; status %s; nextUpdate +%d s", host, server.server_address[1],
             ", ".join(i.name for i in responder.issuers) or "nobody (configuration error)",
             responder.status.path if responder.status else "-", validity)
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    worker.start()
    stop.wait()
    log.info("Stopping")
    server.shutdown()
    server.server_close()
    return 0


def settings() -> tuple[Path, str, int, int]:
    directory = Path(os.environ.get("OCSP_DIR", "/pki"))
    host = os.environ.get("OCSP_BIND", "0.0.0.0")
    try:
        port = int(os.environ.get("OCSP_PORT", "8080"))
        validity = int(os.environ.get("OCSP_VALIDITY_SECONDS", "300"))
    except ValueError:
        raise SystemExit("error: OCSP_PORT and OCSP_VALIDITY_SECONDS must be whole numbers")
    if not 0 <= port <= 65535 or validity < 1:
        raise SystemExit("error: OCSP_PORT must be 0-65535 and OCSP_VALIDITY_SECONDS at least 1")
    return directory, host, port, validity


def health(directory: Path, port: int) -> int:
    """A real OCSP round trip per CA: its signer's certificate must come back verified good."""
    from safeqlab.ocspcheck import OcspChecker

    try:
        issuers, _ = load_issuers(directory)
    except ConfigError as exc:
        print(f"unhealthy: {exc}")
        return 1
    if not issuers:
        return _answers(port)
    # Signer certificates carry no OCSP URL, so every request goes to this responder.
    checker = OcspChecker(custom_url=f"http://127.0.0.1:{port}", timeout=2.0)
    for issuer in issuers:
        result = checker.check_chain([issuer.signer_cert], [issuer.cert])
        if result.status != "good":
            print(f"unhealthy: {issuer.name}: {result.status}: {result.reason}")
            return 1
    print(f"ok: answering for {', '.join(i.name for i in issuers)}")
    return 0


def _answers(port: int) -> int:
    """A responder for no CA still has to answer: a request it cannot parse gets malformedRequest."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"not an OCSP request",
                                     headers={"Content-Type": "application/ocsp-request"})
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            answer = ocsp.load_der_ocsp_response(reply.read())
    except (OSError, ValueError) as exc:
        print(f"unhealthy: the responder does not answer ({exc})")
        return 1
    if answer.response_status != ocsp.OCSPResponseStatus.MALFORMED_REQUEST:
        print(f"unhealthy: garbage was answered {answer.response_status.name}")
        return 1
    print("ok: answering, for no CA (the PKI's OCSP signers are not the lab's)")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command not in ("run", "health") or len(argv) > 1:
        print("usage: safeq-ocsp [run|health]", file=sys.stderr)
        return 2
    directory, host, port, validity = settings()
    if command == "health":
        return health(directory, port)
    if os.environ.get("OCSP_LOG"):
        util.setup_logging("safeq-ocsp", os.environ["OCSP_LOG"])
    return serve(directory, host, port, validity, util.stop_event_on_signals())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
