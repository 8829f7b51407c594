"""Live sessions judged again when trust changes: the JRE is asked again on what the endpoint sent."""
from __future__ import annotations

import socket

import pytest
from cryptography import x509

from certkit.build import certificate
from certkit.jre import ValidatorError, Verdict
from certkit.jsse import PKIX
from safeq_primary import live, paths
from safeq_primary.policy import Peer


def _cert(cn: str) -> x509.Certificate:
    return certificate(cn, dns_name=cn)[1]


class Registry:
    def __init__(self):
        self.updates = []

    def get(self, endpoint_id):
        return {"id": endpoint_id, "reason": "trusted-ca policy: chain verified to trusted CA CN=Old"}

    def update(self, endpoint_id, **fields):
        self.updates.append((endpoint_id, fields))


class Tls:
    def __init__(self):
        self.shut = False

    def shutdown(self, how):
        assert how == socket.SHUT_RDWR
        self.shut = True


@pytest.fixture
def account(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "SETTINGS", tmp_path / "settings.json")
    (tmp_path / "settings.json").write_text('{"certificate_policy": "trusted-ca"}')
    monkeypatch.setattr(paths, "TRUSTED_CA_DIR", tmp_path / "trusted-ca")
    monkeypatch.setattr(live, "inbound_anchors", lambda: ["anchor-now"])


def session(sessions, judge):
    leaf, inter, root = _cert("gateway-host"), _cert("Inter"), _cert("Root")
    peer = Peer(chain=(leaf, inter, root), sent=(leaf, inter), role="gateway", name="gateway-host", policy="trusted-ca")
    sess = live.Session(Tls(), "e1", peer)
    sessions.add(sess)
    return sess, peer


def test_a_refusal_by_the_jre_disconnects_in_its_words_naming_the_removed_ca(account):
    asked = []

    def judge(chain, anchors):
        asked.append((chain, anchors))
        return Verdict(ok=False, message=PKIX, certificate_exception=True)
    sessions = live.LiveSessions(Registry(), None, judge)
    sess, peer = session(sessions, judge)
    assert sessions.rejudge(removed_ca="CN=Root") == 1
    assert asked == [(list(peer.sent), ["anchor-now"])]  # what was sent, against the anchors now
    assert sess.tls.shut and sess.closed.decision == "not-trusted"
    assert sess.closed.reason == f"{PKIX} (CN=Root was removed from the Trusted CA certificates list)"


def test_still_trusted_keeps_the_session_and_records_the_new_anchor(account):
    registry = Registry()
    sessions = live.LiveSessions(registry, None, lambda chain, anchors: Verdict(ok=True, anchor="CN=Root"))
    sess, _ = session(sessions, None)
    assert sessions.rejudge() == 0 and sess.closed is None
    assert registry.updates == [("e1", {"reason": "trusted-ca policy: chain verified to trusted CA CN=Root"})]


def test_no_verdict_ends_the_session_so_its_reconnect_is_judged_afresh(account):
    def judge(chain, anchors):
        raise ValidatorError("the JRE validator failed: timed out")
    sessions = live.LiveSessions(Registry(), None, judge)
    sess, _ = session(sessions, judge)
    assert sessions.rejudge() == 1
    assert sess.closed.reason == "the JRE could not judge the chain again: the JRE validator failed: timed out"
