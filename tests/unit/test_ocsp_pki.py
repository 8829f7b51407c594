"""The PKI's OCSP side: delegated signers, hosts/ocsp-host/, status.json, the manifest."""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

import pki
from pki.database import canonical_digest
from x509text import extension, is_critical

ROLES_BY_DEPTH = {0: ["Acme-CA-Root"], 1: ["Acme-CA-Root", "Acme-CA-Intermediate"],
                  2: ["Acme-CA-Root", "Acme-CA-Intermediate-1", "Acme-CA-Intermediate-2"]}


def _signer(root: Path, ca: str) -> Path:
    return root / "hosts" / "ocsp-host" / "signers" / f"{ca}-ocsp.crt"


def _text(pki_tools, path: Path) -> str:
    return pki_tools.openssl("x509", "-noout", "-text", "-in", str(path)).stdout.decode()


def _status(root: Path) -> dict:
    return json.loads((root / "hosts" / "ocsp-host" / "status.json").read_text())


def _lint_exe(name: str) -> str:
    exe = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip(f"pkilint's {name} command is not on PATH")
    return exe


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_signer_profile(pki_tools, pki_by_depth, depth):
    manifest = pki_by_depth[depth]
    root = Path(manifest["dir"])
    for ca in ROLES_BY_DEPTH[depth]:
        text = _text(pki_tools, _signer(root, ca))
        assert f"Subject: O = Acme, CN = {ca} OCSP Signer" in text
        assert f"Issuer: O = Acme, CN = {ca}\n" in text
        assert extension(text, "X509v3 Basic Constraints") == "CA:FALSE"
        assert is_critical(text, "X509v3 Basic Constraints")
        assert extension(text, "X509v3 Key Usage") == "Digital Signature"
        assert is_critical(text, "X509v3 Key Usage")
        assert extension(text, "X509v3 Extended Key Usage") == "OCSP Signing"
        assert not is_critical(text, "X509v3 Extended Key Usage")
        assert re.search(r"^ +OCSP No Check: ?$", text, re.M), text  # present, not critical
        assert "X509v3 Subject Key Identifier" in text and "X509v3 Authority Key Identifier" in text
        assert "Authority Information Access" not in text
        assert "NIST CURVE: P-256" in text
        dates = pki_tools.openssl("x509", "-noout", "-startdate", "-enddate", "-in", str(_signer(root, ca))).stdout.decode()
        start, end = (dt.datetime.strptime(line.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")
                      for line in dates.splitlines())
        assert dt.timedelta(days=396) < end - start <= dt.timedelta(days=397, minutes=5)


def test_rsa_signer_has_the_pki_key_type(pki_tools, rsa_pki):
    text = _text(pki_tools, _signer(Path(rsa_pki["dir"]), "Acme-CA-Intermediate"))
    assert "Public-Key: (2048 bit)" in text
    assert extension(text, "X509v3 Key Usage") == "Digital Signature"  # no key encipherment: it only signs


@pytest.mark.parametrize("depth", [0, 2])
def test_signers_verify_under_their_ca_only(pki_tools, pki_by_depth, foreign_pki, depth):
    root = Path(pki_by_depth[depth]["dir"])
    names = ROLES_BY_DEPTH[depth]
    anchor = root / "cas" / f"{names[0]}.crt"
    for i, ca in enumerate(names):
        untrusted = root.parent / f"untrusted-{ca}.pem"
        untrusted.write_bytes(b"".join((root / "cas" / f"{n}.crt").read_bytes() for n in names[1:i + 1]) or anchor.read_bytes())
        proc = pki_tools.openssl("verify", "-CAfile", str(anchor), "-untrusted", str(untrusted), str(_signer(root, ca)))
        assert proc.stdout.decode().strip().endswith(": OK")
    # The same names in another PKI are another key: no verification across PKIs.
    foreign = Path(foreign_pki["dir"])
    proc = pki_tools.openssl("verify", "-CAfile", str(foreign / "cas" / "Acme-CA-Root.crt"), "-untrusted",
                             str(foreign / "cas" / "chain.pem"), str(_signer(Path(pki_by_depth[1]["dir"]), "Acme-CA-Intermediate")),
                             check=False)
    assert proc.returncode != 0


def test_signers_pass_pkilint(pki_tools, default_pki, p384_pki):
    single = _lint_exe("lint_pkix_cert")
    pair = _lint_exe("lint_pkix_signer_signee_cert_chain")
    for manifest in (default_pki, p384_pki):
        root = Path(manifest["dir"])
        for ca in manifest["cas"]:
            signer = _signer(root, ca["name"])
            proc = pki_tools.run(single, "lint", "-s", "ERROR", str(signer), check=False)
            assert proc.returncode == 0 and proc.stdout.strip() == b"", proc.stdout.decode()
            proc = pki_tools.run(pair, "lint", "-s", "ERROR", ca["pem_path"], str(signer), check=False)
            assert proc.returncode == 0 and proc.stdout.strip() == b"", proc.stdout.decode()


def test_ocsp_host_folder(pki_tools, default_pki):
    root = Path(default_pki["dir"])
    host = root / "hosts" / "ocsp-host"
    files = sorted(str(p.relative_to(host)) for p in host.rglob("*") if p.is_file())
    assert files == sorted([
        "responder.json", "status.json", "Acme-CA-Root.crt", "Acme-CA-Intermediate.crt",
        "signers/Acme-CA-Root-ocsp.crt", "signers/Acme-CA-Root-ocsp.key",
        "signers/Acme-CA-Intermediate-ocsp.crt", "signers/Acme-CA-Intermediate-ocsp.key",
    ])
    assert json.loads((host / "responder.json").read_text()) == {
        "issuers": [
            {"name": ca, "cert": f"{ca}.crt", "signer_cert": f"signers/{ca}-ocsp.crt", "signer_key": f"signers/{ca}-ocsp.key"}
            for ca in ("Acme-CA-Root", "Acme-CA-Intermediate")
        ],
        "status_file": "status.json",
    }
    for path in host.rglob("*"):
        secret = path.suffix == ".key"  # the delegated signers' keys: 0600 on the host, read by the container's root
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o600 if secret else 0o644), path
    ca_keys = {p.read_bytes() for p in (root / "ca").glob("*.key.pem")}
    for ca in ("Acme-CA-Root", "Acme-CA-Intermediate"):
        assert (host / f"{ca}.crt").read_bytes() == (root / "cas" / f"{ca}.crt").read_bytes()
        key = host / "signers" / f"{ca}-ocsp.key"
        # The copy is the signer's key (as recorded under ca/), never a CA key.
        assert key.read_bytes() == (root / "ca" / "ocsp-signers" / f"{ca}-ocsp.key.pem").read_bytes()
        assert key.read_bytes() not in ca_keys
        pub_key = pki_tools.openssl("pkey", "-in", str(key), "-pubout").stdout
        pub_cert = pki_tools.openssl("x509", "-in", str(host / "signers" / f"{ca}-ocsp.crt"), "-noout", "-pubkey").stdout
        assert pub_key == pub_cert


