"""The lab view model (safeq_portal.labview): a pure function, tested without sockets."""
from __future__ import annotations

import pytest

from safeq_portal import labview
from safeq_portal.labview import AMBER, GREEN, GREY, RED

HOSTS = labview.parse_hosts("primary=primary-host ocsp=ocsp-host gateway=gateway-host client=pcclient-host")
SERVER = {"state": "serving", "policy": "trusted-ca", "self_check": {"ok": True, "reason": "ok"},
          "serving": {"subject": "CN=primary-host", "issuer": "CN=Issuing", "sha256": "AA:" * 31 + "AA"}}
ACCOUNT = {"certificate_policy": "trusted-ca", "auto_trust": False,
           "ocsp": {"enabled": True, "url": None, "on_failure": "fail-closed"}, "trusted_cas": []}


def ep(name, role, decision="accepted", state="connected", last_seen="2026-01-02T10:00:00+00:00", **extra):
    return {"id": f"id-{name}-{last_seen}", "name": name, "role": role, "decision": decision, "state": state,
            "last_seen": last_seen, "subject": f"CN={name}", "issuer": "CN=Issuing", "sha256": "BB:" * 31 + "BB",
            "reason": "why", **extra}


def nodes(view):
    return {n["host"]: n for n in view["nodes"]}


def test_parse_hosts_keeps_order_and_several_of_a_role():
    assert labview.parse_hosts("primary=p gateway=gw-1 gateway=gw-2 client=c junk =x y= gateway=gw-1") == [
        ("primary", "p"), ("gateway", "gw-1"), ("gateway", "gw-2"), ("client", "c")]
    assert labview.parse_hosts(None) == [] and labview.parse_hosts("") == []


@pytest.mark.parametrize("state, colour", [
    ("serving", GREEN), ("built-in", GREEN), ("degraded", AMBER), ("fallback", RED), ("something-new", AMBER)])
def test_primary_colour(state, colour):
    view = labview.model({**SERVER, "state": state}, ACCOUNT, [], [], True, HOSTS)
    assert nodes(view)["primary-host"]["colour"] == colour


def test_primary_self_check_failure_is_said():
    view = labview.model({**SERVER, "state": "degraded", "self_check": {"ok": False, "reason": "PKIX failed"}},
                         ACCOUNT, [], [], True, HOSTS)
    assert "PKIX failed" in nodes(view)["primary-host"]["detail"]


@pytest.mark.parametrize("up, colour", [(True, GREEN), (False, RED), (None, GREY)])
def test_ocsp_colour(up, colour):
    assert nodes(labview.model(SERVER, ACCOUNT, [], [], up, HOSTS))["ocsp-host"]["colour"] == colour


@pytest.mark.parametrize("enabled, words", [(True, "on"), (False, "off")])
def test_ocsp_says_whether_checks_are_on(enabled, words):
    account = {**ACCOUNT, "ocsp": {**ACCOUNT["ocsp"], "enabled": enabled}}
    node = nodes(labview.model(SERVER, account, [], [], True, HOSTS))["ocsp-host"]
    assert node["checks"] is enabled and f"OCSP checks are {words}" in node["detail"]


@pytest.mark.parametrize("record, colour", [
    (None, GREY),
    (dict(decision="accepted", state="connected"), GREEN),
    (dict(decision="accepted", state="disconnected"), AMBER),
    (dict(decision="refused", state="disconnected"), RED),
    (dict(decision="refused", state="connected"), RED),
    (dict(decision="not-trusted", state="disconnected"), RED),
    (dict(decision="accepted", state="connected", kind="built-in", trusted=False), RED),
    (dict(decision="accepted", state="connected", kind="built-in", trusted=True), GREEN),
    (dict(decision=None, state="disconnected"), AMBER),
])
def test_endpoint_colour(record, colour):
    records = [] if record is None else [ep("gateway-host", "gateway", **record)]
    view = labview.model(SERVER, ACCOUNT, records, [], True, HOSTS)
    assert nodes(view)["gateway-host"]["colour"] == colour
    link = next(l for l in view["links"] if l["from"] == "gateway-host")
    assert link == {"from": "gateway-host", "to": "primary-host", "colour": colour}


def test_the_current_record_stands_for_a_host():
    old = ep("gateway-host", "gateway", decision="refused", state="disconnected", last_seen="2026-01-01T00:00:00+00:00")
    new = ep("gateway-host", "gateway", decision="accepted", state="connected", last_seen="2025-01-01T00:00:00+00:00")
    view = labview.model(SERVER, ACCOUNT, [new, old], [], True, HOSTS)
    assert nodes(view)["gateway-host"]["colour"] == GREEN  # connected wins over seen later
    assert nodes(view)["gateway-host"]["id"] == new["id"]


