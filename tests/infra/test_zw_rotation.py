"""The issuing CA renewed with no outage: a lab of its own (`--lab rot-02`) beside this one.

`drill rotate-intermediate` moves every endpoint to a new intermediate in waves with no session dropped;
the `--too-early --issuing-only` variant drops exactly the endpoint not moved yet, in the JRE's words,
and brings it back; the Trusted CA list ends with the root and the newest intermediate only, the files
the doc's steps import say the same, and `up` again keeps every endpoint accepted. Judged with openssl."""
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

        # The doc's steps again on the rotated files: every endpoint still accepted on the new chain.
        again = lab("--lab", NAME, "up", "--no-build")
        assert again.returncode == 0, again.stderr[-3000:]
        status = json.loads(lab("--lab", NAME, "status", "--json").stdout)
        for host in HOSTS:
            rec = current_record(status["endpoints"], host) or {}
            assert (rec.get("decision"), rec.get("state"), rec.get("issuer")) == (
                "accepted", "connected", "CN=Acme-CA-Intermediate-3,O=Acme")
    finally:
        cleaned = lab("--lab", NAME, "clean", "--pki")
        assert cleaned.returncode == 0, cleaned.stderr
    assert engine.containers(project_name=NAME) == []
