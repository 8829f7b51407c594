"""A CA rotation in the PKI: a second intermediate under the root, hosts moved to it, the old one retired.

Judged with openssl (verify, pkcs12, ocsp against the lab's responder), not with the PKI's own code."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import pki
from conftest import keytool, openssl, tree_state
from test_ocsp_support import Responder, start_lab

OLD, NEW, ROOT = "Acme-CA-Intermediate", "Acme-CA-Intermediate-2", "Acme-CA-Root"


@pytest.fixture
def rotated(tmp_path) -> Path:
    """A new intermediate beside the old one; it issues from now on; the gateway moved to it."""
    root = Path(pki.init_pki(tmp_path / "pki")["dir"])
    pki.add_ca(root, NEW)
    pki.set_issuing(root, NEW)
    pki.reissue(root, "gateway-host")
    return root


def pfx_certs(pfx: Path, password: str) -> str:
    return openssl("pkcs12", "-in", str(pfx), "-passin", f"pass:{password}", "-nokeys").stdout.decode()


def test_the_new_intermediate_is_signed_by_the_root_and_may_only_issue_entities(rotated):
    cas = rotated / "cas"
    assert openssl("verify", "-CAfile", str(cas / f"{ROOT}.crt"), str(cas / f"{NEW}.crt")).returncode == 0
    text = openssl("x509", "-in", str(cas / f"{NEW}.crt"), "-noout", "-text").stdout.decode()
    assert "CA:TRUE, pathlen:0" in text and f"Issuer: O = Acme, CN = {ROOT}" in text
    assert (rotated / "ca" / f"{NEW}.key.pem").stat().st_mode & 0o777 == 0o600


def test_a_reissued_host_chains_through_the_new_intermediate_and_the_others_stay(rotated):
    manifest = pki.load_manifest(rotated)
    by_name = {e["name"]: e for e in manifest["entities"]}
    assert by_name["gateway-host"]["issuer"] == f"CN={NEW},O=Acme"
    assert by_name["pcclient-host"]["issuer"] == f"CN={OLD},O=Acme"
    gateway = by_name["gateway-host"]
    bundle = pfx_certs(Path(gateway["pfx_path"]), gateway["pfx_password"])
    assert f"subject=O = Acme, CN = {NEW}\n" in bundle and f"CN = {OLD}\n" not in bundle
    leaf = rotated / "entities" / "gateway-host" / "gateway-host.crt"
    ok = openssl("verify", "-CAfile", str(rotated / "cas" / f"{ROOT}.crt"),
                 "-untrusted", str(rotated / "cas" / f"{NEW}.crt"), str(leaf), check=False)
    assert ok.returncode == 0, ok.stderr
    old_path = openssl("verify", "-CAfile", str(rotated / "cas" / f"{ROOT}.crt"),
                       "-untrusted", str(rotated / "cas" / f"{OLD}.crt"), str(leaf), check=False)
    assert old_path.returncode != 0 and b"unable to get local issuer certificate" in old_path.stdout + old_path.stderr
    # The client's store holds the new intermediate once moved.
    pki.reissue(rotated, "pcclient-host")
    assert sorted(p.name for p in (rotated / "hosts" / "pcclient-host" / "store" / "CA").iterdir()) == [f"{NEW}.crt"]


def test_the_primary_folder_offers_both_intermediates_until_the_old_one_is_retired(rotated):
    folder = rotated / "hosts" / "primary-host"
    assert sorted(p.name for p in folder.glob("*.cer")) == [f"{NEW}.cer", f"{OLD}.cer", f"{ROOT}.cer"]
    with pytest.raises(pki.PKIError, match=rf"CA {NEW} signs entities now or is above the CA that does"):
        pki.retire(rotated, NEW)
    with pytest.raises(pki.PKIError, match=rf"CA {ROOT} signs entities now"):
        pki.retire(rotated, ROOT)
    manifest = pki.retire(rotated, OLD)
    assert sorted(p.name for p in folder.glob("*.cer")) == [f"{NEW}.cer", f"{ROOT}.cer"]
    assert manifest["retired"] == [OLD] and manifest["issuing"] == NEW
    with pytest.raises(pki.PKIError, match=rf"CA {OLD} is retired"):
        pki.set_issuing(rotated, OLD)
    # What the old intermediate issued is still checked when the PKI opens: the history keeps its issuer.
    pki.reissue(rotated, "gateway-host")
    assert len(pki.load_manifest(rotated)["entities"]) == 3


@pytest.mark.parametrize("name, under, words", [
    (OLD, None, f"a CA named '{OLD}' exists already"),
    (OLD.lower(), None, r"exists already \(names are file names\)"),
    ("bad name", None, "invalid CA name 'bad name'"),
    ("Other", "nobody", "no CA named 'nobody' for --under"),
    ("Other", OLD, f"CA {OLD} may not sign CAs"),
])
def test_a_ca_that_cannot_be_added_is_one_error_and_nothing_changes(tmp_path, name, under, words):
    root = Path(pki.init_pki(tmp_path / "pki")["dir"])
    before = tree_state(root)
    with pytest.raises(pki.PKIError, match=words):
        pki.add_ca(root, name, under)
    assert tree_state(root) == before


def test_the_responder_answers_for_the_new_intermediate_after_its_restart(tmp_path):
    lab = start_lab(tmp_path)
    try:
        pki.add_ca(lab.root, NEW)
        pki.set_issuing(lab.root, NEW)
        pki.reissue(lab.root, "gateway-host")
        config = json.loads((lab.root / "hosts" / "ocsp-host" / "responder.json").read_text())
        assert [i["name"] for i in config["issuers"]] == [ROOT, OLD, NEW]
    finally:
        lab.responder.stop()
    port = lab.responder.port
    responder = Responder(lab.root / "hosts" / "ocsp-host", port, tmp_path / "responder-2.log")
    try:
        leaf = str(lab.root / "entities" / "gateway-host" / "gateway-host.crt")
        new = subprocess.run(["openssl", "ocsp", "-issuer", str(lab.ca(NEW)), "-cert", leaf, "-url", responder.url,
                              "-CAfile", str(lab.cafile())], capture_output=True, timeout=30)
        assert b": good" in new.stdout and b"Response verify OK" in new.stdout + new.stderr
        # The certificate it replaced is still answered by the old intermediate: revoked, superseded.
        old_pem = lab.root / "old.crt"
        history = json.loads((lab.root / "ca" / "db.json").read_text())["entities"][1]["history"]
        old_pem.write_text(history[0]["cert_pem"])
        old = subprocess.run(["openssl", "ocsp", "-issuer", str(lab.ca(OLD)), "-cert", str(old_pem), "-url",
                              responder.url, "-CAfile", str(lab.cafile())], capture_output=True, timeout=30)
        assert b": revoked" in old.stdout and b"Reason: superseded" in old.stdout
    finally:
        responder.stop()


NEW_ROOT, NEW_UNDER_ROOT = "Acme-CA-Root-2", "Acme-CA-Issuing-2"


def keytool_entries(store: Path, password: str) -> list[str]:
    listing = keytool("-list", "-keystore", str(store), "-storetype", "PKCS12", "-storepass", password).stdout.decode()
    return sorted(line.split(",")[0] for line in listing.splitlines() if "trustedCertEntry" in line)


def files(folder: Path, pattern: str = "*") -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


def test_a_new_root_is_trusted_beside_the_old_one_then_alone(tmp_path):
    root = Path(pki.init_pki(tmp_path / "pki")["dir"])
    hosts, password = root / "hosts", pki.load_manifest(root)["truststores"][0]["password"]
    pki.add_ca(root, NEW_ROOT, root=True)
    pki.add_ca(root, NEW_UNDER_ROOT, under=NEW_ROOT)
    # The cross-trust period: every host trusts both roots, the primary offers both for import.
    manifest = pki.set_issuing(root, NEW_UNDER_ROOT)
    assert manifest["truststores"][0]["entries"] == ["acme-ca", NEW_ROOT.lower()]
    for store in (root / "truststores" / "acme-ca.pfx", hosts / "gateway-host" / "acme-ca.pfx"):
        assert keytool_entries(store, password) == ["acme-ca", NEW_ROOT.lower()]
    assert files(hosts / "pcclient-host" / "store" / "Root") == [f"{NEW_ROOT}.crt", f"{ROOT}.crt"]
    assert files(hosts / "primary-host", "cacert*.crt") == [f"cacert-{NEW_ROOT}.crt", "cacert.crt"]
    assert files(hosts / "primary-host", "*.cer") == sorted([f"{NEW_UNDER_ROOT}.cer", f"{OLD}.cer", f"{NEW_ROOT}.cer", f"{ROOT}.cer"])
    self_signed = openssl("verify", "-CAfile", str(hosts / "primary-host" / f"cacert-{NEW_ROOT}.crt"),
                          str(hosts / "primary-host" / f"cacert-{NEW_ROOT}.crt"))
    assert self_signed.returncode == 0
    for host in ("primary-host", "gateway-host", "pcclient-host"):
        pki.reissue(root, host)
    # The primary's own chain now ends at the new root: its cacert.crt is that root.
    new_root_pem = (root / "cas" / f"{NEW_ROOT}.crt").read_bytes()
    assert (hosts / "primary-host" / "cacert.crt").read_bytes() == new_root_pem
    assert files(hosts / "primary-host", "cacert*.crt") == [f"cacert-{ROOT}.crt", "cacert.crt"]
    # The old root out: one root everywhere, alias acme-ca again.
    pki.retire(root, OLD)
    manifest = pki.retire(root, ROOT)
    assert manifest["truststores"][0]["entries"] == ["acme-ca"] and manifest["retired"] == [OLD, ROOT]
    assert keytool_entries(hosts / "gateway-host" / "acme-ca.pfx", password) == ["acme-ca"]
    assert files(hosts / "pcclient-host" / "store" / "Root") == [f"{NEW_ROOT}.crt"]
    assert files(hosts / "primary-host", "cacert*.crt") == ["cacert.crt"]
    assert files(hosts / "primary-host", "*.cer") == [f"{NEW_UNDER_ROOT}.cer", f"{NEW_ROOT}.cer"]
    leaf = root / "entities" / "gateway-host" / "gateway-host.crt"
    assert openssl("verify", "-CAfile", str(hosts / "pcclient-host" / "store" / "Root" / f"{NEW_ROOT}.crt"), "-untrusted",
                   str(root / "cas" / f"{NEW_UNDER_ROOT}.crt"), str(leaf)).returncode == 0
    with pytest.raises(pki.PKIError, match="a root signs itself: give --root or --under, not both"):
        pki.add_ca(root, "Other", under=NEW_ROOT, root=True)


def test_many_hosts_are_issued_in_one_transaction_all_or_none(tmp_path):
    root = Path(pki.init_pki(tmp_path / "pki")["dir"])
    manifest = pki.issue_many(root, [("pcclient-host-2", "client", (), None), ("gateway-host-2", "gateway", ("10.0.0.2",), None)])
    assert [e["name"] for e in manifest["entities"]][-2:] == ["pcclient-host-2", "gateway-host-2"]
    for host in ("pcclient-host-2", "gateway-host-2"):
        assert openssl("verify", "-CAfile", str(root / "cas" / f"{ROOT}.crt"), "-untrusted", str(root / "cas" / f"{OLD}.crt"),
                       str(root / "entities" / host / f"{host}.crt")).returncode == 0
    before = tree_state(root)
    with pytest.raises(pki.PKIError, match="an entity named 'gateway-host-2' already exists"):
        pki.issue_many(root, [("pcclient-host-3", "client", (), None), ("gateway-host-2", "gateway", (), None)])
    with pytest.raises(pki.PKIError, match="the host 'pcclient-host-3' is asked for twice"):
        pki.issue_many(root, [("pcclient-host-3", "client", (), None), ("PCclient-host-3", "client", (), None)])
    assert tree_state(root) == before  # nothing of a refused batch is written
