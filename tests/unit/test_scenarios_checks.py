"""Judging what a lab shows (lab.scenarios.checks.match, pure) and reporting it (batch.rows, batch.junit,
runner.Outcome.ok), and the batch giving a finished child's place to the next. No lab: observations are written
out as observe.gather would return them."""
from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from lab import docker
from lab.scenarios import batch, checks, observe, runner
from lab.scenarios.checks import Check, Result

REASON = "trusted-ca policy: chain verified to trusted CA CN=Acme-CA-Root"
GW = {"endpoint": "gateway-host"}

# (check table, observation, ok, observed text)
ENDPOINT = [
    ({**GW, "decision": "accepted", "state": "connected"},
     {"decision": "accepted", "state": "connected", "reason": REASON}, True, f"accepted/connected: {REASON}"),
    ({**GW, "decision": "accepted", "state": "connected"},
     {"decision": "refused", "state": "connected", "reason": "validity check failed"}, False,
     "refused/connected: validity check failed"),
    ({**GW, "decision": "accepted", "state": "connected"},
     {"decision": "accepted", "state": "disconnected", "reason": None}, False, "accepted/disconnected"),
    ({**GW, "decision": "accept"},  # decision and state match exactly, not as substrings
     {"decision": "accepted", "state": "connected", "reason": ""}, False, "accepted/connected"),
    ({**GW, "reason": "chain verified to trusted CA"},
     {"decision": "accepted", "state": "connected", "reason": REASON}, True, f"accepted/connected: {REASON}"),
    ({**GW, "reason": "chain verified to trusted CA CN=Other"},
     {"decision": "accepted", "state": "connected", "reason": REASON}, False, f"accepted/connected: {REASON}"),
    ({**GW, "decision": "not-trusted", "reason": "not trusted"},
     {"decision": "not-trusted", "state": "disconnected"}, False, "not-trusted/disconnected"),  # no reason at all
    ({**GW, "decision": "accepted"}, None, False, "no record"),
]
STATUS = [
    ({"status": "client", "state": "connected", "icon": "grey"},
     {"state": "connected", "icon": "grey", "reason": ""}, True, "connected/grey"),
    ({"status": "client", "state": "connected", "icon": "grey"},
     {"state": "connected", "icon": "yellow", "reason": "no certificate matches"}, False,
     "connected/yellow: no certificate matches"),
    ({"status": "client", "icon": "yellow"},
     {"state": "disconnected", "icon": "yellow", "reason": "Received fatal alert: certificate_unknown"}, True,
     "disconnected/yellow: Received fatal alert: certificate_unknown"),
    ({"status": "gateway", "reason": "(certificate_unknown) Received fatal alert"},  # the gateway shows no icon
     {"state": "disconnected", "reason": "(certificate_unknown) Received fatal alert: certificate_unknown"}, True,
     "disconnected: (certificate_unknown) Received fatal alert: certificate_unknown"),
    ({"status": "gateway", "reason": "keystore password was incorrect"},
     {"state": "connected", "reason": None}, False, "connected"),
]
SERVED = [
    ({"served": "CN=primary-host"}, "CN=primary-host,O=Acme", True, "CN=primary-host,O=Acme"),
    ({"served": "CN=primary-host"}, "CN=localhost", False, "CN=localhost"),
    ({"served": "CN=localhost"}, None, False, "nothing served"),
]
LOG_TEXT = "start\nCould not load keystore a.pfx\nother\nCould not load keystore b.pfx\nend\n"
LOG = [
    ({"log": "Could not load keystore", "service": "primary", "file": "/var/log/x.log"}, LOG_TEXT, True,
     "Could not load keystore b.pfx"),
    ({"log": "keystore password was incorrect", "service": "primary", "file": "/var/log/x.log"}, LOG_TEXT, False,
     "no such line"),
    ({"log": "anything", "service": "primary", "file": "/var/log/x.log"}, "", False, "no such line"),
]
REFUSED_SEEN = [{"reason": "validity check failed (first)"}, {"reason": "Empty client certificate chain"},
                {"reason": "validity check failed (last)"}, {"reason": "OCSP: unreachable"}]
