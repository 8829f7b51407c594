"""safeqlab.ocspcheck.OcspChecker against the real responder and against fake ones."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

import pki
from test_ocsp_support import free_port, load_certs, start_lab

from safeqlab.ocspcheck import NO_URL, OcspChecker  # noqa: E402  (path set by test_ocsp_support)

NETWORK = "Unable to determine revocation status due to network error"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# -- the real responder ------------------------------------------------------------------------
def test_good_chain(ocsp_lab):
    result = OcspChecker().check_chain(ocsp_lab.chain("primary-host"), ocsp_lab.anchors())
    assert result.ok and result.status == "good", result
    assert result.reason == "OCSP: 2 certificate(s) good"
    assert [(c["subject"], c["status"], c["url"], c["cached"]) for c in result.checked] == [
        ("CN=primary-host,O=Acme", "good", ocsp_lab.responder.url, False),
        ("CN=Acme-CA-Intermediate,O=Acme", "good", ocsp_lab.responder.url, False),
    ]
    assert result.checked[0]["serial"] == ocsp_lab.serial("primary-host")


def test_revoked_in_the_jre_words(fresh_ocsp_lab):
    lab = fresh_ocsp_lab
    checker = OcspChecker()
    old_pcclient = lab.chain("pcclient-host")
    assert checker.check_chain(lab.chain("gateway-host"), lab.anchors()).ok
    m = pki.revoke(lab.root, "gateway-host", "keyCompromise")
    when = next(e for e in m["entities"] if e["name"] == "gateway-host")["revocation"]["time"]
    # A fresh checker: the first one cached "good" until nextUpdate, as RFC 5019 allows.
    result = OcspChecker().check_chain(lab.chain("gateway-host"), lab.anchors())
    assert not result.ok and result.status == "revoked"
    assert result.reason == (
        f"Certificate has been revoked, reason: KEY_COMPROMISE, revocation date: {when}, "
        f"authority: CN=Acme-CA-Intermediate OCSP Signer,O=Acme, serial {lab.serial('gateway-host')}"
    )
    assert len(result.checked) == 1  # a revoked leaf ends the check
    pki.revoke(lab.root, "primary-host")
    assert ", reason: UNSPECIFIED, " in OcspChecker().check_chain(lab.chain("primary-host"), lab.anchors()).reason
    pki.reissue(lab.root, "pcclient-host")
    result = OcspChecker().check_chain(old_pcclient, lab.anchors())
    assert result.status == "revoked" and ", reason: SUPERSEDED, " in result.reason
    assert OcspChecker().check_chain(lab.chain("pcclient-host"), lab.anchors()).ok


def test_unknown(ocsp_lab):
    # A certificate the intermediate signed but never recorded.
    root = ocsp_lab.root
    ca_cert = load_certs(ocsp_lab.ca("Acme-CA-Intermediate"))[0]
    ca_key = serialization.load_pem_private_key((root / "ca" / "Acme-CA-Intermediate.key.pem").read_bytes(), None)
    now = utcnow()
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_lab.responder.url))])
    stray = (x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string("CN=stray-host,O=Acme"))
             .issuer_name(ca_cert.subject).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(aia, False).sign(ca_key, hashes.SHA256()))
    result = OcspChecker().check_chain([stray, ca_cert], ocsp_lab.anchors())
    assert not result.ok and result.status == "unknown"
    assert result.reason == "Certificate's revocation status is unknown"
    # Unknown answers are not cached: asking again asks the responder again.
    serial = format(stray.serial_number, "x")
    checker = OcspChecker()
    checker.check_chain([stray, ca_cert], ocsp_lab.anchors())
    checker.check_chain([stray, ca_cert], ocsp_lab.anchors())
    assert ocsp_lab.responder.requests_for(serial) == 3


def test_issuers_from_the_chain_or_the_anchors(ocsp_lab):
    leaf, inter = ocsp_lab.chain("pcclient-host")[:2]
    root = ocsp_lab.anchors()[0]
    # Chain ends at the leaf, the intermediate is a trusted CA: only the leaf is checked.
    result = OcspChecker().check_chain([leaf], [inter, root])
    assert result.ok and [c["subject"] for c in result.checked] == ["CN=pcclient-host,O=Acme"]
    # Chain leaf + intermediate, anchor root: both.
    result = OcspChecker().check_chain([leaf, inter], [root])
    assert result.ok and len(result.checked) == 2
    # No issuer anywhere: the leaf cannot be checked.
    result = OcspChecker().check_chain([leaf], [])
    assert not result.ok and result.status == "unavailable"
    assert "issuer certificate is neither in the chain nor trusted" in result.reason


def test_two_intermediates(tmp_path):
    lab = start_lab(tmp_path, intermediates=2)
    try:
        result = OcspChecker().check_chain(lab.chain("gateway-host"), lab.anchors())
        assert result.ok and [c["subject"] for c in result.checked] == [
            "CN=gateway-host,O=Acme", "CN=Acme-CA-Intermediate-2,O=Acme", "CN=Acme-CA-Intermediate-1,O=Acme"]
    finally:
        lab.responder.stop()


def test_cache_until_next_update(ocsp_lab):
    t0 = utcnow()
    now = [t0]
    checker = OcspChecker(clock=lambda: now[0])
    chain, serial = ocsp_lab.chain("gateway-host"), ocsp_lab.serial("gateway-host")
    before = ocsp_lab.responder.requests_for(serial)
    assert checker.check_chain(chain, ocsp_lab.anchors()).ok
    assert ocsp_lab.responder.requests_for(serial) == before + 1
    now[0] = t0 + dt.timedelta(minutes=1)
    result = checker.check_chain(chain, ocsp_lab.anchors())
    assert result.ok and all(c["cached"] for c in result.checked)
    assert ocsp_lab.responder.requests_for(serial) == before + 1  # no HTTP request
    now[0] = t0 + dt.timedelta(minutes=5, seconds=1)  # past nextUpdate (+300 s)
    result = checker.check_chain(chain, ocsp_lab.anchors())
    assert result.ok and not result.checked[0]["cached"]
    assert ocsp_lab.responder.requests_for(serial) == before + 2
    # max_cache_age caps the cache below nextUpdate.
    capped = OcspChecker(max_cache_age=0)
    capped.check_chain(chain, ocsp_lab.anchors())
    capped.check_chain(chain, ocsp_lab.anchors())
    assert ocsp_lab.responder.requests_for(serial) == before + 4


@pytest.mark.parametrize("shift, what", [(dt.timedelta(minutes=20), "nextUpdate in the past"),
                                         (dt.timedelta(minutes=-7), "thisUpdate in the future")])
def test_response_out_of_its_validity(ocsp_lab, shift, what):
    result = OcspChecker(clock=lambda: utcnow() + shift).check_chain(ocsp_lab.chain("primary-host"), ocsp_lab.anchors())
    assert not result.ok and result.status == "unavailable", what
    assert result.reason.startswith(f"{NETWORK} (OCSP response validity check failed: "
                                    "Response is unreliable: its validity interval is out-of-date")


def test_aia_url_wins_over_the_custom_url(ocsp_lab):
    dead = f"http://127.0.0.1:{free_port()}"
    result = OcspChecker(custom_url=dead).check_chain(ocsp_lab.chain("primary-host"), ocsp_lab.anchors())
    assert result.ok and {c["url"] for c in result.checked} == {ocsp_lab.responder.url}


# -- certificates without an OCSP URL ------------------------------------------------------------
@pytest.fixture(scope="module")
def no_aia_lab(tmp_path_factory):
    """Certificates without AIA, with a responder: reached only through the custom URL."""
    lab = start_lab(tmp_path_factory.mktemp("noaia"), ocsp_url=None)
    yield lab
    lab.responder.stop()


def test_custom_url_for_certificates_without_one(no_aia_lab):
    lab = no_aia_lab
    result = OcspChecker(custom_url=lab.responder.url).check_chain(lab.chain("primary-host"), lab.anchors())
    assert result.ok and result.status == "good" and len(result.checked) == 2
    assert {c["url"] for c in result.checked} == {lab.responder.url}


def test_no_url_at_all_is_skipped(no_aia_lab):
    result = OcspChecker().check_chain(no_aia_lab.chain("primary-host"), no_aia_lab.anchors())
    assert result.ok and result.status == "skipped" and result.reason == NO_URL
    assert [(c["status"], c["url"], c["detail"]) for c in result.checked] == [("skipped", None, NO_URL)] * 2
    assert NO_URL == "no OCSP URL in the certificate and no custom OCSP URL configured"


# -- no usable answer: fail-closed and fail-open ------------------------------------------------
@pytest.mark.parametrize("mode, ok", [("fail-closed", False), ("fail-open", True)])
def test_responder_down(no_aia_lab, mode, ok):
    checker = OcspChecker(custom_url=f"http://127.0.0.1:{free_port()}", on_failure=mode)
    result = checker.check_chain(no_aia_lab.chain("primary-host"), no_aia_lab.anchors())
    assert result.ok is ok and result.status == "unavailable"
    assert result.reason == f"{NETWORK} (Connection refused)"
    # fail-closed stops at the first failure; fail-open goes on with the rest of the chain.
    assert len(result.checked) == (2 if ok else 1)


def test_invalid_failure_mode():
    with pytest.raises(ValueError, match="on_failure must be one of fail-closed, fail-open"):
        OcspChecker(on_failure="fail-soft")


class _Fake(BaseHTTPRequestHandler):
    answer = None  # (request DER) -> (HTTP status, body); None: never answer

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.answer is None:
            time.sleep(3)
            return
        status, data = self.answer(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def fake_responder(answer):
    handler = type("Handler", (_Fake,), {"answer": staticmethod(answer) if answer else None})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _signed(lab_root: Path, ca_name: str, request_der: bytes, *, signer_root: Path | None = None,
            nonce: bytes | None = "echo", status=ocsp.OCSPCertStatus.GOOD) -> bytes:
    """A response as a responder would build it; ``signer_root`` picks another PKI's signer."""
    req = ocsp.load_der_ocsp_request(request_der)
    ca = load_certs(lab_root / "cas" / f"{ca_name}.crt")[0]
    signer_dir = (signer_root or lab_root) / "hosts" / "ocsp-host" / "signers"
    signer = load_certs(signer_dir / f"{ca_name}-ocsp.crt")[0]
    key = serialization.load_pem_private_key((signer_dir / f"{ca_name}-ocsp.key").read_bytes(), None)
    leaf = next(c for c in (load_certs(p)[0] for p in (lab_root / "entities").glob("*/*.crt"))
                if c.serial_number == req.serial_number)
    now = utcnow()
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=leaf, issuer=ca, algorithm=hashes.SHA1(), cert_status=status,
                             this_update=now, next_update=now + dt.timedelta(minutes=5),
                             revocation_time=None, revocation_reason=None)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, signer).certificates([signer]))
    if nonce == "echo":
        nonce = req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _leaf_only(lab) -> tuple[list, list]:
    """The leaf with its intermediate as trust anchor: one OCSP request per check."""
    leaf, inter = lab.chain("primary-host")[:2]
    return [leaf], [inter]


