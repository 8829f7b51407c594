"""issue, revoke and reissue, through the CLI and the Python API."""
from __future__ import annotations

import json
from pathlib import Path

import pki
from pki.database import CADatabase


def _db(root: Path) -> dict:
    return json.loads((root / "ca" / "db.json").read_text())


def _show(pki_cli, root: Path) -> dict:
    result = pki_cli("show", "--json", "--dir", str(root))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_issue_adds_an_entity_with_its_files(pki_cli, pki_tools, fresh_pki):
    result = pki_cli("issue", "gateway-2", "--role", "gateway", "--san", "gw2.lab.example", "--san", "192.0.2.7",
                 "--dir", str(fresh_pki))
    assert result.exit_code == 0, result.stderr
    manifest = _show(pki_cli, fresh_pki)
    ent = pki_tools.entity(manifest, "gateway-2")
    assert ent["role"] == "gateway" and ent["status"] == "good"
    assert ent["sans"] == ["gateway-2", "gw2.lab.example", "192.0.2.7"]
    assert ent["pfx_password"] == "gateway-2-pfx-password"
    host = fresh_pki / "hosts" / "gateway-2"
    assert sorted(p.name for p in host.iterdir()) == ["acme-ca.pfx", "gateway-2.pfx", "unattended-install.conf"]
    conf = (host / "unattended-install.conf").read_text()
    assert 'HCP_DEFAULT_KEYSTORE="/pki/gateway-2.pfx"' in conf
    assert 'HCP_PRIMARY_SERVER_ADDRESS="primary-host:2560"' in conf
    leaf = fresh_pki / "entities" / "gateway-2" / "gateway-2.crt"
    pki_tools.openssl("verify", "-CAfile", manifest["cas"][0]["pem_path"], "-untrusted",
                  str(fresh_pki / "cas" / "chain.pem"), str(leaf))
    assert (fresh_pki / "manifest.json").read_text() == pki_cli("show", "--json", "--dir", str(fresh_pki)).stdout


def test_issue_password_and_extra_primary(pki_tools, fresh_pki):
    manifest = pki.issue(fresh_pki, "client-17", "client", password="s3cret-pass")
    assert pki_tools.entity(manifest, "client-17")["pfx_password"] == "s3cret-pass"
    pki_tools.openssl("pkcs12", "-in", str(fresh_pki / "entities/client-17/client-17.pfx"), "-passin", "pass:s3cret-pass",
                  "-nokeys", "-noout")
    manifest = pki.issue(fresh_pki, "primary-2", "primary")
    assert pki_tools.entity(manifest, "primary-2")["pfx_password"] == "changeit"
    assert (fresh_pki / "hosts" / "primary-2" / "cacert.crt").is_file()


def test_names_are_case_insensitive(pki_tools, fresh_pki):
    manifest = pki.issue(fresh_pki, "Client-Upper", "client")
    assert pki_tools.entity(manifest, "client-upper")["subject"] == "CN=client-upper,O=Acme"


def test_revoke_records_time_and_reason(pki_cli, pki_tools, fresh_pki):
    before = _db(fresh_pki)
    result = pki_cli("revoke", "gateway-host", "--reason", "keyCompromise", "--dir", str(fresh_pki))
    assert result.exit_code == 0, result.stderr
    ent = pki_tools.entity(_show(pki_cli, fresh_pki), "gateway-host")
    assert ent["status"] == "revoked"
    assert ent["revocation"]["reason"] == "keyCompromise"
    assert ent["revocation"]["time"].endswith("Z")
    # Keyed by issuer name + serial, for the OCSP responder.
    rec = _db(fresh_pki)["revocations"]["Acme-CA-Intermediate"][ent["serial"]]
    assert rec["reason"] == "keyCompromise" and rec["time"] == ent["revocation"]["time"]
    # Revoke rewrites the database and manifest only.
    assert (fresh_pki / "manifest.json").read_text() == pki_cli("show", "--json", "--dir", str(fresh_pki)).stdout
    assert before["entities"] == _db(fresh_pki)["entities"]