REFUSED = [
    ({"refused": "validity check failed"}, REFUSED_SEEN, True, "validity check failed (last)"),
    ({"refused": "basic constraints check failed"}, REFUSED_SEEN, False, "OCSP: unreachable"),  # the last one seen
    ({"refused": "validity check failed"}, [], False, "nothing refused"),
    ({"refused": "validity check failed"}, None, False, "nothing refused"),
]
HEALTH = [
    ({"health": "primary", "ok": True, "says": "(serving)"}, (True, "CN=primary-host (serving)"), True,
     "healthy: CN=primary-host (serving)"),
    ({"health": "primary", "ok": True}, (False, "container is not running"), False,
     "unhealthy: container is not running"),
    ({"health": "primary", "says": "(degraded)"}, (True, "CN=primary-host (serving)"), False,
     "healthy: CN=primary-host (serving)"),
    ({"health": "primary", "says": "(degraded)"}, (False, "CN=primary-host (degraded)"), True,
     "unhealthy: CN=primary-host (degraded)"),
    ({"health": "primary", "ok": False}, (False, "down"), True, "unhealthy: down"),
]


@pytest.mark.parametrize("table, observed, ok, shown",
                         ENDPOINT + STATUS + SERVED + LOG + REFUSED + HEALTH,
                         ids=[f"endpoint{i}" for i in range(len(ENDPOINT))] + [f"status{i}" for i in range(len(STATUS))]
                         + [f"served{i}" for i in range(len(SERVED))] + [f"log{i}" for i in range(len(LOG))]
                         + [f"refused{i}" for i in range(len(REFUSED))] + [f"health{i}" for i in range(len(HEALTH))])
def test_match(table, observed, ok, shown):
    check = checks.parse(table)
    result = checks.match(check, observed)
    assert (result.ok, result.observed) == (ok, shown)
    assert result.check is check


def test_a_status_that_could_not_be_read_fails():
    result = checks.match(checks.parse({"status": "gateway", "state": "connected"}), None)
    assert result.ok is False
    # The text match() prepares is "no status"; _fields answers "no record" for any None (see the report).
    assert result.observed in ("no status", "no record")


def test_parse_keeps_the_subject_and_the_wanted_values_sorted():
    check = checks.parse({"state": "connected", "endpoint": "gateway-host", "decision": "accepted"})
    assert check == Check("endpoint", "gateway-host", (("decision", "accepted"), ("state", "connected")))
    assert check.get("state") == "connected" and check.get("reason") is None
    assert check.describe() == "endpoint gateway-host: decision = 'accepted', state = 'connected'"
    log = checks.parse({"log": "Falling back", "service": "primary", "file": "/var/log/x"})
    assert log.describe() == "log Falling back: service = 'primary'"  # the file is not part of what is expected
    assert checks.parse({"status": "gateway", "reason": "x"}).describe() == "status gateway: reason ~ 'x'"
    assert checks.parse({"served": "CN=a"}).describe() == "served CN=a"


@pytest.mark.parametrize("table, message", [
    ({"endpoint": ""}, r"endpoint must be a non-empty string"),
    ({"served": 5}, r"served must be a non-empty string"),
    ({"status": "client", "decision": "accepted"}, r"a status check takes icon, reason, state; not decision"),
    ({"refused": "x", "reason": "y"}, r"a refused check takes no other key; not reason"),
    ({"log": "x", "file": "/f"}, r"a log check names the service and the file"),
])
def test_parse_refuses(table, message):
    with pytest.raises(ValueError, match=message):
        checks.parse(table)


def test_observe_look_judges_each_check_and_a_lab_error_is_observed_not_raised(monkeypatch):
    from lab.errors import LabError
    seen = {"endpoint": {"decision": "accepted", "state": "connected"}, "served": "CN=localhost"}

    def gather(check, cache):
        if check.kind == "health":
            raise LabError("the primary is not running")
        return seen[check.kind]

    monkeypatch.setattr(observe, "gather", gather)
    wanted = [checks.parse({**GW, "state": "connected"}), checks.parse({"served": "CN=primary-host"}),
              checks.parse({"health": "primary", "ok": True})]
    assert [(r.ok, r.observed) for r in observe.look(wanted)] == [
        (True, "accepted/connected"), (False, "CN=localhost"), (False, "not observable: the primary is not running")]


# -- outcomes and reports ----------------------------------------------------------------------

def _result(table: dict, ok: bool, observed: str) -> Result:
    return Result(checks.parse(table), ok, observed)


EXPECT_OK = [_result({"refused": "validity check failed"}, True, "PKIX: validity check failed"),
             _result({"status": "gateway", "reason": "certificate_unknown"}, True, "disconnected: certificate_unknown")]
BROKEN_ONE_FAILS = [_result({**GW, "decision": "accepted"}, False, "refused/disconnected: validity check failed"),
                    _result({"status": "gateway", "state": "connected"}, True, "connected")]
BROKEN_ALL_HOLD = [_result({**GW, "decision": "accepted"}, True, "accepted/connected"),
                   _result({"status": "gateway", "state": "connected"}, True, "connected")]
