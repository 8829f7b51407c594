"""The lab's primary and gateway, run against each other, say what the Java reference says.

For every reference case the lab's pair (tests/reference/lab_pair.py: the primary's TLS layer
judged by the JRE, the gateway's connection test) runs on the case's files, on this machine's
JRE (in this process) and in the primary image (one container for every case), and is held
against the reference pair on the same JRE: the verdict, the end that refused and its message,
the other end's message, the chain the primary received and the one it served, the CA names the
gateway's key choice was given and the chain it offered.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("OpenSSL", reason="pyOpenSSL is not installed here: the lab's primary and gateway need it "
                                      "(the images have python3-openssl)")

from certkit.jre import Validator  # noqa: E402
from test_jre_support import UTC, jre_classes, jre_java  # noqa: E402,F401  (fixtures)
from test_reference_expected import JAVA, TRANSPORT, worded  # noqa: E402
from test_reference_support import (CASES, DOCKER, DOCKER_MISSING, PASSWORD, REFERENCE_DIR, RUNNERS,  # noqa: E402,F401
                                    java_major, lab_pair, reference, reference_classes, reference_pki,
                                    reference_runs)

LAB_IMAGE = "safeq-lab/primary:latest"
LAB_MISSING = DOCKER_MISSING or reference.DockerJava(LAB_IMAGE).unavailable()
LAB_RUNNERS = [
    pytest.param("host", id="host"),
    pytest.param("image", id="image", marks=pytest.mark.skipif(
        LAB_MISSING is not None, reason=f"the lab's image or the reference's cannot run here: {LAB_MISSING}")),
]
CONTAINER_PREFIX = "lab-pair-test-"
IMAGE_TIMEOUT = 240.0  # every case in one container: about 15 s measured
DOCKER_TIMEOUT = 60.0

# Known differences: (runner, case) -> what the lab's other end says instead of Java's. The lab's
# primary answers a missing client certificate with the alert JRE 21 sends (certificate_required
# under TLS 1.3, handshake_failure under 1.2) whichever JRE judges its chains; a JRE 17 server sends
# bad_certificate, so on the host's JRE 17 the gateway receives another alert than Java's client.
# The image runs JRE 21 at both ends: no entry may name it.
KNOWN = {
    ("host", "client-leaf-only-root-trusted"): "Received fatal alert: certificate_required",
    ("host", "client-leaf-only-root-trusted-tls12"): "Received fatal alert: handshake_failure",
    ("host", "server-trusts-other-root"): "Received fatal alert: certificate_required",
}
# Cases the gateway cannot be set up for, and what it says instead: its trusted-certificate
# settings need a keystore, so an unattended file without one is refused before any connection.
NOT_A_GATEWAY = {"client-without-keystore": "lacks HCP_DEFAULT_KEYSTORE, HCP_DEFAULT_KEYSTORE_PASSWORD"}
COMPARED = [c for c in CASES if c not in NOT_A_GATEWAY]


class LabRuns:
    """The lab's result per (runner, case), each run once per session: on the host with one
    validator for every case, in the image in one container for every case."""

    def __init__(self, pki, validator: Validator, workdir: Path):
        self.pki = pki
        self.host = lab_pair().Lab(validator, workdir)
        self._host: dict[str, dict] = {}
        self._image: dict[str, dict] | None = None

    def result(self, label: str, case_id: str) -> dict:
        if label == "host":
            if case_id not in self._host:
                self._host[case_id] = self.host.pair(self.pki.lab_args(CASES[case_id]))
            return self._host[case_id]
        if self._image is None:
            self._image = self._run_image()
        answer = self._image[case_id]
        assert "error" not in answer, f"the lab's pair gave no verdict in the image: {answer.get('error')}"
        return answer["result"]

    def _run_image(self) -> dict[str, dict]:
        requests = "".join(json.dumps({"id": c, "args": self.pki.lab_args(case)}) + "\n" for c, case in CASES.items())
        folder = str(self.pki.dir)  # every file of every case is in it: mounted where the arguments say
        name = CONTAINER_PREFIX + secrets.token_hex(6)
        cmd = [DOCKER.docker, "run", "--rm", "-i", "--network", "none", "--name", name,
               "-v", f"{folder}:{folder}:ro", "-v", f"{REFERENCE_DIR}:/harness:ro",
               "--entrypoint", "python3", LAB_IMAGE, "/harness/lab_pair.py", "batch"]
        try:
            proc = subprocess.run(cmd, input=requests, capture_output=True, text=True, timeout=IMAGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Killing the docker client leaves the container running: remove it by its name.
            subprocess.run([DOCKER.docker, "rm", "-f", name], capture_output=True, timeout=DOCKER_TIMEOUT)
            pytest.fail(f"container {name}: the lab's pairs did not finish within {IMAGE_TIMEOUT:g} s")
        assert proc.returncode == 0, f"container {name} exited {proc.returncode}: {proc.stderr[-2000:]}"
        answers = {a["id"]: a for a in map(json.loads, proc.stdout.splitlines())}
        assert set(answers) == set(CASES), f"answers for {sorted(answers)}; stderr: {proc.stderr[-2000:]}"
        return answers


@pytest.fixture(scope="session")
def lab_runs(reference_pki, jre_java, jre_classes, tmp_path_factory):
    with Validator(java=jre_java, classes_dir=jre_classes, jvm_options=UTC) as validator:
        yield LabRuns(reference_pki, validator, tmp_path_factory.mktemp("lab-pair"))


def _major(reference_runs, runner: str) -> str:
    major = java_major(reference_runs.version(runner))
    if major not in ("17", "21"):
        pytest.skip(f"no verdicts pinned for Java {major} ({reference_runs.version(runner)})")
    return major


# --- the comparison: each function lists what differs, in words -------------------------------------

def _sorted(names) -> list | None:
    # The CA names come from a set on Java's side: their order changes from run to run.
    return None if names is None else sorted(names)


def accepted_differences(java: dict, lab: dict) -> list[str]:
    server = lab.get("server") or {}
    pairs = {
        "verdict": (True, lab["ok"]),
        "protocol": (java["protocol"], lab.get("protocol")),
        "chain the primary received": (java["server"]["peer_chain"], server.get("peer_chain")),
        "chain the primary served": (java["client"]["peer_chain"], server.get("served")),
    }
    return [f"{what}: Java {want!r}, lab {got!r}" for what, (want, got) in pairs.items() if want != got]


def key_choice_differences(java: dict, lab: dict) -> list[str]:
    """None where Java's key manager was never asked (no keystore, or refused before it was)."""
    pairs = {
        "CA names the gateway was given": (_sorted(java["client"].get("requested_issuers")),
                                           _sorted(lab["client"]["requested_issuers"])),
        "chain the gateway offered": (java["client"].get("offered_chain"), lab["client"]["offered_chain"]),
    }
    return [f"{what}: Java {want!r}, lab {got!r}" for what, (want, got) in pairs.items() if want != got]


