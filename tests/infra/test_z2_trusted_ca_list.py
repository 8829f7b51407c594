"""Trusted CA certificates on the account, and settings that persist. Each test puts the lab back."""
import json

import pytest

from conftest import ROOT, endpoint, lab, lab_json, sha256_of, wait_for
from lab import engine

# Breaks and mends the lab's own PKI (its CA issues what it needs): not run on a spec's files.
pytestmark = pytest.mark.lab_pki




def health(target, command: str) -> bool:
    return target.run(command).rc == 0


# --- trusted CA certificates --------------------------------------------------------------------

@pytest.fixture
def restore_trusted_cas(manifest):
    yield
    host_dir = ROOT / "build/pki/hosts/primary-host"
    cas = [str(p) for p in sorted(host_dir.glob("*.cer"))]
    present = {c["sha256"] for c in lab_json("account", "show")["trusted_cas"]}
    missing = [p for p in cas if sha256_of(p) not in present]
    if missing:
        assert lab("account", "import-ca", *missing).returncode == 0


def test_root_alone_is_enough_when_chains_carry_the_intermediate(primary, gateway, client, manifest, restore_trusted_cas):
    host_dir = ROOT / "build/pki/hosts/primary-host"
    intermediate = sha256_of(host_dir / f"{manifest['cas'][1]['name']}.cer")
    root = sha256_of(host_dir / f"{manifest['cas'][0]['name']}.cer")
    assert lab("account", "remove-ca", intermediate.replace(":", "")).returncode == 0
    shas = [c["sha256"] for c in lab_json("account", "show")["trusted_cas"]]
    assert intermediate not in shas and root in shas
    # Sessions anchored at the intermediate reconnect and are verified again, now up to the root.
    root_reason = f"trusted-ca policy: chain verified to trusted CA CN={manifest['cas'][0]['name']},O=Acme"
    for name in ("gateway-host", "pcclient-host"):
        ep = wait_for(lambda: (lambda e: e if e["reason"] == root_reason and e["state"] == "connected" else None)(
            endpoint(primary, name)), 30)
        assert ep, endpoint(primary, name)
        assert ep["decision"] == "accepted"
    assert wait_for(lambda: health(gateway, "safeq-gateway health") and health(client, "safeq-client health"), 30)


BAD_IMPORTS = {
    "leaf": ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=leaf-only "
             "-addext basicConstraints=critical,CA:FALSE -keyout /dev/null -out /tmp/bad/leaf.pem 2>/dev/null",
             "leaf.pem: CN=leaf-only is not a CA certificate (BasicConstraints CA=true missing): import the root and "
             "intermediate CA certificates, not an entity certificate"),
    "garbage": ("head -c 700 /dev/urandom > /tmp/bad/garbage.cer", "garbage.cer: not an X.509 certificate in PEM or DER form"),
    "empty": (": > /tmp/bad/empty.cer", "empty.cer: the file is empty"),
    "expired": ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=Old-CA "
                "-not_before 20200101000000Z -not_after 20210101000000Z -addext basicConstraints=critical,CA:TRUE "
                "-keyout /dev/null -out /tmp/bad/expired.pem 2>/dev/null", "expired.pem: CN=Old-CA expired on 2021-01-01"),
    "huge": ("head -c 5242880 /dev/zero > /tmp/bad/huge.cer", "huge.cer: 5242880 bytes is more than 1024 KiB: export the CA "
             "certificate alone (.cer/.der/.crt/.pem)"),
    "duplicate": ("cp /pki/cacert.crt /tmp/bad/duplicate.crt", "duplicate.crt: CN=Acme-CA-Root,O=Acme is already in the "
                  "Trusted CA certificates list"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_bad_trusted_ca_import_is_refused_and_changes_nothing(primary, case, tmp_path):
    make, expected = BAD_IMPORTS[case]
    primary.check_output(f"mkdir -p /tmp/bad && {make}")
    before = lab_json("account", "show")["trusted_cas"]
    local = tmp_path / make.split("/tmp/bad/")[-1].split()[0]
    local.write_bytes(engine.read_file("primary", f"/tmp/bad/{local.name}"))
    proc = lab("account", "import-ca", str(local))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {expected}"
    assert lab_json("account", "show")["trusted_cas"] == before


# --- persistence -----------------------------------------------------------------------------------

def test_settings_survive_restart_and_down_up(primary):
    lab_json("account", "auto-trust", "on")
    lab_json("account", "ocsp", "--url", "http://ocsp-host:8080", "--on-failure", "fail-open")
    try:
        primary.check_output("systemctl restart safeq-cloud-server")
        acc = wait_for(lambda: (lambda p: json.loads(p.stdout) if p.returncode == 0 else None)(lab("account", "show", "--json")), 20)
        assert acc["auto_trust"] is True and acc["ocsp"]["url"] == "http://ocsp-host:8080"
        assert lab("down").returncode == 0
        up = lab("up", "--no-build")
        assert up.returncode == 0, up.stderr
        acc = lab_json("account", "show")
        assert acc["auto_trust"] is True
        assert acc["ocsp"] == {"enabled": False, "url": "http://ocsp-host:8080", "on_failure": "fail-open"}
        assert acc["certificate_policy"] == "trusted-ca"
    finally:
        lab_json("account", "auto-trust", "off")
        lab_json("account", "ocsp", "--no-url", "--on-failure", "fail-closed")