def test_status_covers_every_issued_certificate(pki_by_depth):
    manifest = pki_by_depth[2]
    root = Path(manifest["dir"])
    status = _status(root)
    cas = {c["name"]: c for c in manifest["cas"]}
    signers = {s["issuer"]: s["serial"] for s in manifest["ocsp"]["signers"]}
    good = {"status": "good", "revocation_time": None, "reason": None}
    assert status == {
        "Acme-CA-Root": {cas["Acme-CA-Intermediate-1"]["serial"]: good, signers["CN=Acme-CA-Root,O=Acme"]: good},
        "Acme-CA-Intermediate-1": {cas["Acme-CA-Intermediate-2"]["serial"]: good,
                                   signers["CN=Acme-CA-Intermediate-1,O=Acme"]: good},
        "Acme-CA-Intermediate-2": {**{e["serial"]: good for e in manifest["entities"]},
                                   signers["CN=Acme-CA-Intermediate-2,O=Acme"]: good},
    }


def test_status_follows_revoke_issue_reissue(fresh_pki):
    host = fresh_pki / "hosts" / "ocsp-host"
    path = host / "status.json"
    inode = path.stat().st_ino
    m = pki.revoke(fresh_pki, "gateway-host", "keyCompromise")
    gw = next(e for e in m["entities"] if e["name"] == "gateway-host")
    rec = _status(fresh_pki)["Acme-CA-Intermediate"][gw["serial"]]
    assert rec == {"status": "revoked", "revocation_time": gw["revocation"]["time"], "reason": "keyCompromise"}
    # Replaced (a new inode), not rewritten in place; no temporary file left beside it.
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in host.iterdir()) == sorted(
        ["responder.json", "status.json", "signers", "Acme-CA-Root.crt", "Acme-CA-Intermediate.crt"])

    m = pki.issue(fresh_pki, "client-17", "client")
    new = next(e for e in m["entities"] if e["name"] == "client-17")
    assert _status(fresh_pki)["Acme-CA-Intermediate"][new["serial"]]["status"] == "good"

    old = next(e for e in m["entities"] if e["name"] == "primary-host")["serial"]
    m = pki.reissue(fresh_pki, "primary-host")
    now = next(e for e in m["entities"] if e["name"] == "primary-host")["serial"]
    status = _status(fresh_pki)["Acme-CA-Intermediate"]
    assert status[old]["status"] == "revoked" and status[old]["reason"] == "superseded"
    assert status[now] == {"status": "good", "revocation_time": None, "reason": None}
    assert len(status) == 3 + 2 + 1  # 3 hosts + client-17 + old primary + the signer


