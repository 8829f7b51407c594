"""OCSP revocation checks of a certificate chain (RFC 6960), as the primary and gateway make them.

The account's two OCSP settings: "enable OCSP revocation checks" (the
caller decides whether to check at all) and "a custom OCSP URL if the provisioned
certificates do not contain it" (``custom_url``: used only for a certificate whose AIA
has no OCSP URL).

Checked: the leaf and every CA certificate of the chain whose issuer is found (in the
chain or among ``issuers``, the trust anchors: a chain may stop at an intermediate that
is itself trusted). Self-signed roots are not checked. Each request carries a nonce and
goes by HTTP POST. A response counts only if it is successful, signed by the issuing CA
or by a delegated signer (a certificate in the response, issued by that CA, with EKU
OCSPSigning, valid now), about the certificate asked for (CertID), current (thisUpdate
not in the future, nextUpdate not in the past, 5 minutes' clock skew allowed) and
echoes the nonce. Good and revoked answers are cached until their nextUpdate.

:class:`Result` ``status``:

* ``good``: every checked certificate is good (some may be skipped); ok.
* ``revoked`` / ``unknown``: not ok; ``reason`` in the JRE's words.
* ``unavailable``: no trustworthy answer (network, HTTP, garbage, failed verification).
  ``on_failure="fail-closed"``: not ok; ``"fail-open"``: ok, with the same text in
  ``reason`` as a warning for the log.
* ``skipped``: no checked certificate has an OCSP URL and no custom URL is configured.
  The lab's outcome is ok: there is nothing to ask, and the account setting exists for
  exactly this case.

``Result.checked`` has one dict per certificate checked, leaf first: ``subject``
(RFC 4514), ``serial`` (lowercase hex), ``url`` (None when skipped), ``status``,
``detail``, ``cached`` (answered from the cache) and, when unavailable, ``reason``.
``max_cache_age`` (seconds) caps the cache below nextUpdate, so a revocation made in the
lab shows sooner than the responder's validity period.
"""
from __future__ import annotations

import datetime as dt
import http.client
import os
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from certkit.chain import issued_by
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

SKEW = dt.timedelta(minutes=5)
MAX_RESPONSE_BYTES = 1 << 20
NO_URL = "no OCSP URL in the certificate and no custom OCSP URL configured"
NETWORK = "Unable to determine revocation status due to network error"
UNKNOWN = "Certificate's revocation status is unknown"
FAIL_MODES = ("fail-closed", "fail-open")
# Most decisive first: the chain's status is the worst one found.
_RANK = {"revoked": 0, "unknown": 1, "unavailable": 2, "good": 3, "skipped": 4}


@dataclass
class Result:
    ok: bool
    status: str  # good | revoked | unknown | unavailable | skipped
    reason: str
    checked: list[dict] = field(default_factory=list)  # one per certificate: see the module docstring


class Unavailable(Exception):
    """No trustworthy answer; the message is the detail in brackets after NETWORK."""


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey bits: OCSP's byKey responder ID (= RFC 5280 method-1 SKI)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.lower().startswith(("http://", "https://"))
    ]


def _verify_signature(public_key, signature: bytes, data: bytes, hash_alg) -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hash_alg)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_alg))
    elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        public_key.verify(signature, data)
    else:
        raise InvalidSignature("unsupported key type")


