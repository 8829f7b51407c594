"""One lab per student: a second lab (`--lab student-02`) runs beside this one, with its own compose
project, network, volumes, PKI and published port, and goes again without touching this one."""
import json
import subprocess

import pytest

from conftest import ROOT, endpoint, lab, lab_json
from lab import engine

# Starts a lab of its own on the lab's own PKI (not inside a spec lab's `verify`).
pytestmark = pytest.mark.lab_pki

NAME = "student-02"


def served_subject(port: int) -> str:
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"], input="", capture_output=True,
                         text=True, timeout=20).stdout
    return next((line for line in out.splitlines() if line.startswith("subject=")), out[-500:])


def test_a_second_lab_runs_beside_this_one_and_goes_again(primary):
    try:
        started = lab("--lab", NAME, "up", "--no-build")
        assert started.returncode == 0, started.stderr[-3000:]
        labs = {row["name"]: row for row in lab_json("labs")}
        assert (labs["safeq-lab"]["port"], labs["safeq-lab"]["portal"], labs["safeq-lab"]["running"]) == (2560, 8560, 5)
        second = labs[NAME]
        assert second["port"] != 2560 and (second["running"], second["containers"]) == (5, 5)
        assert second["portal"] == second["port"] + 6000  # its web portal beside its primary
        status = json.loads(lab("--lab", NAME, "status", "--json").stdout)
        assert {s["name"]: s["health"] for s in status["services"]} == dict.fromkeys(
            ("ocsp", "primary", "gateway", "client", "portal"), "healthy")
        assert {e["name"]: e["decision"] for e in status["endpoints"] if e["state"] == "connected"} == {
            "gateway-host": "accepted", "pcclient-host": "accepted"}
        # Each primary on its own port, the doc's check on both.
        assert "CN=primary-host" in served_subject(2560).replace(" ", "")
        assert "CN=primary-host" in served_subject(second["port"]).replace(" ", "")
        assert endpoint(primary, "gateway-host")["state"] == "connected"  # this lab is untouched
    finally:
        cleaned = lab("--lab", NAME, "clean", "--pki")
        assert cleaned.returncode == 0, cleaned.stderr
    assert engine.containers(project_name=NAME) == []
    assert not (ROOT / "build" / "labs" / NAME).exists()  # its PKI and state went with it
    assert NAME not in {row["name"] for row in lab_json("labs")}
    assert endpoint(primary, "gateway-host")["state"] == "connected"
