"""The rotation drill's decisions without a lab: waves, the new CA's name, who drops, what counts as dropped."""
from __future__ import annotations

import pytest

from lab import rotation
from lab.errors import LabError

PKIX_TEXT = ("PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: unable to find "
             "valid certification path to requested target")


def test_waves_are_as_even_as_can_be_in_order():
    hosts = ["c3", "c2", "c1", "g2", "g1"]
    assert rotation.waves(hosts, 2) == [["c3", "c2", "c1"], ["g2", "g1"]]
    assert rotation.waves(hosts, 5) == [[h] for h in hosts]
    assert rotation.waves(hosts, 1) == [hosts]


@pytest.mark.parametrize("count", [0, 6])
def test_more_waves_than_endpoints_is_one_error(count):
    with pytest.raises(LabError, match=rf"--waves {count}: give 1 to 5"):
        rotation.waves(["a", "b", "c", "d", "e"], count)


@pytest.mark.parametrize("old, taken, new", [
    ("Acme-CA-Intermediate", ["Acme-CA-Root", "Acme-CA-Intermediate"], "Acme-CA-Intermediate-2"),
    ("Acme-CA-Intermediate-2", ["Acme-CA-Root", "Acme-CA-Intermediate", "Acme-CA-Intermediate-2"], "Acme-CA-Intermediate-3"),
    ("Issuing-1", ["Root", "Issuing-1", "issuing-2"], "Issuing-3"),  # names are file names: case does not make two
])
def test_the_new_intermediate_is_the_old_name_numbered(old, taken, new):
    assert rotation.next_name(old, taken) == new


def test_only_the_endpoints_not_moved_drop_and_only_when_the_root_is_not_trusted():
    assert rotation.expected_drops(["g1", "g2"], root_trusted=False) == {
        "g1": ("not-trusted", rotation.PKIX), "g2": ("not-trusted", rotation.PKIX)}
    assert rotation.expected_drops(["g1", "g2"], root_trusted=True) == {}


def record(name, decision="accepted", seen="2026-11-28T10:00:05+00:00", issuer="CN=New,O=Acme", state="connected"):
    return {"name": name, "decision": decision, "reason": PKIX_TEXT if decision != "accepted" else "ok",
            "last_seen": seen, "issuer": issuer, "state": state}


def test_dropped_counts_refusals_since_the_start_not_planned_restarts():
    since = "2026-11-28T10:00:00+00:00"
    records = [record("c1"), record("c1", state="disconnected", issuer="CN=Old,O=Acme"),  # a restart: still accepted
               record("g1", "not-trusted", state="disconnected"),
               record("g2", "not-trusted", seen="2026-11-28T09:59:59+00:00")]           # before the drill
    refused = [{"time": "2026-11-28T10:00:07+00:00", "address": "172.18.0.5", "reason": "Empty client certificate chain"},
               {"time": "2026-11-28T09:00:00+00:00", "address": "172.18.0.6", "reason": "old"}]
    assert rotation.dropped(records, refused, since) == [
        f"g1: not-trusted: {PKIX_TEXT}", "172.18.0.5: refused: Empty client certificate chain"]
    assert rotation.dropped([record("c1")], [], since) == []


def test_a_moved_endpoint_must_present_the_new_chain():
    records = [record("c1", issuer="CN=Old,O=Acme", state="disconnected", seen="2026-11-28T10:00:01+00:00"),
               record("c1", issuer="CN=New,O=Acme"), record("g1", issuer="CN=Old,O=Acme")]
    assert rotation.not_moved_yet(records, ["c1"], "New") == []
    assert rotation.not_moved_yet(records, ["c1", "g1"], "New") == [
        "g1: expected a certificate issued by New, the primary sees CN=Old,O=Acme"]


def test_the_report_ends_with_the_sessions_dropped_and_the_verdict():
    report = rotation.Report("rotate-intermediate", ["Old -> New"])
    report.step("before", {"a": "accepted, connected"}, [], 0.1)
    report.dropped = ["a: not-trusted: PKIX path building failed"]
    assert report.lines() == ["drill rotate-intermediate: Old -> New", "  before: 1/1 connected (0.1 s)",
                              "  sessions dropped: 1", "    a: not-trusted: PKIX path building failed",
                              "observed as expected"]


LISTING = """Keystore type: JKS
Keystore provider: SUN

Your keystore contains 3 entries

digicertglobalrootca [jdk], Apr 1, 2024, trustedCertEntry,
Certificate fingerprint (SHA-256): 43:48:A0:E9
mykey, Nov 28, 2026, trustedCertEntry,
Certificate fingerprint (SHA-256): 8C:F9:3A:39
cacert-acme-ca-root-2, Nov 28, 2026, trustedCertEntry,
Certificate fingerprint (SHA-256): A8:EB:12:35
"""


def test_the_cacerts_alias_is_found_by_fingerprint_as_keytool_lists_it():
    assert rotation.cacerts_alias(LISTING, "8C:F9:3A:39") == "mykey"
    assert rotation.cacerts_alias(LISTING, "A8:EB:12:35") == "cacert-acme-ca-root-2"
    assert rotation.cacerts_alias(LISTING, "00:11") is None


def test_a_pki_without_an_intermediate_has_none_to_rotate(tmp_path, monkeypatch):
    import pki
    from lab import drills, project, swarmlab, topology
    pki_dir = tmp_path / "pki"
    pki.init_pki(pki_dir, intermediates=0)
    monkeypatch.setattr(project, "pki_dir", lambda: pki_dir)
    monkeypatch.setattr(swarmlab, "is_swarm", lambda state=None: False)
    monkeypatch.setattr(topology, "load", lambda: None)
    monkeypatch.setattr(drills, "endpoints", lambda topo: {"gateway-host": ("gateway", "gateway")})
    with pytest.raises(LabError, match="the root Acme-CA-Root issues the entities itself .* drill rotate-root"):
        rotation.rotate_intermediate(None, 1, False, False)
