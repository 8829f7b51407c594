"""Drills' decisions without a lab: which endpoints a drill acts on, and what counts as observed."""
from __future__ import annotations

import pytest

from lab import drills
from lab.errors import LabError

ROLES = {"gateway-host": "gateway", "gateway-host-2": "gateway", "pcclient-host": "client",
         "pcclient-host-2": "client", "pcclient-host-10": "client"}


def test_clients_first_the_last_added_first_then_gateways():
    assert drills.pick(ROLES, 2) == ["pcclient-host-10", "pcclient-host-2"]
    assert drills.pick(ROLES, 4) == ["pcclient-host-10", "pcclient-host-2", "pcclient-host", "gateway-host-2"]


@pytest.mark.parametrize("count", [0, 6])
def test_a_count_the_lab_cannot_give_is_one_error(count):
    with pytest.raises(LabError, match=rf"--count {count}: the lab runs 5 gateways and clients; give 1 to 5"):
        drills.pick(ROLES, count)


def record(name, decision="accepted", state="connected", reason="chain verified", seen="2026-01-02T10:00:00+00:00"):
    return {"name": name, "decision": decision, "state": state, "reason": reason, "last_seen": seen}


def test_exactly_the_revoked_refused_and_every_other_connected():
    revoked = "OCSP: Certificate has been revoked, reason: KEY_COMPROMISE"
    records = [record("a"), record("b", "refused", "disconnected", revoked), record("c")]
    seen, wrong = drills.observe(records, ["a", "b", "c"], {"b": ("refused", drills.REVOKED)})
    assert wrong == [] and seen == {"a": "accepted, connected", "b": "refused, disconnected", "c": "accepted, connected"}
    # One more refused than revoked, one revoked still in: both are reported, in the product's words.
    records[2] = record("c", "refused", "disconnected", "PKIX path building failed")
    _, wrong = drills.observe(records + [record("b", seen="2026-01-03T00:00:00+00:00")], ["a", "b", "c"], {"b": ("refused", drills.REVOKED)})
    assert wrong == [f"b: expected refused ({drills.REVOKED}), the primary says accepted, connected: chain verified",
                     "c: expected accepted and connected, the primary says refused, disconnected: PKIX path building failed"]
    _, wrong = drills.observe([], ["a"], {})
    assert wrong == ["a: expected accepted and connected, the primary says never seen, -: None"]


def test_the_report_says_each_step_and_the_verdict():
    report = drills.Report("revoke", ["b"])
    report.step("before", {"a": "accepted, connected", "b": "accepted, connected"}, [], 0.4)
    report.step("revoked", {"a": "accepted, connected", "b": "refused, disconnected"}, ["x: wrong"], 90.1)
    assert not report.ok
    assert drills.lines(report) == ["drill revoke: b", "  before: 2/2 connected (0.4 s)",
                                    "  revoked: 1/2 connected (90.1 s)", "    not as expected: x: wrong",
                                    "NOT as expected"]
