"""A server's remembered acceptances (certkit.verdicts) and its fixed anchor sets (jre.Anchors):
the JRE is asked again whenever its answer could differ."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from certkit.jre import Anchors, Validator, Verdict
from certkit.verdicts import AcceptedChains, window
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, OpenSSLPKI
from test_jre_process import RECORDS, _fake
from test_jre_support import jre, jre_classes, jre_java  # noqa: F401  (fixtures)

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = OpenSSLPKI(tmp_path_factory.mktemp("remembered-pki"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    return {
        "root": root.cert, "inter": inter.cert, "other": p.root("Other").cert,
        "leaf": p.issue("leaf", inter, CLIENT_EXT, start="20250101000000Z", end="20300101000000Z").cert,
        "second": p.issue("second", inter, CLIENT_EXT).cert,
        "future": p.issue("future", inter, CLIENT_EXT, start="20990101000000Z", end="21000101000000Z").cert,
    }


class Counting:
    """The real JRE validator, counting the verdicts it was asked for."""

    def __init__(self, validator):
        self.validator, self.asked = validator, 0

    def judge(self, chain, anchors, mode, **kw):
        self.asked += 1
        return self.validator.judge(chain, anchors, mode, **kw)


def at(year: int):
    return lambda: dt.datetime(year, 6, 1, tzinfo=UTC)


def test_an_accepted_chain_is_asked_once_while_its_path_is_valid(jre, pki):
    counting = Counting(jre)
    judge = AcceptedChains(counting, Anchors([pki["root"]]), "client", clock=at(2027))
    verdicts = [judge([pki["leaf"], pki["inter"]]) for _ in range(3)]
    assert all(v.ok and v.anchor == "O=Fixture,CN=Root" for v in verdicts)
    assert counting.asked == 1
    judge([pki["second"], pki["inter"]])  # another chain is the JRE's to judge
    assert counting.asked == 2


def test_outside_the_path_validity_the_jre_is_asked_again(jre, pki):
    counting = Counting(jre)
    now = [dt.datetime(2027, 6, 1, tzinfo=UTC)]
    judge = AcceptedChains(counting, Anchors([pki["root"]]), "client", clock=lambda: now[0])
    assert judge([pki["leaf"], pki["inter"]]).ok
    assert window([pki["leaf"], pki["inter"], pki["root"]])[1] == dt.datetime(2030, 1, 1, tzinfo=UTC)
    now[0] = dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)  # the leaf expired a second ago
    judge([pki["leaf"], pki["inter"]])
    assert counting.asked == 2


def test_refusals_are_asked_every_time(jre, pki):
    counting = Counting(jre)
    judge = AcceptedChains(counting, Anchors([pki["other"]]), "client")
    verdicts = [judge([pki["leaf"], pki["inter"]]) for _ in range(2)]
    assert [v.ok for v in verdicts] == [False, False]
    assert verdicts[0].message.startswith("PKIX path building failed")
    assert counting.asked == 2
    not_yet = AcceptedChains(counting, Anchors([pki["root"]]), "client")
    assert not not_yet([pki["future"], pki["inter"]]).ok  # valid from 2099: refused today, asked again later
    assert counting.asked == 3


class Fixed:
    """A stand-in whose verdict is set by the test."""

    def __init__(self, verdict: Verdict):
        self.verdict, self.asked = verdict, 0

    def judge(self, chain, anchors, mode, **kw):
        self.asked += 1
        return self.verdict


def test_a_refusal_after_an_acceptance_is_not_covered_up_and_the_oldest_is_forgotten(pki):
    ok = Verdict(ok=True, anchor="O=Fixture,CN=Root", path=(pki["leaf"], pki["inter"], pki["root"]))
    fixed = Fixed(ok)
    judge = AcceptedChains(fixed, Anchors([pki["root"]]), "client", kept=1, clock=at(2027))
    judge([pki["leaf"]])
    judge([pki["second"]])  # only one kept: the first is forgotten
    judge([pki["leaf"]])
    assert fixed.asked == 3
    fixed.verdict = Verdict(ok=True)  # no validated path: nothing bounds it, nothing is kept
    judge([pki["inter"]])
    judge([pki["inter"]])
    assert fixed.asked == 5


def test_fixed_anchors_cross_the_pipe_once_and_are_not_looked_up_by_their_certificates(tmp_path, pki, monkeypatch):
    seen = tmp_path / "requests.jsonl"
    anchors = Anchors([pki["root"], pki["other"]])
    with Validator(_fake(tmp_path, RECORDS, str(seen))) as fake:
        monkeypatch.setattr(fake, "_anchor_sets", None)  # a lookup in the per-list table would fail
        for _ in range(3):
            assert fake.judge([pki["leaf"]], anchors, "client").ok
        requests = [json.loads(line) for line in seen.read_text().splitlines()]
    assert ["anchors" in r for r in requests] == [True, False, False]
    assert len(requests[0]["anchors"]) == 2 and len({r["anchors_ref"] for r in requests}) == 1
