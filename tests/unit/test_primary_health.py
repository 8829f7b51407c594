"""`safeq-admin health` (safeq_primary.health): the doc's openssl s_client check, without crypto imports."""
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pki
from certkit.certs import fingerprint, load_cert_file
from safeq_primary import health


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    pki.init_pki(root)
    hosts = root / "hosts"
    return (load_cert_file(hosts / "primary-host" / "Acme-CA-Intermediate.cer"),
            load_cert_file(hosts / "primary-host" / "cacert.crt"))


def status(tmp_path, monkeypatch, document):
    path = tmp_path / "status.json"
    path.write_text(json.dumps(document))
    monkeypatch.setattr(health.paths, "STATUS", path)


def serving(cert):
    return {"state": "serving", "serving": {"subject": "CN=primary-host,O=Acme", "issuer": "CN=Acme-CA-Intermediate,O=Acme",
                                            "sha256": fingerprint(cert)}}


def test_the_fingerprint_is_keytools(certs):
    for cert in certs:
        assert health.fingerprint(cert.public_bytes(Encoding.DER)) == fingerprint(cert)


def test_healthy_only_while_the_configured_certificate_is_served(certs, tmp_path, monkeypatch):
    wanted, other = certs
    status(tmp_path, monkeypatch, serving(wanted))
    monkeypatch.setattr(health, "served_certificate", lambda host: wanted.public_bytes(Encoding.DER))
    assert health.health() == (True, "serving CN=primary-host,O=Acme issued by CN=Acme-CA-Intermediate,O=Acme (serving)")
    monkeypatch.setattr(health, "served_certificate", lambda host: other.public_bytes(Encoding.DER))
    assert health.health() == (False, "port 2560 serves CN=Acme-CA-Root,O=Acme, not the configured certificate")
    monkeypatch.setattr(health, "served_certificate", lambda host: None)
    assert health.health() == (False, "nothing answers TLS on port 2560")


def test_the_fallback_certificate_is_unhealthy(tmp_path, monkeypatch):
    status(tmp_path, monkeypatch, {"state": "fallback", "keystore": {"reason": "keystore password was incorrect"}})
    assert health.health() == (False, "serving the fallback localhost certificate: keystore password was incorrect")


def test_the_healthcheck_imports_no_crypto():
    code = "import sys, safeq_primary.health; print(any(m.startswith(('cryptography', 'OpenSSL')) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