def _check_via(lab, answer, **kwargs):
    with fake_responder(answer) as url:
        start = time.monotonic()
        result = OcspChecker(custom_url=url, **kwargs).check_chain(*_leaf_only(lab))
        return result, time.monotonic() - start


def test_fake_responder_that_behaves_is_believed(no_aia_lab):
    # The fake's own answers verify, so the failures below are each about one thing only.
    result, _ = _check_via(no_aia_lab, lambda req: (200, _signed(no_aia_lab.root, "Acme-CA-Intermediate", req)))
    assert result.ok and result.checked[0]["status"] == "good"


def test_signer_of_another_pki_is_refused(no_aia_lab, foreign_pki):
    foreign = Path(foreign_pki["dir"])
    result, _ = _check_via(no_aia_lab, lambda req: (200, _signed(no_aia_lab.root, "Acme-CA-Intermediate", req,
                                                                 signer_root=foreign)))
    assert not result.ok and result.status == "unavailable"
    assert result.reason.startswith(f"{NETWORK} (OCSP response signature verification failed: "
                                    "Responder's certificate not valid for signing OCSP responses")


def test_tampered_signature_is_refused(no_aia_lab):
    def tampered(req):
        der = _signed(no_aia_lab.root, "Acme-CA-Intermediate", req)
        sig = ocsp.load_der_ocsp_response(der).signature
        return 200, der.replace(sig, sig[:-1] + bytes([sig[-1] ^ 1]))

    result, _ = _check_via(no_aia_lab, tampered)
    assert result.reason == (f"{NETWORK} (OCSP response signature verification failed: "
                             "Error verifying OCSP Response's signature)")


