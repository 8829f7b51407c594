"""A Java server and a Java client, one handshake per case: every verdict and message pinned per JRE.

The cases and their files are in test_reference_support, the pinned words in
test_reference_expected. Each case runs on this machine's JRE and on the lab image's JRE 21.
"""
from __future__ import annotations

import time

import pytest

from test_reference_expected import JAVA, SETUP, TRANSPORT, Accepted, Refused, worded
from test_reference_support import (CASES, RUNNERS, java_major, reference, reference_classes,  # noqa: F401
                                    reference_pki, reference_runs)


def _major(runs, label: str) -> str:
    major = java_major(runs.version(label))
    if major not in ("17", "21"):
        pytest.skip(f"no verdicts pinned for Java {major} ({runs.version(label)})")
    return major


def _check_accepted(result: dict, want: Accepted) -> None:
    server, client = result["server"], result["client"]
    assert (result["ok"], result["protocol"], server["ok"], client["ok"]) == (True, want.protocol, True, True)
    assert tuple(server["peer_chain"]) == want.server_saw
    # The CA names come from a set: their order changes from run to run.
    assert sorted(client["requested_issuers"]) == sorted(want.requested)
    assert tuple(client["offered_chain"]) == want.offered
    assert client["peer_chain"][0].endswith("CN=primary-host")


def _check_refused(result: dict, want: Refused, major: str) -> None:
    alert = want.alert[major]
    origin = result[want.side]
    # The top of the line repeats the refusing end's verdict.
    assert {k: result[k] for k in ("ok", "side", "stage", "exception", "message")} == {
        "ok": False, "side": want.side, "stage": want.stage, "exception": want.exception,
        "message": worded(major, alert, want.message)}
    assert (origin["exception"], origin["message"], tuple(origin["causes"])) == (
        want.exception, worded(major, alert, want.message), want.causes)
    assert origin["cause"] == (want.causes[0] if want.causes else None)
    other = result["client" if want.side == "server" else "server"]
    received = (want.reaction, worded(major, alert, f"Received fatal alert: {alert}"))
    assert other["ok"] is False
    assert (other["exception"], other["message"]) in {received} | TRANSPORT
    client = result["client"]
    requested = client.get("requested_issuers")
    offered = client.get("offered_chain")
    assert (None if requested is None else sorted(requested)) == (
        None if want.requested is None else sorted(want.requested))
    assert (None if offered is None else tuple(offered)) == want.offered


@pytest.mark.parametrize("case", list(JAVA))
@pytest.mark.parametrize("runner", RUNNERS)
def test_java_pair(reference_runs, runner, case):
    major = _major(reference_runs, runner)
    result = reference_runs.result(runner, case)
    want = JAVA[case]
    if isinstance(want, Accepted):
        _check_accepted(result, want)
    else:
        _check_refused(result, want, major)


NOISE = "java.security.UnrecoverableKeyException: failed to decrypt safe contents entry: java.io.IOException: "


@pytest.mark.parametrize("case", list(SETUP))
@pytest.mark.parametrize("runner", RUNNERS)
def test_keystore_that_does_not_open(reference_runs, runner, case):
    _major(reference_runs, runner)
    result = reference_runs.result(runner, case)
    got = {k: result[k] for k in SETUP[case]}
    # A wrong password decrypts to noise: about once in 256 the padding happens to check out and the
    # JRE trips over the noise's ASN.1 instead. The message is the same; the cause names the noise.
    if got["causes"] != SETUP[case]["causes"] and len(got["causes"]) == 1 and got["causes"][0].startswith(NOISE):
        got["causes"] = SETUP[case]["causes"]
    assert got == SETUP[case]
    assert "server" not in result  # no handshake was tried


def test_every_case_is_pinned():
    assert set(JAVA) | set(SETUP) == set(CASES)
    assert not set(JAVA) & set(SETUP)


def test_standalone_server_and_client_say_what_the_pair_says(reference_runs, reference_classes, reference_pki,
                                                             tmp_path):
    """Two JVMs and a real port: the same verdicts as one JVM running both ends."""
    host = reference.HostJava()
    for case in ("good-chain", "client-leaf-only-root-trusted", "host-mismatch"):
        c = CASES[case]
        port_file = tmp_path / f"{case}.port"
        server = host.start(reference_classes, reference.server_args(reference_pki.identity(c.server), port_file))
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                assert server.poll() is None, f"the server exited {server.returncode} before listening"
                assert time.monotonic() < deadline, "the server did not listen within 30 s"
                time.sleep(0.05)
            client = host.run(reference_classes, reference.client_args(
                reference_pki.identity(c.client), "127.0.0.1", int(port_file.read_text()), c.host))
            served = host.finish(server)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate(timeout=10)
        pair = reference_runs.result("host", case)
        refusing = {"server": served, "client": client}.get(pair.get("side"))
        if pair["ok"]:
            assert (served["ok"], client["ok"], served["peer_chain"]) == (True, True, pair["server"]["peer_chain"])
        else:
            assert (refusing["side"], refusing["exception"], refusing["message"], refusing["causes"]) == (
                pair["side"], pair["exception"], pair["message"], pair["causes"])
        assert client.get("offered_chain") == pair["client"].get("offered_chain")
