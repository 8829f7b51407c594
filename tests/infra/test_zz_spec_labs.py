"""`safeq-lab up --spec` on hand-overs made with the openssl CLI (support.handover), not by pki/:
the good ones start and pass `verify` (one with the machines named as in a corporate DNS, names the
containers then carry); three bad ones are stopped by the doctor, then started
with --force, and `verify` shows the lab failing exactly as the doctor foresaw, in the JRE's words.
Runs last and puts the lab's own PKI back."""
import json

import pytest

from conftest import lab, lab_json, wait_for
from lab import engine
from support.handover import CASES, CONNECTIONS, Corp

# Runs labs of its own; on a spec's files (inside its own `verify`) it is left out.
pytestmark = pytest.mark.lab_pki

IN_THE_LAB = ["good", "good, corporate DNS names", "leaf without clientAuth", "pfx with only the leaf, only the root trusted", "-nokeys truststore"]


@pytest.fixture(scope="module")
def handovers(tmp_path_factory):
    corp = Corp(tmp_path_factory.mktemp("corp"))
    return {name: CASES[name][0](corp).write(tmp_path_factory.mktemp("handover")) for name in IN_THE_LAB}


@pytest.fixture(scope="module", autouse=True)
def own_pki_back():
    yield
    proc = lab("up")
    assert proc.returncode == 0, proc.stderr[-3000:]


def listing(folder):
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode) for p in folder.iterdir())


def lab_shows(gateway_refused) -> bool:
    """The refusal where the JRE that refused logs it: the primary's refused list, or the gateway's status."""
    side, words = gateway_refused
    if side == "primary":
        return any(words in r["reason"] for r in lab_json("status")["refused"])
    state = json.loads(engine.exec_sh("gateway", "safeq-gateway status --json", timeout=20).stdout)
    return bool(state["reason"]) and words in state["reason"]


@pytest.mark.parametrize("name", IN_THE_LAB)
def test_the_lab_on_a_spec_shows_what_the_doctor_foresaw(handovers, name):
    spec_file = handovers[name]
    before = listing(spec_file.parent)
    gateway_refused, client_refused = CONNECTIONS[name]
    assert client_refused is None  # the client connects in every case here
    force = []
    if gateway_refused:
        stopped = lab("up", "--spec", str(spec_file))
        assert stopped.returncode != 0 and "error(s) in " + f"{spec_file} (above)" in stopped.stderr, stopped.stderr
        force = ["--force"]
    started = lab("up", "--spec", str(spec_file), *force)
    assert started.returncode == 0, started.stderr[-3000:]
    if gateway_refused:
        assert f"gateway: not connected, as the doctor foresaw (refused by {gateway_refused[0]}: " in started.stderr
        assert wait_for(lambda: lab_shows(gateway_refused), 30), gateway_refused
    checks = lab("verify", "-q", "-rfs")  # a failed check named at the end of its output
    assert checks.returncode == 0, checks.stdout[-4000:]
    assert " deselected" in checks.stdout  # the lab_pki checks are left out on a spec's files
    assert listing(spec_file.parent) == before  # the user's files: only read