def test_replayed_response_fails_the_nonce_check(no_aia_lab):
    old = []

    def replay(req):
        if not old:
            old.append(_signed(no_aia_lab.root, "Acme-CA-Intermediate", req))
        return 200, old[0]

    with fake_responder(replay) as url:
        checker = OcspChecker(custom_url=url, max_cache_age=0)
        assert checker.check_chain(*_leaf_only(no_aia_lab)).ok
        result = checker.check_chain(*_leaf_only(no_aia_lab))
    assert not result.ok
    assert result.reason == f"{NETWORK} (OCSP response nonce check failed: Nonces don't match)"
    result, _ = _check_via(no_aia_lab, lambda req: (200, _signed(no_aia_lab.root, "Acme-CA-Intermediate", req, nonce=None)))
    assert result.reason == f"{NETWORK} (OCSP response nonce check failed: the response carries no nonce)"


def test_answer_about_another_certificate_is_refused(no_aia_lab):
    other = ocsp.OCSPRequestBuilder().add_certificate(
        no_aia_lab.chain("gateway-host")[0], no_aia_lab.chain("gateway-host")[1], hashes.SHA1()).add_extension(
        x509.OCSPNonce(b"x" * 16), False).build()

    def wrong(req):
        nonce = ocsp.load_der_ocsp_request(req).extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        return 200, _signed(no_aia_lab.root, "Acme-CA-Intermediate",
                            other.public_bytes(serialization.Encoding.DER), nonce=nonce)

    result, _ = _check_via(no_aia_lab, wrong)
    assert result.reason.startswith(f"{NETWORK} (OCSP response certificate ID check failed")


@pytest.mark.parametrize("status, body, detail", [
    (200, os.urandom(200), "OCSP response parsing failed: "),
    (500, b"oops", "HTTP 500 Internal Server Error"),
    (200, ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
        serialization.Encoding.DER), "OCSP response error: UNAUTHORIZED"),
])
def test_garbage_and_errors(no_aia_lab, status, body, detail):
    result, _ = _check_via(no_aia_lab, lambda req: (status, body))
    assert not result.ok and result.status == "unavailable"
    assert result.reason.startswith(f"{NETWORK} ({detail}"), result.reason
    result, _ = _check_via(no_aia_lab, lambda req: (status, body), on_failure="fail-open")
    assert result.ok and result.reason.startswith(f"{NETWORK} ({detail}")


def test_timeout(no_aia_lab):
    result, took = _check_via(no_aia_lab, None, timeout=0.5)
    assert result.reason == f"{NETWORK} (Read timed out)"
    assert took < 2