@pytest.mark.parametrize("record, icon", [
    (None, "yellow"), (dict(state="connected"), "grey"), (dict(state="disconnected", decision="refused"), "yellow")])
def test_client_icon(record, icon):
    records = [] if record is None else [ep("pcclient-host", "client", **record)]
    view = labview.model(SERVER, ACCOUNT, records, [], True, HOSTS)
    assert nodes(view)["pcclient-host"]["icon"] == icon
    assert view["icon_label"] == "notification icon (as the client shows it)"
    assert "icon" not in nodes(view)["gateway-host"]


def test_endpoints_beyond_the_lab_hosts_are_shown():
    extra = ep("laptop-42", "client", state="disconnected")
    view = labview.model(SERVER, ACCOUNT, [extra, ep("gw-9", "gateway")], [], True, HOSTS)
    shown = nodes(view)
    assert shown["laptop-42"]["role"] == "client" and shown["laptop-42"]["listed"] is False
    assert shown["laptop-42"]["colour"] == AMBER and shown["laptop-42"]["icon"] == "yellow"
    assert shown["gw-9"]["role"] == "gateway" and shown["gateway-host"]["listed"] is True
    assert {l["from"] for l in view["links"]} == {"ocsp-host", "gateway-host", "pcclient-host", "laptop-42", "gw-9"}


def test_never_seen_when_the_list_lacks_the_host():
    node = nodes(labview.model(SERVER, ACCOUNT, [], [], True, HOSTS))["gateway-host"]
    assert (node["state"], node["colour"], node["certificate"]) == ("never seen", GREY, None)


def test_labels_stay_inside_the_drawing():
    view = labview.model(SERVER, ACCOUNT, [], [], True, HOSTS)
    for n in view["nodes"]:
        assert all(0 < y < view["size"]["height"] for y in n["label_y"])


def test_several_gateways_and_clients_each_get_a_place():
    hosts = labview.parse_hosts("primary=p ocsp=o gateway=gw-1 gateway=gw-2 client=c-1 client=c-2")
    view = labview.model(SERVER, ACCOUNT, [], [], True, hosts)
    places = [(n["x"], n["y"]) for n in view["nodes"]]
    assert len(set(places)) == len(places) == 6
    assert nodes(view)["p"]["x"] == view["size"]["width"] // 2
    for n in view["nodes"]:
        assert 0 < n["x"] < view["size"]["width"] and 0 < n["y"] < view["size"]["height"]


def test_admin_api_down():
    view = labview.model(None, None, None, None, False, HOSTS, api_error="the primary's admin API does not answer")
    shown = nodes(view)
    assert view["admin_api"] == {"ok": False, "error": "the primary's admin API does not answer"}
    assert shown["primary-host"]["colour"] == RED and "does not answer" in shown["primary-host"]["detail"]
    assert shown["primary-host"]["state"] == "no answer"
    assert shown["gateway-host"]["colour"] == GREY and shown["pcclient-host"]["icon"] == "yellow"
    assert shown["gateway-host"]["state"] == "unknown"  # not "never seen": nobody said so
    assert shown["ocsp-host"]["colour"] == RED and shown["ocsp-host"]["checks"] is None
    assert view["refused"] == []


def test_primary_without_a_status_while_the_rest_answers():
    view = labview.model(None, ACCOUNT, [], [], True, HOSTS, api_error="server: it is starting")
    primary = nodes(view)["primary-host"]
    assert (primary["colour"], primary["state"]) == (RED, "no status") and "starting" in primary["detail"]
    assert view["admin_api"]["ok"] is False and nodes(view)["gateway-host"]["state"] == "never seen"


def test_refused_newest_first_at_most_10():
    refused = [{"time": f"2026-01-01T10:{59 - i:02d}:00+00:00", "address": f"10.0.0.{i}", "reason": "r", "x": 1}
               for i in range(15)]
    view = labview.model(SERVER, ACCOUNT, [], refused, True, HOSTS)
    assert [r["address"] for r in view["refused"]] == [f"10.0.0.{i}" for i in range(10)]
    assert set(view["refused"][0]) == {"time", "address", "reason"}


def test_certificates_shown_with_a_short_sha256():
    view = labview.model(SERVER, ACCOUNT, [ep("gateway-host", "gateway")], [], True, HOSTS)
    cert = nodes(view)["primary-host"]["certificate"]
    assert cert["subject"] == "CN=primary-host" and cert["sha256"] == SERVER["serving"]["sha256"]
    assert SERVER["serving"]["sha256"].startswith(cert["sha256_short"].rstrip("…"))
    assert len(cert["sha256_short"]) < len(cert["sha256"])
    assert nodes(view)["gateway-host"]["certificate"]["subject"] == "CN=gateway-host"
    assert nodes(view)["ocsp-host"]["certificate"] is None
