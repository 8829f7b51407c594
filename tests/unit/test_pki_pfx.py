"""PFX keystores and the Java truststore, read by openssl and by Java's keytool."""
from __future__ import annotations

import re
from pathlib import Path

import pytest


def _pkcs12_info(pki_tools, pfx: str, password: str, check: bool = True):
    args = ["pkcs12", "-info", "-in", pfx, "-passin", f"pass:{password}", "-nodes"]
    proc = pki_tools.openssl(*args, check=False)
    if proc.returncode != 0 and b"unsupported" in proc.stderr:
        # OpenSSL 3 keeps some old PBE algorithms in its legacy provider.
        proc = pki_tools.openssl(*args, "-legacy", check=False)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def _subjects(text: str) -> list[str]:
    return re.findall(r"^subject=(.*)$", text, re.M)


@pytest.mark.parametrize("variant", ["default_pki", "legacy_pki", "p384_pki", "rsa_pki"])
def test_openssl_opens_every_pfx_with_full_chain(pki_tools, request, variant):
    manifest = request.getfixturevalue(variant)
    ca_subjects = [f"O = Acme, CN = {ca['name']}" for ca in reversed(manifest["cas"])]
    for ent in manifest["entities"]:
        out = _pkcs12_info(pki_tools, ent["pfx_path"], ent["pfx_password"]).stdout.decode()
        assert out.count("-----BEGIN CERTIFICATE-----") == 1 + len(manifest["cas"])
        assert out.count("-----BEGIN PRIVATE KEY-----") == 1
        assert _subjects(out) == [f"O = Acme, CN = {ent['name']}", *ca_subjects]
        assert f"friendlyName: {ent['name']}" in out


def test_default_pfx_uses_pbes2_aes256_and_sha256_mac(pki_tools, default_pki):
    ent = default_pki["entities"][0]
    proc = _pkcs12_info(pki_tools, ent["pfx_path"], ent["pfx_password"])
    info = proc.stderr.decode()  # openssl writes the algorithm details to stderr
    assert "MAC: sha256" in info
    assert "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC" in info


def test_default_pfx_encryption_has_the_iterations_keytool_writes(pki_tools, default_pki, tmp_path):
    made = tmp_path / "keytool.p12"
    pki_tools.keytool("-genkeypair", "-keyalg", "EC", "-alias", "k", "-dname", "CN=k", "-storetype", "PKCS12",
                      "-keystore", str(made), "-storepass", "changeit")

    def iterations(pfx: str, password: str) -> list[str]:
        return re.findall(r"PBES2, PBKDF2, AES-256-CBC, Iteration (\d+)", _pkcs12_info(pki_tools, pfx, password)
                          .stderr.decode())

    ent = default_pki["entities"][0]
    expected = iterations(str(made), "changeit")
    assert expected and set(expected) == {expected[0]}
    assert iterations(ent["pfx_path"], ent["pfx_password"]) == [expected[0]] * 2  # the certificates' bag, the key's


def test_legacy_pfx_uses_3des_and_sha1_mac(pki_tools, legacy_pki):
    ent = legacy_pki["entities"][0]
    info = _pkcs12_info(pki_tools, ent["pfx_path"], ent["pfx_password"]).stderr.decode()
    assert "MAC: sha1" in info
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info


@pytest.mark.parametrize("variant", ["default_pki", "legacy_pki"])
def test_wrong_password_is_refused(pki_tools, request, variant):
    ent = request.getfixturevalue(variant)["entities"][0]
    proc = _pkcs12_info(pki_tools, ent["pfx_path"], "not-the-password", check=False)
    assert proc.returncode != 0
    assert b"invalid password" in proc.stderr


def test_doc_passwords_by_default(default_pki):
    passwords = {e["name"]: e["pfx_password"] for e in default_pki["entities"]}
    assert passwords == {
        "primary-host": "changeit",
        "gateway-host": "gateway-pfx-password",
        "pcclient-host": "pcclient-pfx-password",
    }
    assert default_pki["truststores"][0]["password"] == "acme-ca-pfx-password"