def test_manifest_ocsp_section(pki_cli, tmp_path):
    m = pki.init_pki(tmp_path / "pki", ocsp_url=None)
    assert m["ocsp"]["url"] is None
    assert m["ocsp"]["host_dir"] == str(tmp_path / "pki" / "hosts" / "ocsp-host")
    assert len(m["ocsp"]["signers"]) == 2
    result = pki_cli("show", "--dir", str(tmp_path / "pki"))
    assert "OCSP: URL none" in result.stdout and "hosts/ocsp-host/" in result.stdout


def test_ocsp_host_is_a_reserved_name(pki_cli, pki_tools, fresh_pki):
    before = pki_tools.tree_state(fresh_pki.parent)
    result = pki_cli("issue", "OCSP-Host", "--role", "client", "--dir", str(fresh_pki))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the name 'ocsp-host' is reserved for the OCSP responder's folder")
    assert pki_tools.tree_state(fresh_pki.parent) == before


def _rewrite_db(root: Path, change) -> None:
    path = root / "ca" / "db.json"
    data = json.loads(path.read_text())
    change(data)
    body = {k: v for k, v in data.items() if k != "integrity"}
    data["integrity"] = {"algorithm": "sha256", "digest": canonical_digest(body)}
    path.write_text(json.dumps(data, indent=2))


def test_swapped_signer_key_is_refused(pki_cli, fresh_pki, foreign_pki):
    name = "ca/ocsp-signers/Acme-CA-Intermediate-ocsp.key.pem"
    shutil.copy(Path(foreign_pki["dir"]) / name, fresh_pki / name)
    result = pki_cli("revoke", "gateway-host", "--dir", str(fresh_pki))
    assert result.exit_code == 2
    assert "Acme-CA-Intermediate-ocsp.key.pem is not the key of the OCSP signer of CA Acme-CA-Intermediate" in result.stderr


def test_foreign_signer_in_db_is_refused(pki_cli, fresh_pki, foreign_pki):
    stranger = json.loads((Path(foreign_pki["dir"]) / "ca" / "db.json").read_text())["signers"][1]

    def edit(data):
        data["signers"][1].update(cert_pem=stranger["cert_pem"], serial=stranger["serial"])
    _rewrite_db(fresh_pki, edit)
    result = pki_cli("show", "--json", "--dir", str(fresh_pki))
    assert result.exit_code == 2
    assert "the OCSP signer of CA Acme-CA-Intermediate was not signed by Acme-CA-Intermediate" in result.stderr


def test_pki_made_before_signers_still_works(fresh_pki):
    _rewrite_db(fresh_pki, lambda data: data.pop("signers"))
    shutil.rmtree(fresh_pki / "ca" / "ocsp-signers")
    shutil.rmtree(fresh_pki / "hosts" / "ocsp-host")
    m = pki.load_manifest(fresh_pki)
    assert m["ocsp"] == {"url": "http://ocsp-host:8080", "host_dir": None, "signers": []}
    m = pki.revoke(fresh_pki, "gateway-host")
    assert next(e for e in m["entities"] if e["name"] == "gateway-host")["status"] == "revoked"
    assert not (fresh_pki / "hosts" / "ocsp-host").exists()