def refused_differences(case_id: str, runner: str, major: str, java: dict, lab: dict) -> list[str]:
    """The refusing end word for word; the other end as Java's said, or as the reference tolerates."""
    if lab["ok"] or lab.get("side") != java["side"]:
        return [f"refused by the {java['side']} in Java, by {lab.get('side') or 'nobody'} in the lab"]
    out = []
    if lab["message"] != java["message"]:
        out.append(f"the {java['side']}'s message: Java {java['message']!r}, lab {lab['message']!r}")
    other = "client" if java["side"] == "server" else "server"
    said = (lab.get(other) or {}).get("message")
    known = KNOWN.get((runner, case_id))
    if known is not None:
        tolerated = {known}
    else:
        alert = JAVA[case_id].alert[major]
        tolerated = {java[other]["message"], worded(major, alert, f"Received fatal alert: {alert}"),
                     *(message for _, message in TRANSPORT)}
    if said not in tolerated:
        out.append(f"the {other}'s message: Java's {java[other]['message']!r}, lab {said!r} "
                   f"(tolerated: {sorted(tolerated)})")
    return out


def setup_differences(java: dict, lab: dict) -> list[str]:
    """A store that does not open: the gateway reports the exception as Java prints it."""
    want = (False, java["side"], "setup", f"{java['exception']}: {java['message']}", False)
    got = (lab["ok"], lab.get("side"), lab.get("stage"), lab.get("message"), "server" in lab)
    return [] if got == want else [f"(ok, side, stage, message, primary connected): Java {want!r}, lab {got!r}"]


