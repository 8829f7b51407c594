"""An exercise as a trainee meets it: `exercise start` prints the ticket, `check` fails in the
product's words, the trainee re-creates the truststore with keytool as the doc says and restarts the
gateway, `check` passes. `hint` and `reset` (the lab put back to how `up` left it, then broken again)
on the same lab."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.scenarios import catalog

ROOT = Path(__file__).resolve().parents[2]
LAB = "exercise-test"
SCENARIO = catalog.load()["truststore-openssl-nokeys"]


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", "--lab", LAB, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def started():
    proc = lab("exercise", "start", SCENARIO.id, "--force")
    yield proc
    lab("down", "--volumes")
    lab("clean", "--pki")


def test_start_prints_the_ticket_only(started):
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(f"Ticket ({LAB}, primary on 127.0.0.1:")
    assert SCENARIO.ticket in started.stdout
    assert "==>" not in started.stdout + started.stderr  # `up`'s progress went to the exercise's log


def test_check_fails_while_broken_then_passes_after_the_trainees_fix(started):
    check = lab("exercise", "check")
    assert check.returncode == 1
    assert "not fixed yet" in check.stdout and "expected status gateway: state = 'connected'" in check.stdout
    assert "the trustAnchors parameter must be non-empty" in check.stdout
    folder = ROOT / "build" / "labs" / LAB / "pki" / "hosts"
    truststore = folder / "gateway-host" / "acme-ca.pfx"
    truststore.unlink()
    subprocess.run(["keytool", "-importcert", "-noprompt", "-file", str(folder / "primary-host" / "Acme-CA-Root.cer"),
                    "-alias", "acme-ca", "-storetype", "PKCS12", "-keystore", str(truststore),
                    "-storepass", "acme-ca-pfx-password"], check=True, capture_output=True, timeout=60)
    os.chmod(truststore, 0o644)
    assert lab("exec", "gateway", "systemctl", "restart", "safeq-gateway").returncode == 0
    for _ in range(60):
        check = lab("exercise", "check")
        if check.returncode == 0:
            break
    assert check.returncode == 0, check.stdout
    assert check.stdout.strip() == f"fixed: {SCENARIO.title}"


def test_hint_and_reset(started):
    hint = lab("exercise", "hint")
    assert hint.returncode == 0 and hint.stdout.strip() == SCENARIO.hint
    reset = lab("exercise", "reset")
    assert reset.returncode == 0, reset.stderr
    assert SCENARIO.ticket in reset.stdout
    # The trainee's fix (a truststore made again in the PKI folder) undone with the rest: the lab put back
    # to how `up` left it, not made anew.
    log = (ROOT / "build" / "labs" / LAB / "exercise-start.log").read_text()
    assert f"lab {LAB}: reset to how `up` left it" in log, log
    assert lab("exercise", "check").returncode == 1  # broken again
