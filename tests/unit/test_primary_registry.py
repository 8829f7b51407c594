"""The endpoints list: lookups by id or name, consistent trust changes, refused connections kept apart."""
from __future__ import annotations

import json
import threading

import pytest

from safeq_primary import paths, registry
from safeq_primary.registry import AmbiguousName, RefusedLog, Registry
from safeqlab.records import current_record


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ENDPOINTS", tmp_path / "endpoints.json")
    return Registry()


def saved(reg) -> dict:
    return json.loads(reg.path.read_text())["endpoints"]


def test_get_by_id_or_unique_name(reg):
    gw = reg.record("AA", "10.0.0.2", name="gateway-host", role="gateway")
    assert reg.get(gw["id"]) is gw
    assert reg.get("gateway-host") is gw
    assert reg.get("nobody") is None


def test_a_shared_name_is_ambiguous_and_the_message_lists_the_ids(reg):
    first = reg.record("AA", "10.0.0.2", name="gateway-host", role="gateway")
    second = reg.record("BB", "10.0.0.2", name="gateway-host", role="gateway")
    with pytest.raises(AmbiguousName) as err:
        reg.get("gateway-host")
    assert str(err.value) == (f"name gateway-host matches 2 endpoints ({first['id']}, {second['id']}): give the id")
    assert reg.get(second["id"]) is second  # the id still works


def test_current_record_prefers_connected_then_last_seen():
    records = [
        {"id": "1", "name": "gw", "state": "disconnected", "last_seen": "2025-01-02T00:00:00+00:00"},
        {"id": "2", "name": "gw", "state": "connected", "last_seen": "2025-01-01T00:00:00+00:00"},
        {"id": "3", "name": "gw", "state": "disconnected", "last_seen": "2025-01-03T00:00:00+00:00"},
        {"id": "4", "name": "other", "state": "connected", "last_seen": "2025-01-04T00:00:00+00:00"},
    ]
    assert current_record(records, "gw")["id"] == "2"
    records[1]["state"] = "disconnected"
    assert current_record(records, "gw")["id"] == "3"
    assert current_record(records, "nobody") is None
    assert current_record([{"id": "5", "name": "gw"}, {"id": "6", "name": "gw"}], "gw")["id"] == "6"
    assert registry.current(records, "other")["id"] == "4"


def test_registry_current_uses_live_state(reg):
    old = reg.record("AA", "10.0.0.2", name="gw", role="gateway")
    new = reg.record("BB", "10.0.0.2", name="gw", role="gateway")
    reg.connected(old["id"])
    assert reg.current("gw")["id"] == old["id"]
    reg.disconnected(old["id"])
    assert reg.current("gw")["id"] in (old["id"], new["id"])  # same second: either is "last seen"


def test_trust_and_untrust_leave_no_contradiction(reg):
    ep = reg.record("AA", "10.0.0.2", name="gw", role="gateway", decision="not-trusted",
                    reason="new endpoint: not trusted until an administrator trusts it")
    trusted = reg.trust(ep["id"])
    assert (trusted["trusted"], trusted["decision"], trusted["reason"]) == (
        True, "accepted", "built-in policy: endpoint trusted by an administrator")
    assert saved(reg)[ep["id"]]["decision"] == "accepted"
    untrusted = reg.untrust(ep["id"])
    assert (untrusted["trusted"], untrusted["decision"], untrusted["reason"]) == (
        False, "not-trusted", "endpoint not trusted: untrusted by an administrator")
    assert saved(reg)[ep["id"]]["trusted"] is False
    with pytest.raises(ValueError, match="trust"):
        reg.update(ep["id"], trusted=True)
    with pytest.raises(KeyError):
        reg.trust("no-such-id")


def test_auto_trusted_then_trusted_by_hand_drops_the_auto_mark(reg):
    ep = reg.record("AA", "10.0.0.2", name="gw", trusted=True, auto_trusted=True, decision="accepted",
                    reason="built-in policy: endpoint trusted by an administrator (auto-trust)")
    assert reg.trust(ep["id"])["auto_trusted"] is False


def test_refusals_create_no_endpoint_records(reg):
    with pytest.raises(ValueError, match="RefusedLog"):
        reg.record(None, "203.0.113.9", decision="refused", reason="Empty client certificate chain", role="unknown")
    assert reg.all() == []


def test_old_refusal_records_are_dropped_on_load(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "ENDPOINTS", tmp_path / "endpoints.json")
    paths.ENDPOINTS.write_text(json.dumps({"endpoints": {
        "a": {"id": "a", "sha256": "AA", "name": "gw", "state": "connected"},
        "b": {"id": "b", "sha256": None, "name": "host-203-0-113-9.example", "role": "unknown"},
    }}))
    reg = Registry()
    assert [ep["id"] for ep in reg.all()] == ["a"]
    assert reg.get("a")["state"] == "disconnected"
    assert list(saved(reg)) == ["a"]


def test_refused_log_is_bounded_and_newest_first():
    log = RefusedLog(size=3)
    for i in range(5):
        log.add(f"10.0.0.{i}", f"reason {i}")
    recent = log.recent()
    assert [r["address"] for r in recent] == ["10.0.0.4", "10.0.0.3", "10.0.0.2"]
    assert set(recent[0]) == {"time", "address", "reason"} and recent[0]["reason"] == "reason 4"
    assert recent[0]["time"].endswith("+00:00")
    recent[0]["address"] = "changed"
    assert log.recent()[0]["address"] == "10.0.0.4"  # callers get copies


def test_refused_log_is_thread_safe():
    log = RefusedLog(size=50)
    threads = [threading.Thread(target=lambda: [log.add("a", "r") for _ in range(1000)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log.recent()) == 50


def test_readers_do_not_wait_on_the_disk(reg, monkeypatch):
    """A slow disk (fsync under load) holds up the change being written, not the admin API's reads."""
    ep = reg.record("ab" * 32, "10.0.0.2", name="gateway-host", role="gateway")
    entered, release = threading.Event(), threading.Event()
    real_write = registry.fsio.atomic_write

    def slow_write(path, data, mode):
        entered.set()
        assert release.wait(10)
        real_write(path, data, mode)
    monkeypatch.setattr(registry.fsio, "atomic_write", slow_write)
    writer = threading.Thread(target=reg.update, args=(ep["id"],), kwargs={"reason": "slow"})
    writer.start()
    assert entered.wait(5)
    done = threading.Event()
    threading.Thread(target=lambda: (reg.all(), reg.get(ep["id"]), done.set()), daemon=True).start()
    assert done.wait(2), "a read waited for the disk"
    release.set()
    writer.join(10)
    assert json.loads(paths.ENDPOINTS.read_text())["endpoints"][ep["id"]]["reason"] == "slow"


def test_the_newest_list_is_the_one_left_on_disk(reg):
    ep = reg.record("cd" * 32, "10.0.0.3", name="client", role="client")
    newer = reg._snapshot()
    older_seq, older_data = newer[0] - 1, b'{"endpoints": {}}\n'
    reg._write(*newer)
    reg._write(older_seq, older_data)  # an older snapshot finishing last does not win
    assert ep["id"] in json.loads(paths.ENDPOINTS.read_text())["endpoints"]