FIXED_OK = [_result({**GW, "decision": "accepted"}, True, "accepted/connected: chain verified"),
            _result({"status": "gateway", "state": "connected"}, True, "connected")]


def outcome(ident="gateway-expired", error=None, seconds=12.34, **phases) -> runner.Outcome:
    return runner.Outcome(ident, f"title of {ident}", phases=dict(phases), error=error, seconds=seconds)


@pytest.mark.parametrize("case, ok", [
    (outcome(expect=EXPECT_OK), True),
    (outcome(expect=EXPECT_OK, broken=BROKEN_ONE_FAILS, fixed=FIXED_OK), True),
    (outcome(expect=EXPECT_OK, broken=BROKEN_ALL_HOLD, fixed=FIXED_OK), False),  # the fix was not needed
    (outcome(expect=EXPECT_OK, broken=BROKEN_ONE_FAILS, fixed=[FIXED_OK[0], _result(GW | {"state": "x"}, False, "y")]),
     False),
    (outcome(expect=[EXPECT_OK[0], _result({"served": "CN=localhost"}, False, "CN=primary-host")]), False),
    (outcome(expect=EXPECT_OK, error="solution step `x` failed (exit 1): no"), False),
    (outcome(), False),  # no expect phase: the run never got that far
    (outcome(expect=[]), False),
    (outcome(broken=BROKEN_ONE_FAILS, fixed=FIXED_OK), False),
])
def test_outcome_ok(case, ok):
    assert case.ok is ok
    assert case.to_json()["ok"] is ok


def test_to_json_describes_each_check_with_what_was_observed():
    case = outcome(expect=EXPECT_OK, error=None, seconds=3.21)
    case.timings.update({"up": 2.04, "expect": 1.17})
    case.lab = "recycled"
    data = case.to_json()
    assert data == {"id": "gateway-expired", "title": "title of gateway-expired", "ok": True, "error": None,
                    "lab": "recycled", "seconds": 3.2, "timings": {"up": 2.0, "expect": 1.2}, "phases": {"expect": [
                        {"check": "refused validity check failed", "ok": True, "observed": "PKIX: validity check failed"},
                        {"check": "status gateway: reason ~ 'certificate_unknown'", "ok": True,
                         "observed": "disconnected: certificate_unknown"}]}}


def test_rows_a_broken_phase_with_a_failing_check_is_ok_on_every_row():
    rows = batch.rows(outcome(expect=EXPECT_OK, broken=BROKEN_ONE_FAILS, fixed=FIXED_OK).to_json())
    assert [(phase, verdict) for phase, _, _, verdict in rows] == [
        ("expect", "ok"), ("expect", "ok"), ("broken", "ok"), ("broken", "ok"), ("fixed", "ok"), ("fixed", "ok")]
    assert rows[2] == ("broken", "endpoint gateway-host: decision = 'accepted'",
                       "refused/disconnected: validity check failed", "ok")


def test_rows_a_broken_phase_where_everything_holds_is_a_mismatch_on_every_row():
    rows = batch.rows(outcome(expect=EXPECT_OK, broken=BROKEN_ALL_HOLD, fixed=FIXED_OK).to_json())
    assert [verdict for phase, _, _, verdict in rows if phase == "broken"] == ["MISMATCH", "MISMATCH"]
    assert [verdict for phase, _, _, verdict in rows if phase != "broken"] == ["ok"] * 4


def test_rows_a_failing_check_and_an_error():
    bad = outcome(expect=[EXPECT_OK[0], _result({"served": "CN=localhost"}, False, "CN=primary-host")],
                  error="the lab did not come up").to_json()
    assert batch.rows(bad) == [
        ("expect", "refused validity check failed", "PKIX: validity check failed", "ok"),
        ("expect", "served CN=localhost", "CN=primary-host", "MISMATCH"),
        ("error", "the run", "the lab did not come up", "MISMATCH")]
    assert batch.rows(outcome(error="preflight failed").to_json()) == [
        ("error", "the run", "preflight failed", "MISMATCH")]


