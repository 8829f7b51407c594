"""The output tree: exact paths, host directories and the manifest contract (modes: test_pki_modes)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_tree_is_exactly_the_contract(default_pki):
    root = Path(default_pki["dir"])
    expected = {
        "ca/db.json", "ca/Acme-CA-Root.key.pem", "ca/Acme-CA-Intermediate.key.pem",
        "manifest.json", "truststores/acme-ca.pfx", "cas/chain.pem",
        *(f"cas/{ca}.{ext}" for ca in ("Acme-CA-Root", "Acme-CA-Intermediate") for ext in ("cer", "der", "crt")),
        *(f"entities/{n}/{n}.{ext}" for n in ("primary-host", "gateway-host", "pcclient-host")
          for ext in ("pfx", "crt", "chain.pem", "key.pem")),
        "hosts/primary-host/primary-host.pfx", "hosts/primary-host/cacert.crt",
        "hosts/primary-host/Acme-CA-Root.cer", "hosts/primary-host/Acme-CA-Intermediate.cer",
        "hosts/gateway-host/gateway-host.pfx", "hosts/gateway-host/acme-ca.pfx",
        "hosts/gateway-host/unattended-install.conf",
        "hosts/pcclient-host/store/My/pcclient-host.crt", "hosts/pcclient-host/store/My/pcclient-host.key",
        "hosts/pcclient-host/store/CA/Acme-CA-Intermediate.crt", "hosts/pcclient-host/store/Root/Acme-CA-Root.crt",
        *(f"ca/ocsp-signers/{ca}-ocsp.key.pem" for ca in ("Acme-CA-Root", "Acme-CA-Intermediate")),
        "hosts/ocsp-host/responder.json", "hosts/ocsp-host/status.json",
        *(f"hosts/ocsp-host/{ca}.crt" for ca in ("Acme-CA-Root", "Acme-CA-Intermediate")),
        *(f"hosts/ocsp-host/signers/{ca}-ocsp.{ext}" for ca in ("Acme-CA-Root", "Acme-CA-Intermediate")
          for ext in ("crt", "key")),
    }
    assert _files(root) == expected
    # No staging or backup leftovers next to the tree either.
    assert sorted(p.name for p in root.parent.iterdir()) == ["pki"]


def test_host_files_are_copies_of_the_exports(pki_tools, default_pki):
    root = Path(default_pki["dir"])
    hosts = root / "hosts"
    for name in ("primary-host", "gateway-host"):
        assert (hosts / name / f"{name}.pfx").read_bytes() == (root / "entities" / name / f"{name}.pfx").read_bytes()
    assert (hosts / "gateway-host" / "acme-ca.pfx").read_bytes() == (root / "truststores" / "acme-ca.pfx").read_bytes()
    assert (hosts / "primary-host" / "cacert.crt").read_bytes() == Path(default_pki["cas"][0]["pem_path"]).read_bytes()
    for ca in default_pki["cas"]:
        assert (hosts / "primary-host" / f"{ca['name']}.cer").read_bytes() == Path(ca["der_path"]).read_bytes()
    store = hosts / "pcclient-host" / "store"
    assert (store / "My" / "pcclient-host.crt").read_bytes() == (root / "entities/pcclient-host/pcclient-host.crt").read_bytes()
    # The Personal store's key belongs to its certificate (compare public keys with openssl).
    pub_key = pki_tools.openssl("pkey", "-in", str(store / "My" / "pcclient-host.key"), "-pubout").stdout
    pub_cert = pki_tools.openssl("x509", "-in", str(store / "My" / "pcclient-host.crt"), "-noout", "-pubkey").stdout
    assert pub_key == pub_cert
    assert b"ENCRYPTED" not in (store / "My" / "pcclient-host.key").read_bytes()


def test_client_store_with_two_intermediates(pki_by_depth):
    manifest = pki_by_depth[2]
    store = Path(manifest["dir"]) / "hosts" / "pcclient-host" / "store"
    assert sorted(p.name for p in (store / "CA").iterdir()) == ["Acme-CA-Intermediate-1.crt", "Acme-CA-Intermediate-2.crt"]
    assert [p.name for p in (store / "Root").iterdir()] == ["Acme-CA-Root.crt"]
    primary = Path(manifest["dir"]) / "hosts" / "primary-host"
    assert sorted(p.name for p in primary.iterdir()) == sorted(
        ["primary-host.pfx", "cacert.crt", "Acme-CA-Root.cer", "Acme-CA-Intermediate-1.cer", "Acme-CA-Intermediate-2.cer"]
    )


def test_client_store_without_intermediates(pki_by_depth):
    store = Path(pki_by_depth[0]["dir"]) / "hosts" / "pcclient-host" / "store"
    assert list((store / "CA").iterdir()) == []
    assert [p.name for p in (store / "Root").iterdir()] == ["Acme-CA-Root.crt"]


def test_unattended_install_conf(default_pki):
    conf = Path(default_pki["dir"]) / "hosts" / "gateway-host" / "unattended-install.conf"
    lines = [line for line in conf.read_text().splitlines() if not line.startswith("#")]
    assert lines == [
        'HCP_DEFAULT_KEYSTORE="/pki/gateway-host.pfx"',
        'HCP_DEFAULT_KEYSTORE_PASSWORD="gateway-pfx-password"',
        'HCP_DEFAULT_TRUSTSTORE="/pki/acme-ca.pfx"',
        'HCP_DEFAULT_TRUSTSTORE_PASSWORD="acme-ca-pfx-password"',
        'HCP_PRIMARY_SERVER_ADDRESS="primary-host:2560"',
    ]


def test_unattended_install_conf_is_valid_shell(pki_tools, default_pki):
    conf = Path(default_pki["dir"]) / "hosts" / "gateway-host" / "unattended-install.conf"
    proc = pki_tools.run("sh", "-c", f'. "{conf}" && printf "%s|%s" "$HCP_DEFAULT_KEYSTORE_PASSWORD" "$HCP_PRIMARY_SERVER_ADDRESS"')
    assert proc.stdout == b"gateway-pfx-password|primary-host:2560"


MANIFEST_KEYS = {"dir", "key_type", "cas", "issuing", "issuing_chain", "retired", "entities", "truststores", "ocsp"}
CA_KEYS = {"name", "subject", "der_path", "pem_path", "not_after", "serial"}
ENTITY_KEYS = {
    "name", "role", "subject", "issuer", "serial", "not_before", "not_after", "status", "revocation",
    "pfx_path", "pfx_password", "key_type", "sans",
}
TRUSTSTORE_KEYS = {"path", "password", "entries"}


def test_manifest_schema(default_pki):
    m = default_pki
    assert set(m) == MANIFEST_KEYS
    assert m["key_type"] == "ecdsa-p256"
    assert m["issuing"] == "Acme-CA-Intermediate" and m["retired"] == []
    assert m["issuing_chain"] == ["Acme-CA-Root", "Acme-CA-Intermediate"]
    assert os.path.isabs(m["dir"])
    for ca in m["cas"]:
        assert set(ca) == CA_KEYS
        assert os.path.isabs(ca["der_path"]) and os.path.isfile(ca["der_path"])
        assert os.path.isabs(ca["pem_path"]) and os.path.isfile(ca["pem_path"])
        assert ca["not_after"].endswith("Z") and int(ca["serial"], 16) > 0
    assert [(e["name"], e["role"]) for e in m["entities"]] == [
        ("primary-host", "primary"), ("gateway-host", "gateway"), ("pcclient-host", "client")
    ]
    for e in m["entities"]:
        assert set(e) == ENTITY_KEYS
        assert e["status"] == "good" and e["revocation"] is None
        assert e["subject"] == f"CN={e['name']},O=Acme"
        assert e["issuer"] == "CN=Acme-CA-Intermediate,O=Acme"
        assert e["sans"] == [e["name"]]
        assert e["key_type"] == "ecdsa-p256"
        assert os.path.isfile(e["pfx_path"])
        assert e["serial"] == e["serial"].lower()
        assert e["not_before"] < e["not_after"]
    (ts,) = m["truststores"]
    assert set(ts) == TRUSTSTORE_KEYS
    assert ts["entries"] == ["acme-ca"] and os.path.isfile(ts["path"])
    oc = m["ocsp"]
    assert set(oc) == {"url", "host_dir", "signers"}
    assert oc["url"] == "http://ocsp-host:8080"
    assert oc["host_dir"] == str(Path(m["dir"]) / "hosts" / "ocsp-host") and os.path.isdir(oc["host_dir"])
    assert [(s["issuer"], s["subject"]) for s in oc["signers"]] == [
        ("CN=Acme-CA-Root,O=Acme", "CN=Acme-CA-Root OCSP Signer,O=Acme"),
        ("CN=Acme-CA-Intermediate,O=Acme", "CN=Acme-CA-Intermediate OCSP Signer,O=Acme"),
    ]
    for s in oc["signers"]:
        assert set(s) == {"issuer", "subject", "serial", "not_after"}
        assert s["not_after"].endswith("Z") and s["serial"] == s["serial"].lower()


def test_manifest_json_equals_show_json(pki_cli, default_pki):
    root = Path(default_pki["dir"])
    result = pki_cli("show", "--json", "--dir", str(root))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (root / "manifest.json").read_text()
    assert json.loads(result.stdout) == default_pki


def test_show_json_with_relative_dir(pki_cli, default_pki, monkeypatch):
    root = Path(default_pki["dir"])
    monkeypatch.chdir(root.parent)
    result = pki_cli("show", "--json", "--dir", "pki")
    assert json.loads(result.stdout)["dir"] == str(root)


def test_show_table(pki_cli, default_pki):
    result = pki_cli("show", "--dir", default_pki["dir"])
    assert result.exit_code == 0
    for text in ("Acme-CA-Root", "primary-host", "gateway-pfx-password", "acme-ca-pfx-password", "good"):
        assert text in result.stdout


@pytest.mark.parametrize("depth", [0, 2])
def test_default_dir_is_build_pki(pki_cli, tmp_path, monkeypatch, depth):
    monkeypatch.chdir(tmp_path)
    result = pki_cli("init", "--intermediates", str(depth))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "build" / "pki" / "ca" / "db.json").is_file()
    assert json.loads((tmp_path / "build" / "pki" / "manifest.json").read_text())["dir"] == str(tmp_path / "build" / "pki")
