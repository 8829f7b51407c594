"""File modes on the host: whatever holds a private key or a password is 0600, everywhere,
after every command; certificates stay 0644, directories 0755 (ca/ 0700).

A file counts as secret here by what it holds (a PKCS#12 file, a PEM private
key, a PFX or truststore password), not by the rule the code uses to pick a mode.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

import pki

CAS = ("Acme-CA-Root", "Acme-CA-Intermediate")
HOSTS = ("primary-host", "gateway-host", "pcclient-host")
# The fresh default tree, file by file.
SECRET_FILES = {
    "manifest.json", "ca/db.json", "truststores/acme-ca.pfx",
    *(f"ca/{ca}.key.pem" for ca in CAS),
    *(f"ca/ocsp-signers/{ca}-ocsp.key.pem" for ca in CAS),
    *(f"entities/{n}/{n}.{ext}" for n in HOSTS for ext in ("pfx", "key.pem")),
    "hosts/primary-host/primary-host.pfx",
    "hosts/gateway-host/gateway-host.pfx", "hosts/gateway-host/acme-ca.pfx",
    "hosts/gateway-host/unattended-install.conf",
    "hosts/pcclient-host/store/My/pcclient-host.key",
    *(f"hosts/ocsp-host/signers/{ca}-ocsp.key" for ca in CAS),
}
PUBLIC_FILES = {
    "cas/chain.pem", *(f"cas/{ca}.{ext}" for ca in CAS for ext in ("cer", "der", "crt")),
    *(f"entities/{n}/{n}.{ext}" for n in HOSTS for ext in ("crt", "chain.pem")),
    "hosts/primary-host/cacert.crt", *(f"hosts/primary-host/{ca}.cer" for ca in CAS),
    "hosts/pcclient-host/store/My/pcclient-host.crt",
    "hosts/pcclient-host/store/CA/Acme-CA-Intermediate.crt", "hosts/pcclient-host/store/Root/Acme-CA-Root.crt",
    "hosts/ocsp-host/responder.json", "hosts/ocsp-host/status.json",
    *(f"hosts/ocsp-host/{ca}.crt" for ca in CAS), *(f"hosts/ocsp-host/signers/{ca}-ocsp.crt" for ca in CAS),
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _passwords(manifest: dict) -> set[bytes]:
    found = {e["pfx_password"] for e in manifest["entities"]} | {t["password"] for t in manifest["truststores"]}
    return {p.encode() for p in found}


def _holds_secret(path: Path, passwords: set[bytes]) -> bool:
    data = path.read_bytes()
    return path.suffix == ".pfx" or b"PRIVATE KEY" in data or any(p in data for p in passwords)


def wrong_modes(root: Path) -> list[str]:
    """Every path under ``root`` whose mode is not the one it must have, as 'path: 0oNNN, want 0oNNN'."""
    passwords = _passwords(pki.load_manifest(root))
    wrong = []
    for path in [root, *sorted(root.rglob("*"))]:
        rel = path.relative_to(root)
        in_ca = rel.parts[:1] == ("ca",)
        if path.is_dir():
            want = 0o700 if in_ca else 0o755
        else:
            assert path.is_file() and not path.is_symlink(), path
            want = 0o600 if in_ca or _holds_secret(path, passwords) else 0o644
        if _mode(path) != want:
            wrong.append(f"{rel}: {oct(_mode(path))}, want {oct(want)}")
    return wrong


def test_fresh_tree_file_by_file(default_pki):
    root = Path(default_pki["dir"])
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == SECRET_FILES | PUBLIC_FILES
    assert {f: oct(_mode(root / f)) for f in sorted(SECRET_FILES)} == {f: "0o600" for f in sorted(SECRET_FILES)}
    assert {f: oct(_mode(root / f)) for f in sorted(PUBLIC_FILES)} == {f: "0o644" for f in sorted(PUBLIC_FILES)}
    assert wrong_modes(root) == []


@pytest.mark.parametrize("depth", [0, 2])
def test_every_depth(pki_by_depth, depth):
    assert wrong_modes(Path(pki_by_depth[depth]["dir"])) == []


@pytest.mark.parametrize("fixture", ["rsa_pki", "p384_pki", "legacy_pki", "fqdn_pki"])
def test_every_variant(request, fixture):
    assert wrong_modes(Path(request.getfixturevalue(fixture)["dir"])) == []


def test_random_passwords(tmp_path):
    root = Path(pki.init_pki(tmp_path / "pki", random_passwords=True)["dir"])
    assert wrong_modes(root) == []


def test_after_every_command(pki_cli, fresh_pki, monkeypatch):
    # The writers themselves, without the clean-up that puts older trees right.
    monkeypatch.setattr(pki.builder.export, "tighten_secrets", lambda root: None)
    steps = [
        ("issue", "gateway-2", "--role", "gateway"),
        ("issue", "client-2", "--role", "client"),
        ("issue", "primary-2", "--role", "primary", "--password", "s3cret-primary-2"),
        ("reissue", "pcclient-host"),
        ("reissue", "gateway-host"),
        ("reissue", "primary-2"),
        ("revoke", "client-2", "--reason", "keyCompromise"),
    ]
    for step in steps:
        result = pki_cli(*step, "--dir", str(fresh_pki))
        assert result.exit_code == 0, result.stderr
        assert wrong_modes(fresh_pki) == [], step
    for name in ("gateway-2", "client-2", "primary-2"):
        host = fresh_pki / "hosts" / name
        assert all(_mode(p) == 0o600 for p in host.rglob("*") if p.suffix in (".pfx", ".key", ".conf")), name


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_modes_do_not_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        root = Path(pki.init_pki(tmp_path / "pki")["dir"])
        pki.issue(root, "gateway-2", "gateway")
        pki.issue(root, "client-2", "client")
        shutil.rmtree(root / "hosts" / "pcclient-host" / "store")
        pki.reissue(root, "pcclient-host")  # puts the store back inside the mounted folder
    finally:
        os.umask(old)
    assert wrong_modes(root) == []


@pytest.mark.parametrize("command", ["issue", "reissue", "revoke"])
def test_a_tree_with_readable_secrets_is_tightened(fresh_pki, command):
    """A tree written when host secrets were 0644 is put right by its next write."""
    for rel in SECRET_FILES:
        if not rel.startswith("ca/"):
            os.chmod(fresh_pki / rel, 0o644)
    assert wrong_modes(fresh_pki)
    {
        "issue": lambda: pki.issue(fresh_pki, "gateway-2", "gateway"),
        "reissue": lambda: pki.reissue(fresh_pki, "primary-host"),
        "revoke": lambda: pki.revoke(fresh_pki, "pcclient-host"),
    }[command]()
    assert wrong_modes(fresh_pki) == []


def test_the_check_sees_a_readable_secret(fresh_pki):
    """The walk itself: a PFX made readable by others, or a password in a public-mode file, is reported."""
    os.chmod(fresh_pki / "hosts" / "primary-host" / "primary-host.pfx", 0o644)
    note = fresh_pki / "hosts" / "gateway-host" / "note.txt"
    note.write_bytes(b"keystore password: gateway-pfx-password\n")
    os.chmod(note, 0o644)
    assert wrong_modes(fresh_pki) == [
        "hosts/gateway-host/note.txt: 0o644, want 0o600",
        "hosts/primary-host/primary-host.pfx: 0o644, want 0o600",
    ]
