"""Certificate contents as ``openssl x509 -text`` prints them."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import pki
from x509text import extension, is_critical


def _text(pki_tools, path: Path | str) -> str:
    return pki_tools.openssl("x509", "-noout", "-text", "-in", str(path)).stdout.decode()


def _leaf(manifest: dict, name: str) -> Path:
    return Path(manifest["dir"]) / "entities" / name / f"{name}.crt"


EKU = {
    "primary": "TLS Web Server Authentication, TLS Web Client Authentication",
    "gateway": "TLS Web Client Authentication, TLS Web Server Authentication",
    "client": "TLS Web Client Authentication",
}


def test_entity_extensions_by_role(pki_tools, default_pki):
    for ent in default_pki["entities"]:
        text = _text(pki_tools, _leaf(default_pki, ent["name"]))
        assert extension(text, "X509v3 Basic Constraints") == "CA:FALSE"
        assert is_critical(text, "X509v3 Basic Constraints")
        assert extension(text, "X509v3 Key Usage") == "Digital Signature"
        assert is_critical(text, "X509v3 Key Usage")
        assert extension(text, "X509v3 Extended Key Usage") == EKU[ent["role"]]
        assert extension(text, "X509v3 Subject Alternative Name") == f"DNS:{ent['name']}"
        assert extension(text, "Authority Information Access") == "OCSP - URI:http://ocsp-host:8080"
        assert "X509v3 CRL Distribution Points" not in text
        assert "X509v3 Subject Key Identifier" in text and "X509v3 Authority Key Identifier" in text
        assert f"Subject: O = Acme, CN = {ent['name']}" in text
        assert "Issuer: O = Acme, CN = Acme-CA-Intermediate" in text
        assert "Signature Algorithm: ecdsa-with-SHA256" in text


def test_rsa_entities_add_key_encipherment(pki_tools, rsa_pki):
    for ent in rsa_pki["entities"]:
        text = _text(pki_tools, _leaf(rsa_pki, ent["name"]))
        assert extension(text, "X509v3 Key Usage") == "Digital Signature, Key Encipherment"
        assert "Signature Algorithm: sha256WithRSAEncryption" in text
        assert "Public-Key: (2048 bit)" in text


def test_p384_is_signed_with_sha384(pki_tools, p384_pki):
    for path in pki_tools.cert_paths(p384_pki):
        text = _text(pki_tools, path)
        assert "Signature Algorithm: ecdsa-with-SHA384" in text
        assert "NIST CURVE: P-384" in text


def test_root_profile(pki_tools, default_pki):
    text = _text(pki_tools, default_pki["cas"][0]["pem_path"])
    assert extension(text, "X509v3 Basic Constraints") == "CA:TRUE"
    assert is_critical(text, "X509v3 Basic Constraints")
    assert extension(text, "X509v3 Key Usage") == "Certificate Sign, CRL Sign"
    assert is_critical(text, "X509v3 Key Usage")
    assert "X509v3 Subject Key Identifier" in text
    assert "Authority Information Access" not in text
    assert "Issuer: O = Acme, CN = Acme-CA-Root" in text and "Subject: O = Acme, CN = Acme-CA-Root" in text


@pytest.mark.parametrize("depth", [1, 2])
def test_intermediate_path_lengths_count_down_to_zero(pki_tools, pki_by_depth, depth):
    manifest = pki_by_depth[depth]
    inters = manifest["cas"][1:]
    if depth == 1:
        assert [ca["name"] for ca in inters] == ["Acme-CA-Intermediate"]
    else:
        assert [ca["name"] for ca in inters] == ["Acme-CA-Intermediate-1", "Acme-CA-Intermediate-2"]
    for i, ca in enumerate(inters):
        text = _text(pki_tools, ca["pem_path"])
        assert extension(text, "X509v3 Basic Constraints") == f"CA:TRUE, pathlen:{depth - 1 - i}"
        assert extension(text, "X509v3 Key Usage") == "Digital Signature, Certificate Sign, CRL Sign"
        assert extension(text, "Authority Information Access") == "OCSP - URI:http://ocsp-host:8080"
        assert "X509v3 Authority Key Identifier" in text


def test_root_issues_entities_without_intermediates(pki_tools, pki_by_depth):
    manifest = pki_by_depth[0]
    for ent in manifest["entities"]:
        assert "Issuer: O = Acme, CN = Acme-CA-Root" in _text(pki_tools, _leaf(manifest, ent["name"]))


def test_urls_and_extra_sans(pki_tools, fqdn_pki):
    text = _text(pki_tools, _leaf(fqdn_pki, "gw2.acme.example"))
    assert extension(text, "X509v3 Subject Alternative Name") == (
        "DNS:gw2.acme.example, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5, DNS:gw2-alt.acme.example"
    )
    assert extension(text, "Authority Information Access") == (
        "OCSP - URI:http://ocsp.acme.example:8080 "
        "CA Issuers - URI:http://pki.acme.example/ca/Acme-CA-Intermediate-2.cer"
    )
    assert extension(text, "X509v3 CRL Distribution Points") == (
        "Full Name: URI:http://pki.acme.example/crl/Acme-CA-Intermediate-2.crl"
    )
    inter1 = _text(pki_tools, fqdn_pki["cas"][1]["pem_path"])
    assert "CA Issuers - URI:http://pki.acme.example/ca/Acme-CA-Root.cer" in inter1
    assert "URI:http://pki.acme.example/crl/Acme-CA-Root.crl" in inter1


def test_no_ocsp_url(pki_tools, tmp_path):
    manifest = pki.init_pki(tmp_path / "pki", ocsp_url=None, intermediates=1)
    for path in pki_tools.cert_paths(manifest):
        assert "Authority Information Access" not in _text(pki_tools, path)


def test_serials_validity_and_names(pki_tools, default_pki):
    now = dt.datetime.now(dt.timezone.utc)
    seen = set()
    for path in pki_tools.cert_paths(default_pki):
        out = pki_tools.openssl("x509", "-noout", "-serial", "-startdate", "-enddate", "-in", str(path)).stdout.decode()
        serial = int(re.search(r"serial=([0-9A-F]+)", out).group(1), 16)
        assert serial.bit_length() >= 64
        seen.add(serial)
        start = dt.datetime.strptime(re.search(r"notBefore=(.*)", out).group(1), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.timezone.utc)
        end = dt.datetime.strptime(re.search(r"notAfter=(.*)", out).group(1), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.timezone.utc)
        # Backdated five minutes against clock skew.
        assert dt.timedelta(minutes=4) <= now - start <= dt.timedelta(minutes=10)
        days = (end - now).days
        assert days in (3649, 3650) if "Acme-CA" in path.name else days in (396, 397)
    assert len(seen) == len(pki_tools.cert_paths(default_pki))


def test_manifest_serials_match_openssl(pki_tools, default_pki):
    for ca in default_pki["cas"]:
        out = pki_tools.openssl("x509", "-noout", "-serial", "-in", ca["pem_path"]).stdout.decode()
        assert int(out.split("=")[1], 16) == int(ca["serial"], 16)
        assert ca["serial"] == ca["serial"].lower()


def test_entity_never_outlives_its_issuer(pki_tools, tmp_path):
    manifest = pki.init_pki(tmp_path / "pki", days_ca=30, days_entity=397)
    ca_end = manifest["cas"][-1]["not_after"]
    assert all(e["not_after"] <= ca_end for e in manifest["entities"])


def test_custom_names_and_org(pki_tools, tmp_path):
    manifest = pki.init_pki(
        tmp_path / "pki", org="Example Org", root_name="Corp-Root", intermediate_name="Corp-Issuing", intermediates=3
    )
    assert [ca["name"] for ca in manifest["cas"]] == ["Corp-Root", "Corp-Issuing-1", "Corp-Issuing-2", "Corp-Issuing-3"]
    text = _text(pki_tools, _leaf(manifest, "primary-host"))
    assert "Subject: O = Example Org, CN = primary-host" in text
    assert "Issuer: O = Example Org, CN = Corp-Issuing-3" in text
