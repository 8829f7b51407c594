"""openssl verifies every entity's chain, for 0, 1 and 2 intermediates."""
from __future__ import annotations

from pathlib import Path

import pytest

def _verify(openssl, manifest: dict, leaf: Path, *, trusted_from: dict | None = None):
    root_pki = trusted_from or manifest
    root_crt = root_pki["cas"][0]["pem_path"]
    inter = [ca["pem_path"] for ca in root_pki["cas"][1:]]
    args = ["verify", "-CAfile", root_crt]
    if inter:
        untrusted = leaf.parent / "_untrusted.pem"
        untrusted.write_bytes(b"".join(Path(p).read_bytes() for p in inter))
        args += ["-untrusted", str(untrusted)]
    return openssl(*args, str(leaf), check=False)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_openssl_verifies_every_entity(pki_tools, pki_by_depth, depth, tmp_path):
    manifest = pki_by_depth[depth]
    assert len(manifest["cas"]) == depth + 1
    for ent in manifest["entities"]:
        leaf = tmp_path / f"{ent['name']}.crt"
        leaf.write_bytes((Path(manifest["dir"]) / "entities" / ent["name"] / f"{ent['name']}.crt").read_bytes())
        proc = _verify(pki_tools.openssl, manifest, leaf)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().strip().endswith(": OK")


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_entity_chain_pem_verifies_with_purpose(pki_tools, pki_by_depth, depth):
    # The chain file (leaf + intermediates + root) is usable as-is; check the TLS purpose too.
    manifest = pki_by_depth[depth]
    root = Path(manifest["dir"])
    purposes = {"primary": "sslserver", "gateway": "sslclient", "client": "sslclient"}
    for ent in manifest["entities"]:
        edir = root / "entities" / ent["name"]
        proc = pki_tools.openssl(
            "verify", "-purpose", purposes[ent["role"]], "-CAfile", manifest["cas"][0]["pem_path"],
            "-untrusted", str(edir / f"{ent['name']}.chain.pem"), str(edir / f"{ent['name']}.crt"),
        )
        assert b": OK" in proc.stdout


def test_client_certificate_is_not_a_server_certificate(pki_tools, default_pki):
    ent = next(e for e in default_pki["entities"] if e["role"] == "client")
    edir = Path(default_pki["dir"]) / "entities" / ent["name"]
    proc = pki_tools.openssl(
        "verify", "-purpose", "sslserver", "-CAfile", default_pki["cas"][0]["pem_path"],
        "-untrusted", str(edir / f"{ent['name']}.chain.pem"), str(edir / f"{ent['name']}.crt"), check=False,
    )
    assert proc.returncode != 0
    assert b"unsuitable certificate purpose" in proc.stdout + proc.stderr


def test_certificate_from_another_pki_fails(pki_tools, default_pki, foreign_pki, tmp_path):
    # Same names, different keys: the verifier must reject it (this test can fail).
    stranger = Path(foreign_pki["dir"]) / "entities" / "primary-host" / "primary-host.crt"
    leaf = tmp_path / "stranger.crt"
    leaf.write_bytes(stranger.read_bytes())
    proc = _verify(pki_tools.openssl, default_pki, leaf)
    assert proc.returncode != 0
    assert b"unable to get local issuer certificate" in proc.stdout + proc.stderr


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_chain_pem_is_intermediates_first_then_root(pki_tools, pki_by_depth, depth):
    manifest = pki_by_depth[depth]
    chain = (Path(manifest["dir"]) / "cas" / "chain.pem").read_bytes()
    expected = b"".join(Path(ca["pem_path"]).read_bytes() for ca in reversed(manifest["cas"]))
    assert chain == expected


def test_ca_exports_der_and_pem_agree(pki_tools, default_pki):
    cas_dir = Path(default_pki["dir"]) / "cas"
    for ca in default_pki["cas"]:
        cer = (cas_dir / f"{ca['name']}.cer").read_bytes()
        assert cer == (cas_dir / f"{ca['name']}.der").read_bytes()
        assert cer[:1] == b"\x30"  # DER SEQUENCE, not base64
        as_der = pki_tools.openssl("x509", "-in", ca["pem_path"], "-outform", "DER").stdout
        assert as_der == cer
        subject = pki_tools.openssl("x509", "-inform", "DER", "-in", ca["der_path"], "-noout", "-subject", "-nameopt", "RFC2253").stdout
        assert subject.decode().strip() == f"subject={ca['subject']}"