def _network_detail(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else Exception(str(exc.reason))
    if isinstance(exc, TimeoutError):
        return "Read timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "Connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


class OcspChecker:
    """Checks chains against OCSP responders; one instance per service (it holds the cache)."""

    def __init__(self, *, custom_url: str | None = None, timeout: float = 3.0, on_failure: str = "fail-closed",
                 clock: Callable[[], dt.datetime] | None = None, max_cache_age: float | None = None):
        if on_failure not in FAIL_MODES:
            raise ValueError(f"on_failure must be one of {', '.join(FAIL_MODES)}, not {on_failure!r}")
        self.custom_url = custom_url or None
        self.timeout = timeout
        self.on_failure = on_failure
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        # Optional cap on caching below nextUpdate, so a lab revocation shows sooner.
        self.max_cache_age = max_cache_age
        self._cache: dict[tuple[bytes, int], tuple[dt.datetime, str, str]] = {}
        self._lock = threading.Lock()
        # Direct connections: a proxy from the environment must not answer for the responder.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- the chain --------------------------------------------------------------------
    def check_chain(self, chain: list[x509.Certificate], issuers: list[x509.Certificate]) -> Result:
        if not chain:
            raise ValueError("check_chain needs at least the leaf certificate")
        checked: list[dict] = []
        for i, cert in enumerate(chain):
            if cert.issuer == cert.subject and issued_by(cert, cert):
                continue  # a self-signed root: nothing above it answers for it
            issuer = self._find_issuer(cert, chain[i + 1:i + 2], issuers)
            if issuer is None:
                if i == 0:
                    checked.append(self._entry(cert, None, "unavailable",
                                               "the issuer certificate is neither in the chain nor trusted"))
                continue  # a CA certificate whose issuer is unknown here is not checked
            entry = self._check_one(cert, issuer)
            checked.append(entry)
            fatal = entry["status"] in ("revoked", "unknown") or (
                entry["status"] == "unavailable" and self.on_failure == "fail-closed")
            if fatal:
                break
        return self._result(checked)

    @staticmethod
    def _find_issuer(cert: x509.Certificate, nxt: list[x509.Certificate],
                     issuers: list[x509.Certificate]) -> x509.Certificate | None:
        for candidate in [*nxt, *issuers]:
            if candidate.subject == cert.issuer and issued_by(cert, candidate):
                return candidate
        return None

    def _result(self, checked: list[dict]) -> Result:
        worst = min(checked, key=lambda e: _RANK[e["status"]], default=None)
        if worst is None:
            return Result(True, "skipped", "no certificate of the chain needs an OCSP check", checked)
        status = worst["status"]
        if status == "revoked":
            return Result(False, status, worst["detail"], checked)
        if status == "unknown":
            return Result(False, status, UNKNOWN, checked)
        if status == "unavailable":
            return Result(self.on_failure == "fail-open", status, worst["reason"], checked)
        good = sum(e["status"] == "good" for e in checked)
        skipped = len(checked) - good
        if not good:
            return Result(True, "skipped", NO_URL, checked)
        reason = f"OCSP: {good} certificate(s) good" + (f", {skipped} skipped ({NO_URL})" if skipped else "")
        return Result(True, "good", reason, checked)

    @staticmethod
    def _entry(cert: x509.Certificate, url: str | None, status: str, detail: str, *, cached: bool = False,
               reason: str | None = None) -> dict:
        entry = {"subject": cert.subject.rfc4514_string(), "serial": serial_hex(cert), "url": url,
                 "status": status, "detail": detail, "cached": cached}
        if status == "unavailable":
            entry["reason"] = reason or f"Unable to determine revocation status ({detail})"
        return entry

    # -- one certificate ------------------------------------------------------------------
    def _check_one(self, cert: x509.Certificate, issuer: x509.Certificate) -> dict:
        urls = ocsp_urls(cert)
        url = urls[0] if urls else self.custom_url
        if url is None:
            return self._entry(cert, None, "skipped", NO_URL)
        now = self.clock()
        ckey = (key_hash(issuer), cert.serial_number)
        with self._lock:
            hit = self._cache.get(ckey)
            if hit is not None and hit[0] <= now:
                del self._cache[ckey]
                hit = None
        if hit is not None:
            return self._entry(cert, url, hit[1], hit[2], cached=True)
        try:
            status, detail, next_update = self._ask(url, cert, issuer, now)
        except Unavailable as exc:
            return self._entry(cert, url, "unavailable", str(exc), reason=f"{NETWORK} ({exc})")
        if next_update is not None:
            until = next_update
            if self.max_cache_age is not None:
                until = min(until, now + dt.timedelta(seconds=self.max_cache_age))
            if status in ("good", "revoked") and until > now:
                with self._lock:
                    self._cache[ckey] = (until, status, detail)
        return self._entry(cert, url, status, detail)

    def _ask(self, url: str, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime):
        nonce = os.urandom(16)
        req = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
        body = self._post(url, req.public_bytes(serialization.Encoding.DER))
        return self._verify(body, req, nonce, issuer, now)

    def _post(self, url: str, der: bytes) -> bytes:
        request = urllib.request.Request(url, data=der, method="POST", headers={
            "Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"})
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                body = resp.read(MAX_RESPONSE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise Unavailable(_network_detail(exc)) from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise Unavailable(f"OCSP response larger than {MAX_RESPONSE_BYTES} bytes")
        return body

    def _verify(self, body: bytes, req: ocsp.OCSPRequest, nonce: bytes, issuer: x509.Certificate,
                now: dt.datetime) -> tuple[str, str, dt.datetime | None]:
        try:
            resp = ocsp.load_der_ocsp_response(body)
        except ValueError as exc:
            raise Unavailable(f"OCSP response parsing failed: {exc}") from None
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise Unavailable(f"OCSP response error: {resp.response_status.name}")
        try:
            signer = self._signer(resp, issuer, now)
            single = self._single(resp, req)
            extensions = resp.extensions
        except (ValueError, UnsupportedAlgorithm) as exc:  # a field cryptography cannot decode
            raise Unavailable(f"OCSP response parsing failed: {exc}") from None
        try:
            _verify_signature(signer.public_key(), resp.signature, resp.tbs_response_bytes,
                              resp.signature_hash_algorithm)
        except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
            raise Unavailable("OCSP response signature verification failed: "
                              "Error verifying OCSP Response's signature") from None
        try:
            echoed = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            raise Unavailable("OCSP response nonce check failed: the response carries no nonce") from None
        if echoed != nonce:
            raise Unavailable("OCSP response nonce check failed: Nonces don't match")
        this_update, next_update = single.this_update_utc, single.next_update_utc
        if this_update > now + SKEW or (next_update is not None and next_update < now - SKEW):
            raise Unavailable("OCSP response validity check failed: "
                              "Response is unreliable: its validity interval is out-of-date "
                              f"(thisUpdate {iso(this_update)}, nextUpdate "
                              f"{iso(next_update) if next_update else 'none'}, now {iso(now)})")
        serial = format(single.serial_number, "x")
        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.GOOD:
            return "good", f"good (thisUpdate {iso(this_update)})", next_update
        if status == ocsp.OCSPCertStatus.UNKNOWN:
            return "unknown", f"{UNKNOWN}, serial {serial}", next_update
        reason = single.revocation_reason
        java_reason = reason.name.upper() if reason is not None else "UNSPECIFIED"
        detail = (f"Certificate has been revoked, reason: {java_reason}, revocation date: "
                  f"{iso(single.revocation_time_utc)}, authority: {signer.subject.rfc4514_string()}, serial {serial}")
        return "revoked", detail, next_update

    @staticmethod
    def _signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate:
        """The certificate whose key must have signed ``resp``: the CA itself or its delegate."""
        def named(cert: x509.Certificate) -> bool:
            if resp.responder_key_hash is not None:
                return resp.responder_key_hash == key_hash(cert)
            return resp.responder_name == cert.subject

        if named(issuer):
            return issuer
        candidates = [c for c in resp.certificates if named(c)]
        if not candidates:
            raise Unavailable("OCSP response signature verification failed: "
                              "no certificate in the response matches its responder ID")
        for cert in candidates:
            try:
                eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                continue
            if (ExtendedKeyUsageOID.OCSP_SIGNING in eku and cert.issuer == issuer.subject and issued_by(cert, issuer)
                    and cert.not_valid_before_utc <= now + SKEW and cert.not_valid_after_utc >= now - SKEW):
                return cert
        raise Unavailable("OCSP response signature verification failed: "
                          "Responder's certificate not valid for signing OCSP responses "
                          f"({candidates[0].subject.rfc4514_string()} is no delegated OCSP signer of "
                          f"{issuer.subject.rfc4514_string()})")

    @staticmethod
    def _single(resp: ocsp.OCSPResponse, req: ocsp.OCSPRequest):
        for single in resp.responses:
            if (single.serial_number == req.serial_number and single.issuer_name_hash == req.issuer_name_hash
                    and single.issuer_key_hash == req.issuer_key_hash
                    and single.hash_algorithm.name == req.hash_algorithm.name):
                return single
        raise Unavailable("OCSP response certificate ID check failed: the response is not about the "
                          f"certificate asked for (serial {req.serial_number:x})")
