"""The OCSP responder, judged by an independent client (``openssl ocsp``) and pkilint."""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

import pki
from test_ocsp_support import RESPONDER, free_port, start_lab

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not on PATH")


def query(lab, name: str, *extra: str, issuer: str = "Acme-CA-Intermediate", url: str | None = None,
          digest: str = "-sha1") -> str:
    """``openssl ocsp`` for entity ``name``; stdout and stderr together (the verdict is split across them)."""
    args = [OPENSSL, "ocsp", "-issuer", str(lab.ca(issuer)), digest, "-cert", str(lab.leaf(name)),
            "-url", url or lab.responder.url, "-CAfile", str(lab.cafile()), *extra]
    proc = subprocess.run(args, capture_output=True, timeout=30)
    return (proc.stdout + proc.stderr).decode()


def post(url: str, body: bytes, content_type: str = "application/ocsp-request"):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, dict(resp.headers), resp.read()


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, dict(resp.headers), resp.read()


def request_der(lab, name: str, issuer: str = "Acme-CA-Intermediate", nonce: bool = False) -> bytes:
    cert = x509.load_pem_x509_certificate(lab.leaf(name).read_bytes())
    ca = x509.load_pem_x509_certificate(lab.ca(issuer).read_bytes())
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def status_of(body: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(body).response_status


def lint(pki_tools, path: Path) -> None:
    exe = shutil.which("lint_ocsp_response") or shutil.which("lint_ocsp_response", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("pkilint's lint_ocsp_response command is not on PATH")
    proc = pki_tools.run(exe, "lint", "-s", "ERROR", str(path), check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == b"", proc.stdout.decode() + proc.stderr.decode()


# -- the doc's scenario: good, then revoked without a restart --------------------------------
def test_good_then_revoked_within_two_seconds(pki_tools, fresh_ocsp_lab):
    lab = fresh_ocsp_lab
    good_der, revoked_der = lab.root.parent / "good.der", lab.root.parent / "revoked.der"
    out = query(lab, "gateway-host", "-respout", str(good_der))
    assert "Response verify OK" in out
    assert f"{lab.leaf('gateway-host')}: good" in out

    pid = lab.responder.proc.pid
    pki.revoke(lab.root, "gateway-host", "keyCompromise")
    revoked_at = time.monotonic()
    while True:
        out = query(lab, "gateway-host", "-resp_text", "-respout", str(revoked_der))
        if ": revoked" in out or time.monotonic() - revoked_at > 2:
            break
        time.sleep(0.1)
    assert time.monotonic() - revoked_at <= 2.5, out
    assert "Response verify OK" in out
    assert f"{lab.leaf('gateway-host')}: revoked" in out
    assert "Reason: keyCompromise" in out
    assert "Revocation Time:" in out
    assert lab.responder.proc.poll() is None and lab.responder.proc.pid == pid
    # Other certificates stay good.
    assert f"{lab.leaf('primary-host')}: good" in query(lab, "primary-host")
    # pkilint's RFC 6960 linter finds nothing wrong with either answer.
    lint(pki_tools, good_der)
    lint(pki_tools, revoked_der)


def test_revocation_without_reason_and_superseded(fresh_ocsp_lab):
    lab = fresh_ocsp_lab
    old = lab.root.parent / "pcclient-old.crt"
    shutil.copy(lab.leaf("pcclient-host"), old)
    pki.revoke(lab.root, "primary-host")  # reason unspecified: RFC 5280 leaves it out
    out = query(lab, "primary-host")
    assert f"{lab.leaf('primary-host')}: revoked" in out and "Reason:" not in out
    pki.reissue(lab.root, "pcclient-host")
    out = subprocess.run([OPENSSL, "ocsp", "-issuer", str(lab.ca("Acme-CA-Intermediate")), "-cert", str(old),
                          "-url", lab.responder.url, "-CAfile", str(lab.cafile())], capture_output=True).stdout.decode()
    assert "revoked" in out and "Reason: superseded" in out
    assert f"{lab.leaf('pcclient-host')}: good" in query(lab, "pcclient-host")


# -- protocol details -----------------------------------------------------------------------
def test_nonce_is_echoed(ocsp_lab):
    req, resp = ocsp_lab.root.parent / "nonce-req.der", ocsp_lab.root.parent / "nonce-resp.der"
    out = query(ocsp_lab, "primary-host", "-nonce", "-reqout", str(req), "-respout", str(resp))
    assert "Response verify OK" in out and "WARNING" not in out and ": good" in out
    sent = ocsp.load_der_ocsp_request(req.read_bytes()).extensions.get_extension_for_class(x509.OCSPNonce).value
    got = ocsp.load_der_ocsp_response(resp.read_bytes()).extensions.get_extension_for_class(x509.OCSPNonce).value
    assert sent == got and len(sent.nonce) == 16
    # Without -nonce in the request there is none in the response.
    query(ocsp_lab, "primary-host", "-no_nonce", "-respout", str(resp))
    assert len(ocsp.load_der_ocsp_response(resp.read_bytes()).extensions) == 0


def test_responder_id_signer_and_times(ocsp_lab):
    resp = ocsp.load_der_ocsp_response(post(ocsp_lab.responder.url, request_der(ocsp_lab, "primary-host"))[2])
    signer = x509.load_pem_x509_certificate((ocsp_lab.ocsp_dir / "signers" / "Acme-CA-Intermediate-ocsp.crt").read_bytes())
    assert resp.certificates == [signer]
    assert resp.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(signer.public_key()).digest
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    now = time.time()
    assert now - 120 < resp.this_update_utc.timestamp() <= now
    assert abs(resp.next_update_utc.timestamp() - (now + 300)) < 30


def test_sha256_cert_id(ocsp_lab):
    out = query(ocsp_lab, "primary-host", "-resp_text", digest="-sha256")
    assert "Response verify OK" in out and "Hash Algorithm: sha256" in out and ": good" in out


def test_unknown_serial(ocsp_lab):
    proc = subprocess.run([OPENSSL, "ocsp", "-issuer", str(ocsp_lab.ca("Acme-CA-Intermediate")), "-serial", "0x1234abcd",
                           "-url", ocsp_lab.responder.url, "-CAfile", str(ocsp_lab.cafile())], capture_output=True)
    out = (proc.stdout + proc.stderr).decode()
    assert "Response verify OK" in out and "0x1234abcd: unknown" in out


def test_intermediate_is_answered_under_the_root(ocsp_lab):
    proc = subprocess.run([OPENSSL, "ocsp", "-issuer", str(ocsp_lab.ca("Acme-CA-Root")), "-cert",
                           str(ocsp_lab.ca("Acme-CA-Intermediate")), "-url", ocsp_lab.responder.url,
                           "-CAfile", str(ocsp_lab.cafile()), "-resp_text"], capture_output=True)
    out = (proc.stdout + proc.stderr).decode()
    assert "Response verify OK" in out and "Acme-CA-Intermediate.crt: good" in out
    assert "CN=Acme-CA-Root OCSP Signer" in out.replace("O=Acme, CN=", "CN=")


def test_get_with_and_without_prefix(ocsp_lab):
    der = request_der(ocsp_lab, "primary-host")
    b64 = base64.b64encode(der).decode()
    for path in ("/" + urllib.parse.quote(b64, safe=""), "/ocsp/" + urllib.parse.quote(b64, safe=""), "/a/b/" + b64):
        status, headers, body = get(ocsp_lab.responder.url + path)
        assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
        resp = ocsp.load_der_ocsp_response(body)
        assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert resp.serial_number == int(ocsp_lab.serial("primary-host"), 16)
        # RFC 5019 6.2 caching headers.
        assert headers["Cache-Control"].startswith("max-age=") and "public" in headers["Cache-Control"]
        max_age = int(headers["Cache-Control"].split(",")[0].split("=")[1])
        assert 240 < max_age <= 300
        assert headers["Last-Modified"].endswith("GMT") and headers["Expires"].endswith("GMT")


@pytest.mark.parametrize("key_type, depth", [("rsa-2048", 1), ("ecdsa-p384", 0), ("ecdsa-p256", 2)])
def test_key_types_and_depths(tmp_path, key_type, depth):
    lab = start_lab(tmp_path, key_type=key_type, intermediates=depth)
    try:
        issuer = lab.manifest["cas"][-1]["name"]
        out = query(lab, "pcclient-host", "-resp_text", issuer=issuer)
        assert "Response verify OK" in out and ": good" in out
        assert ("sha256WithRSAEncryption" if key_type.startswith("rsa") else
                "ecdsa-with-SHA384" if key_type == "ecdsa-p384" else "ecdsa-with-SHA256") in out
    finally:
        lab.responder.stop()


# -- bad input: one clear answer each, and the responder keeps serving -----------------------
def _raw_post(port: int, headers: str, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(headers.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_bad_input(ocsp_lab, foreign_pki):
    url, port = ocsp_lab.responder.url, ocsp_lab.responder.port
    malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    # Garbage, an empty body, the wrong content type.
    assert status_of(post(url, os.urandom(300))[2]) == malformed
    assert status_of(post(url, b"")[2]) == malformed
    assert status_of(post(url, request_der(ocsp_lab, "primary-host"), "text/plain")[2]) == malformed
    # Two certificates in one request (RFC 5019 profile: one per request).
    out = subprocess.run([OPENSSL, "ocsp", "-issuer", str(ocsp_lab.ca("Acme-CA-Intermediate")),
                          "-cert", str(ocsp_lab.leaf("primary-host")), "-cert", str(ocsp_lab.leaf("gateway-host")),
                          "-url", url], capture_output=True).stdout.decode()
    assert "Responder Error: malformedrequest" in out
    # A CA this responder does not serve.
    foreign = Path(foreign_pki["dir"])
    out = subprocess.run([OPENSSL, "ocsp", "-issuer", str(foreign / "cas" / "Acme-CA-Intermediate.crt"),
                          "-cert", str(foreign / "entities/gateway-host/gateway-host.crt"), "-url", url],
                         capture_output=True).stdout.decode()
    assert "Responder Error: unauthorized" in out
    # Malformed GET paths.
    for path in ("/not-base64!!", "/ocsp/" + base64.b64encode(b"hello world").decode(), "/%ZZ"):
        status, _, body = get(url + path)
        assert status == 200 and status_of(body) == malformed, path
    # 5 MB: refused with 413 after the headers, the body is not read.
    reply = _raw_post(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                            f"Content-Length: {5 * 1024 * 1024}\r\n\r\n", b"\0" * 65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    reply = _raw_post(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                            f"Content-Length: {5 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n", b"")
    assert reply.startswith(b"HTTP/1.1 413"), reply
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url, method="PUT", data=b"x"), timeout=5)
    assert err.value.code == 501
    # Still serving, and every request was logged with its answer.
    out = query(ocsp_lab, "primary-host")
    assert "Response verify OK" in out and ": good" in out
    assert ocsp_lab.responder.proc.poll() is None
    log = ocsp_lab.responder.text()
    assert log.count("malformedRequest") >= 7
    assert "unauthorized (issuer not served here)" in log and "HTTP 413" in log


def test_broken_status_file_keeps_the_last_good_copy(fresh_ocsp_lab):
    lab = fresh_ocsp_lab
    status = lab.ocsp_dir / "status.json"
    good = status.read_bytes()
    tmp = lab.ocsp_dir / ".status.json.tmp"
    tmp.write_text("{ not json")
    os.replace(tmp, status)
    out = query(lab, "primary-host")
    assert ": good" in out
    assert "status.json is unusable" in lab.responder.text()
    tmp.write_bytes(good)
    os.replace(tmp, status)
    assert ": good" in query(lab, "primary-host")


# -- health and stop ------------------------------------------------------------------------------
def _health(lab) -> subprocess.CompletedProcess:
    env = {**os.environ, "OCSP_DIR": str(lab.ocsp_dir), "OCSP_PORT": str(lab.responder.port)}
    return subprocess.run([os.environ.get("OCSP_TEST_PYTHON", sys.executable), str(RESPONDER), "health"],
                          capture_output=True, env=env, timeout=30)


def test_health_and_sigterm(fresh_ocsp_lab):
    lab = fresh_ocsp_lab
    assert get(lab.responder.url + "/health")[2] == b"ok\n"
    proc = _health(lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.decode().startswith("ok: answering for Acme-CA-Root, Acme-CA-Intermediate")
    took = lab.responder.stop()
    assert took < 2 and lab.responder.proc.returncode == 0
    assert "Stopping" in lab.responder.text()
    proc = _health(lab)
    assert proc.returncode == 1 and proc.stdout.decode().startswith("unhealthy: Acme-CA-Root: unavailable")


@pytest.mark.parametrize("damage", ["empty folder", "no status.json"])
def test_unusable_folder_is_reported(tmp_path, default_pki, damage):
    folder = tmp_path / "ocsp-host"
    if damage == "empty folder":
        folder.mkdir()
        why = f"error: cannot read {folder / 'responder.json'}"
    else:
        shutil.copytree(Path(default_pki["dir"]) / "hosts" / "ocsp-host", folder)
        (folder / "status.json").unlink()
        why = f"error: cannot read {folder / 'status.json'}"
    port = free_port()
    env = {**os.environ, "OCSP_DIR": str(folder), "OCSP_PORT": str(port), "OCSP_BIND": "127.0.0.1"}
    proc = subprocess.Popen([os.environ.get("OCSP_TEST_PYTHON", sys.executable), str(RESPONDER), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answer = get(f"http://127.0.0.1:{port}/health")
                pytest.fail(f"/health answered {answer} for a folder it cannot serve")
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                assert exc.read().decode().startswith(why)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        # It keeps running and says so to OCSP clients too: internalError, not a guess.
        root = Path(default_pki["dir"])
        cert = x509.load_pem_x509_certificate((root / "entities/gateway-host/gateway-host.crt").read_bytes())
        ca = x509.load_pem_x509_certificate((root / "cas/Acme-CA-Intermediate.crt").read_bytes())
        der = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
        assert status_of(post(f"http://127.0.0.1:{port}", der)[2]) == ocsp.OCSPResponseStatus.INTERNAL_ERROR
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
