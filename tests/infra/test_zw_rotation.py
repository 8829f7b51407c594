"""The CAs renewed with no outage: a lab of its own (`--lab rot-02`) beside this one.

`drill rotate-intermediate` moves every endpoint to a new intermediate in waves with no session dropped;
the `--too-early --issuing-only` variant drops exactly the endpoint not moved yet, in the JRE's words,
and brings it back; the Trusted CA list ends with the root and the newest intermediate only, the files
the doc's steps import say the same. `drill rotate-root` then moves endpoints and primary to a new root
with no session dropped, and the old root is gone from cacerts, truststores and the CA list the primary
asks clients for; `up` again keeps every endpoint accepted. Judged with openssl and keytool."""
import json
import subprocess
from pathlib import Path

import pytest

from conftest import lab
from lab import engine
from safeqlab.records import current_record

pytestmark = pytest.mark.lab_pki  # its own lab on the lab's own CA

NAME = "rot-02"
HOSTS = ("gateway-host", "pcclient-host")
PKIX = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
        "unable to find valid certification path to requested target")


def drill(*args: str) -> dict:
    run = lab("--lab", NAME, "drill", "rotate-intermediate", "--json", *args)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return json.loads(run.stdout)


def drill_root() -> dict:
    run = lab("--lab", NAME, "drill", "rotate-root", "--json")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return json.loads(run.stdout)


def in_primary(command: str) -> str:
    return lab("--lab", NAME, "exec", "primary", "sh", "-c", command).stdout


def fingerprint(pki_dir: Path, ca: str) -> str:
    return subprocess.run(["openssl", "x509", "-in", str(pki_dir / "cas" / f"{ca}.crt"), "-noout", "-fingerprint",
                           "-sha256"], capture_output=True, text=True, timeout=30).stdout.strip().split("=")[1]


def trusted_subjects() -> list[str]:
    account = json.loads(lab("--lab", NAME, "account", "show", "--json").stdout)
    return sorted(ca["subject"] for ca in account["trusted_cas"])


def verify(pki_dir: Path, host: str, ca: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "verify", "-CAfile", str(pki_dir / "cas" / "Acme-CA-Root.crt"), "-untrusted",
                           str(pki_dir / "cas" / f"{ca}.crt"), str(pki_dir / "entities" / host / f"{host}.crt")],
                          capture_output=True, text=True, timeout=30)


def test_the_issuing_ca_renewed_in_waves_with_no_session_dropped(primary):
    try:
        started = lab("--lab", NAME, "up", "--no-build")
        assert started.returncode == 0, started.stderr[-3000:]
        report = drill()
        assert report["acted_on"] == ["Acme-CA-Intermediate -> Acme-CA-Intermediate-2"]
        assert [s["connected"] for s in report["steps"]] == [2] * 5 and report["dropped"] == []
        pki_dir = Path(json.loads(lab("--lab", NAME, "pki", "show", "--json").stdout)["dir"])
        for host in HOSTS:
            assert verify(pki_dir, host, "Acme-CA-Intermediate-2").returncode == 0
            old = verify(pki_dir, host, "Acme-CA-Intermediate")
            assert old.returncode != 0 and "unable to get local issuer certificate" in old.stderr
        assert trusted_subjects() == ["CN=Acme-CA-Intermediate-2,O=Acme", "CN=Acme-CA-Root,O=Acme"]

        # Too early, with the issuing CA deciding: exactly the endpoint not moved yet drops, then comes back.
        early = drill("--too-early", "--issuing-only")
        assert [s["connected"] for s in early["steps"]] == [2, 2, 2, 2, 1, 2]
        assert early["steps"][4]["endpoints"] == {"gateway-host": "not-trusted, disconnected",
                                                  "pcclient-host": "accepted, connected"}
        assert [d.split(": ", 1) for d in early["dropped"]] == [["gateway-host", f"not-trusted: {PKIX} "
            "(CN=Acme-CA-Intermediate-2,O=Acme was removed from the Trusted CA certificates list)"]]
        assert trusted_subjects() == ["CN=Acme-CA-Intermediate-3,O=Acme", "CN=Acme-CA-Root,O=Acme"]  # root put back
        assert sorted(p.name for p in (pki_dir / "hosts" / "primary-host").glob("*.cer")) == [
            "Acme-CA-Intermediate-3.cer", "Acme-CA-Root.cer"]

        # A new root: cross-trust, endpoints then the primary moved, the old root out everywhere.
        moved = drill_root()
        assert moved["acted_on"] == ["Acme-CA-Root -> Acme-CA-Root-2", "Acme-CA-Intermediate-3 -> Acme-CA-Intermediate-4"]
        assert [s["connected"] for s in moved["steps"]] == [2] * 6 and moved["dropped"] == []
        server = in_primary("openssl s_client -connect localhost:2560 -servername primary-host -CAfile /pki/cacert.crt"
                            " </dev/null 2>&1")
        assert "Verify return code: 0 (ok)" in server and "i:O=Acme, CN=Acme-CA-Intermediate-4" in server
        asked = server.split("Acceptable client certificate CA names")[1].split("Requested Signature")[0]
        assert sorted(line for line in asked.splitlines() if "Acme" in line) == [
            "O=Acme, CN=Acme-CA-Intermediate-4", "O=Acme, CN=Acme-CA-Root-2"]
        cacerts = in_primary("/opt/safeqcloud/jre/bin/keytool -list -keystore /opt/safeqcloud/jre/lib/security/cacerts "
                             "-storepass changeit")
        assert fingerprint(pki_dir, "Acme-CA-Root-2") in cacerts and fingerprint(pki_dir, "Acme-CA-Root") not in cacerts
        password = json.loads(lab("--lab", NAME, "pki", "show", "--json").stdout)["truststores"][0]["password"]
        truststore = subprocess.run(["keytool", "-list", "-keystore", str(pki_dir / "hosts" / "gateway-host" / "acme-ca.pfx"),
                                     "-storepass", password], capture_output=True, text=True, timeout=60).stdout
        assert truststore.count("trustedCertEntry") == 1 and fingerprint(pki_dir, "Acme-CA-Root-2") in truststore

        # The doc's steps again on the rotated files: every endpoint still accepted on the new chain.
        again = lab("--lab", NAME, "up", "--no-build")
        assert again.returncode == 0, again.stderr[-3000:]
        status = json.loads(lab("--lab", NAME, "status", "--json").stdout)
        for host in HOSTS:
            rec = current_record(status["endpoints"], host) or {}
            assert (rec.get("decision"), rec.get("state"), rec.get("issuer")) == (
                "accepted", "connected", "CN=Acme-CA-Intermediate-4,O=Acme")
    finally:
        cleaned = lab("--lab", NAME, "clean", "--pki")
        assert cleaned.returncode == 0, cleaned.stderr
    assert engine.containers(project_name=NAME) == []