def differences(case_id: str, runner: str, major: str, java: dict, lab: dict) -> list[str]:
    if java["ok"]:
        return accepted_differences(java, lab) + key_choice_differences(java, lab)
    if java["stage"] == "setup":
        return setup_differences(java, lab)
    return refused_differences(case_id, runner, major, java, lab) + key_choice_differences(java, lab)


# --- the tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", COMPARED)
@pytest.mark.parametrize("runner", LAB_RUNNERS)
def test_the_lab_says_what_java_says(reference_runs, lab_runs, runner, case):
    major = _major(reference_runs, runner)
    java, lab = reference_runs.result(runner, case), lab_runs.result(runner, case)
    found = differences(case, runner, major, java, lab)
    assert not found, "\n".join(["the lab differs from Java:", *found, f"Java: {json.dumps(java)}",
                                 f"lab:  {json.dumps(lab)}"])


@pytest.mark.parametrize("case", list(NOT_A_GATEWAY))
@pytest.mark.parametrize("runner", LAB_RUNNERS)
def test_what_the_gateway_cannot_be_set_up_for_is_refused_before_connecting(lab_runs, runner, case):
    lab = lab_runs.result(runner, case)
    assert (lab["ok"], lab["side"], lab["stage"], "server" in lab) == (False, "client", "setup", False), lab
    assert lab["message"].endswith(NOT_A_GATEWAY[case]), lab["message"]


def test_known_differences_name_the_hosts_jre_only():
    assert {runner for runner, _ in KNOWN} == {"host"}
    assert {case for _, case in KNOWN} <= set(COMPARED)


@pytest.mark.parametrize("runner", RUNNERS)
def test_java_lists_no_entry_in_the_nokeys_truststore(reference_pki, jre_java, runner):
    """What the reference is given for that truststore (no trusted certificate) is what each JRE reads from it."""
    store = str(reference_pki.truststores["nokeys"])
    args = ["-list", "-keystore", store, "-storetype", "PKCS12", "-storepass", PASSWORD]
    if runner == "host":
        cmd = [str(Path(jre_java).parent / "keytool"), *args]
    else:
        folder = str(Path(store).parent)
        cmd = [DOCKER.docker, "run", "--rm", "--network", "none", "--name", CONTAINER_PREFIX + secrets.token_hex(6),
               "-v", f"{folder}:{folder}:ro", "--entrypoint", "keytool", DOCKER.image, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DOCKER_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Your keystore contains 0 entries" in proc.stdout, proc.stdout


def test_the_command_line_prints_the_verdict_the_module_returns(reference_pki, lab_runs, jre_java, jre_classes):
    args = reference_pki.lab_args(CASES["client-leaf-only-root-trusted"])
    proc = subprocess.run([sys.executable, str(REFERENCE_DIR / "lab_pair.py"), "--java", jre_java,
                           "--validator-classes", str(jre_classes), "pair", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    returned = lab_runs.result("host", "client-leaf-only-root-trusted")
    assert {k: printed[k] for k in ("ok", "side", "stage", "message")} == {
        k: returned[k] for k in ("ok", "side", "stage", "message")}