def test_junit_one_testcase_per_scenario_failures_only_where_not_ok(tmp_path):
    outcomes = [outcome("gateway-expired", expect=EXPECT_OK, broken=BROKEN_ONE_FAILS, fixed=FIXED_OK, seconds=40).to_json(),
                outcome("gateway-not-yet-valid", expect=EXPECT_OK, broken=BROKEN_ALL_HOLD, fixed=FIXED_OK,
                        seconds=30).to_json(),
                outcome("keystore-missing", error="the lab did not come up", seconds=5.5).to_json(),
                outcome("baseline", expect=EXPECT_OK, seconds=20).to_json()]
    path = tmp_path / "junit.xml"
    batch.junit(outcomes, path)
    assert path.read_bytes().startswith(b"<?xml")
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("4", "2", "95.5")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["gateway-expired", "gateway-not-yet-valid", "keystore-missing", "baseline"]
    assert cases["gateway-expired"].find("failure") is None and cases["baseline"].find("failure") is None
    assert cases["gateway-expired"].get("time") == "40"

    failure = cases["gateway-not-yet-valid"].find("failure")
    assert failure.get("message") == ("[broken] endpoint gateway-host: decision = 'accepted' -> accepted/connected "
                                      "(MISMATCH)")
    assert failure.text.splitlines() == [
        "[broken] endpoint gateway-host: decision = 'accepted' -> accepted/connected (MISMATCH)",
        "[broken] status gateway: state = 'connected' -> connected (MISMATCH)"]
    assert cases["keystore-missing"].find("failure").get("message") == \
        "[error] the run -> the lab did not come up (MISMATCH)"

    out = cases["gateway-expired"].find("system-out").text.splitlines()
    assert out[0] == "title of gateway-expired"
    assert "[expect] refused validity check failed -> PKIX: validity check failed (ok)" in out
    assert "[broken] endpoint gateway-host: decision = 'accepted' -> refused/disconnected: validity check failed (ok)" \
        in out
    assert len(out) == 1 + 6
    assert "the lab did not come up" in cases["keystore-missing"].find("system-out").text


def test_a_scenario_that_wrote_its_outcome_frees_its_place_while_it_removes_its_lab(tmp_path, monkeypatch):
    """Two scenarios, one lab at a time: the second starts once the first wrote its outcome, not once the
    first's process (removing its lab for 1 s more) ended; the run still waits for that removal."""
    spawned, removed = {}, tmp_path / "removed"

    def spawn(scenario, lab, port, solve, timeout, reuse):
        result = tmp_path / f"{scenario.id}.json"
        script = (f"import json, pathlib, time; pathlib.Path({str(result)!r}).write_text(json.dumps("
                  f"{{'id': {scenario.id!r}, 'ok': True}})); time.sleep(1); "
                  f"open({str(removed)!r}, 'a').write({scenario.id!r} + '\\n')")
        spawned[scenario.id] = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
        return batch.Child(scenario, proc, result, time.monotonic())

    monkeypatch.setattr(batch, "_spawn", spawn)
    monkeypatch.setattr(batch, "_ports", lambda count: list(range(count)))
    monkeypatch.setattr(docker, "preflight", lambda: None)
    chosen = [SimpleNamespace(id="first", title="1"), SimpleNamespace(id="second", title="2")]
    began = time.monotonic()
    outcomes = batch.run_all(chosen, jobs=1, solve=False, timeout=60, progress=lambda outcome: None)
    assert [o["id"] for o in outcomes] == ["first", "second"]
    assert spawned["second"] - spawned["first"] < 0.9  # the first was still removing its lab
    assert removed.read_text().split() == ["first", "second"] and time.monotonic() - began >= 1


def test_a_reused_lab_takes_its_next_scenario_once_the_last_ones_process_ended(tmp_path, monkeypatch):
    """With reuse, two scenarios and one lab: the second runs in the same lab, started only once the first's
    process exited (two processes never share a lab); the lab is removed at the end of the run."""
    spawned, removed = [], []

    def spawn(scenario, lab, port, solve, timeout, reuse):
        result = tmp_path / f"{scenario.id}.json"
        script = (f"import json, pathlib, time; pathlib.Path({str(result)!r}).write_text(json.dumps("
                  f"{{'id': {scenario.id!r}, 'ok': True}})); time.sleep(1)")
        spawned.append((scenario.id, lab, port, reuse, time.monotonic()))
        proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
        return batch.Child(scenario, proc, result, time.monotonic(), lab, port)

    monkeypatch.setattr(batch, "_spawn", spawn)
    monkeypatch.setattr(batch, "_ports", lambda count: [2600 + i for i in range(count)])
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(runner, "remove", removed.append)
    shape = SimpleNamespace(intermediates=1, policy="trusted-ca")
    chosen = [SimpleNamespace(id="first", title="1", lab=shape, breaks=()),
              SimpleNamespace(id="second", title="2", lab=shape, breaks=())]
    outcomes = batch.run_all(chosen, jobs=1, solve=False, timeout=60, progress=lambda outcome: None, reuse=True)
    assert [o["id"] for o in outcomes] == ["first", "second"]
    assert [s[:4] for s in spawned] == [("first", "catalog-1", 2600, True), ("second", "catalog-1", 2600, True)]
    assert spawned[1][4] - spawned[0][4] >= 1
    assert removed == ["catalog-1"]