def test_revoke_default_reason(pki_tools, fresh_pki):
    manifest = pki.revoke(fresh_pki, "pcclient-host")
    assert pki_tools.entity(manifest, "pcclient-host")["revocation"]["reason"] == "unspecified"


def test_reissue_gives_new_serial_and_keeps_history(pki_cli, pki_tools, fresh_pki):
    pki.revoke(fresh_pki, "gateway-host", "keyCompromise")
    old = pki_tools.entity(pki.load_manifest(fresh_pki), "gateway-host")
    old_pfx = (fresh_pki / "hosts" / "gateway-host" / "gateway-host.pfx").read_bytes()
    primary_before = pki_tools.tree_state(fresh_pki / "hosts" / "primary-host")

    result = pki_cli("reissue", "gateway-host", "--dir", str(fresh_pki))
    assert result.exit_code == 0, result.stderr
    new = pki_tools.entity(_show(pki_cli, fresh_pki), "gateway-host")
    assert new["serial"] != old["serial"]
    assert new["status"] == "good" and new["revocation"] is None
    assert new["pfx_password"] == old["pfx_password"] and new["sans"] == old["sans"]

    db = _db(fresh_pki)
    rec = next(e for e in db["entities"] if e["name"] == "gateway-host")
    assert [h["serial"] for h in rec["history"]] == [old["serial"]]
    # The earlier revocation stays as it was.
    assert db["revocations"]["Acme-CA-Intermediate"][old["serial"]]["reason"] == "keyCompromise"

    new_pfx = (fresh_pki / "hosts" / "gateway-host" / "gateway-host.pfx").read_bytes()
    assert new_pfx != old_pfx
    assert new_pfx == (fresh_pki / "entities" / "gateway-host" / "gateway-host.pfx").read_bytes()
    leaf = fresh_pki.parent / "leaf-from-pfx.pem"
    pki_tools.openssl("pkcs12", "-in", str(fresh_pki / "hosts/gateway-host/gateway-host.pfx"), "-nokeys", "-clcerts",
                  "-passin", f"pass:{new['pfx_password']}", "-out", str(leaf))
    serial = pki_tools.openssl("x509", "-noout", "-serial", "-in", str(leaf)).stdout.decode().strip()
    assert int(serial.split("=")[1], 16) == int(new["serial"], 16)
    assert pki_tools.tree_state(fresh_pki / "hosts" / "primary-host") == primary_before


def test_reissue_supersedes_a_good_certificate(pki_tools, fresh_pki):
    old = pki_tools.entity(pki.load_manifest(fresh_pki), "primary-host")["serial"]
    pki.reissue(fresh_pki, "primary-host")
    db = CADatabase.parse((fresh_pki / "ca" / "db.json").read_bytes(), fresh_pki)
    status, rec = db.status("Acme-CA-Intermediate", old)
    assert status == "revoked" and rec["reason"] == "superseded"
    new = pki_tools.entity(pki.load_manifest(fresh_pki), "primary-host")["serial"]
    assert db.status("Acme-CA-Intermediate", new) == ("good", None)
    assert db.status("Acme-CA-Intermediate", "1234")[0] == "unknown"
    # Intermediates are looked up under the root.
    inter_serial = pki.load_manifest(fresh_pki)["cas"][1]["serial"]
    assert db.status("Acme-CA-Root", int(inter_serial, 16))[0] == "good"


def test_api_exists_and_load_manifest(tmp_path, fresh_pki):
    assert pki.exists(fresh_pki)
    assert not pki.exists(tmp_path / "nothing-here")
    assert pki.load_manifest(fresh_pki) == json.loads((fresh_pki / "manifest.json").read_text())
    assert pki.LabPKI(fresh_pki).manifest()["dir"] == str(fresh_pki)
