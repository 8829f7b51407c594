"""OCSP: the lab's responder judged by openssl, and the gateway's own check of the primary.
The primary's revocation checks (account settings) are scenarios of the catalog (scenarios/)."""
import re

import pytest

from conftest import ROOT, lab, wait_for

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki

PKI = str(ROOT / "build/pki")


def openssl_ocsp(gateway, manifest) -> str:
    """The independent client, from inside the lab network, about the gateway's current certificate."""
    gw = next(e for e in manifest["entities"] if e["name"] == "gateway-host")
    gateway.check_output(
        "mkdir -p /tmp/ocsp && cd /tmp/ocsp && "
        f"openssl pkcs12 -in /pki/gateway-host.pfx -passin pass:{gw['pfx_password']} -nokeys -clcerts -out leaf.pem && "
        f"openssl pkcs12 -in /pki/gateway-host.pfx -passin pass:{gw['pfx_password']} -nokeys -cacerts -out cas.pem && "
        "awk '/BEGIN/{n++} n==1' cas.pem > issuer.pem")
    return gateway.run("cd /tmp/ocsp && openssl ocsp -issuer issuer.pem -cert leaf.pem -url http://ocsp-host:8080 "
                       "-CAfile cas.pem -nonce 2>&1").stdout


def test_responder_answers_good_for_a_fresh_certificate(gateway, manifest):
    out = openssl_ocsp(gateway, manifest)
    assert "Response verify OK" in out, out
    assert re.search(r"^leaf\.pem: good$", out, re.M), out


def test_gateway_checks_the_primary_by_ocsp_when_asked(gateway):
    check = "SAFEQ_GATEWAY_OCSP=on safeq-gateway test-connection"
    assert gateway.run(check).rc == 0
    assert lab("pki", "revoke", "primary-host", "--reason", "cessationOfOperation", "--dir", PKI).returncode == 0
    try:
        out = wait_for(lambda: (lambda r: r if r.rc == 1 else None)(gateway.run(check)), 10)
        assert out, "the gateway accepted a revoked primary certificate"
        assert out.stdout.strip().splitlines()[-1].startswith(
            "failed: the primary's certificate failed the OCSP check: Certificate has been revoked, "
            "reason: CESSATION_OF_OPERATION")
        assert gateway.run("safeq-gateway test-connection").rc == 0  # off by default: no check
    finally:
        assert lab("pki", "reissue", "primary-host", "--dir", PKI).returncode == 0
        up = lab("up", "--no-build")  # the doc's steps again, with the new PFX
        assert up.returncode == 0, up.stderr