def _keytool_list(pki_tools, store: str, password: str) -> str:
    proc = pki_tools.keytool("-list", "-storetype", "PKCS12", "-keystore", store, "-storepass", password)
    return proc.stdout.decode()


@pytest.mark.parametrize("variant", ["default_pki", "legacy_pki"])
def test_java_sees_one_trusted_cert_entry(pki_tools, request, variant):
    ts = request.getfixturevalue(variant)["truststores"][0]
    out = _keytool_list(pki_tools, ts["path"], ts["password"])
    assert "Your keystore contains 1 entry" in out
    entries = re.findall(r"^([^,\n]+), [^,]+, [^,]+, (\w+),", out, re.M)
    assert [(alias, kind) for alias, kind in entries] == [("acme-ca", "trustedCertEntry")]


@pytest.mark.parametrize("variant", ["default_pki", "legacy_pki"])
def test_java_opens_entity_pfx_as_private_key_entry(pki_tools, request, variant):
    manifest = request.getfixturevalue(variant)
    for ent in manifest["entities"]:
        out = pki_tools.keytool(
            "-list", "-v", "-storetype", "PKCS12", "-keystore", ent["pfx_path"], "-storepass", ent["pfx_password"]
        ).stdout.decode()
        assert f"Alias name: {ent['name']}" in out
        assert "Entry type: PrivateKeyEntry" in out
        assert f"Certificate chain length: {1 + len(manifest['cas'])}" in out


def test_openssl_nokeys_truststore_is_empty_for_java(pki_tools, default_pki, tmp_path):
    # Why serialize_java_truststore: a cert-only PKCS12 from openssl lacks
    # Oracle's trusted-key-usage attribute, so Java sees no trust anchors.
    store = tmp_path / "openssl-truststore.pfx"
    pki_tools.openssl(
        "pkcs12", "-export", "-nokeys", "-in", default_pki["cas"][0]["pem_path"], "-out", str(store),
        "-passout", "pass:acme-ca-pfx-password",
    )
    out = _keytool_list(pki_tools, str(store), "acme-ca-pfx-password")
    assert "Your keystore contains 0 entries" in out


def test_keytool_import_matches_our_truststore(pki_tools, default_pki, tmp_path):
    # The page's own recipe (keytool -importcert) gives the same entry as ours.
    store = tmp_path / "keytool-made.pfx"
    pki_tools.keytool(
        "-importcert", "-noprompt", "-file", default_pki["cas"][0]["der_path"], "-alias", "acme-ca",
        "-storetype", "PKCS12", "-keystore", str(store), "-storepass", "acme-ca-pfx-password",
    )
    theirs = _keytool_list(pki_tools, str(store), "acme-ca-pfx-password")
    ts = default_pki["truststores"][0]
    ours = _keytool_list(pki_tools, ts["path"], ts["password"])
    fingerprint = re.compile(r"\(SHA-256\): ([0-9A-F:]+)")
    assert fingerprint.search(theirs).group(1) == fingerprint.search(ours).group(1)


def test_random_passwords(pki_tools, tmp_path):
    import pki

    manifest = pki.init_pki(tmp_path / "pki", random_passwords=True)
    secrets = [e["pfx_password"] for e in manifest["entities"]] + [manifest["truststores"][0]["password"]]
    assert len(set(secrets)) == len(secrets)
    assert all(len(s) == 24 and s not in ("changeit", "gateway-pfx-password") for s in secrets)
    for ent in manifest["entities"]:
        _pkcs12_info(pki_tools, ent["pfx_path"], ent["pfx_password"])
    later = pki.issue(manifest["dir"], "client-17", "client")
    assert len(pki_tools.entity(later, "client-17")["pfx_password"]) == 24
    conf = (Path(manifest["dir"]) / "hosts" / "gateway-host" / "unattended-install.conf").read_text()
    assert f'HCP_DEFAULT_TRUSTSTORE_PASSWORD="{secrets[-1]}"' in conf
