"""An endpoint's kept acceptances (certkit.verdicts.KeptAcceptances): a service started again asks
its JRE nothing it already accepted for the very same question, JRE and day; anything else is asked."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from certkit.jre import Verdict
from certkit.verdicts import KeptAcceptances, jre_identity
from support.fixtures_openssl import CA_EXT, SERVER_EXT, OpenSSLPKI

UTC = dt.timezone.utc
NOON = dt.datetime(2027, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = OpenSSLPKI(tmp_path_factory.mktemp("kept-pki"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    leaf = p.issue("primary-host", inter, SERVER_EXT, start="20250101000000Z", end="20300101000000Z")
    return {"root": root.cert, "inter": inter.cert, "leaf": leaf.cert, "other": p.root("Other").cert}


@pytest.fixture
def jdk(tmp_path):
    """A java.home as the identity reads it: bin/java, conf/security, lib/security, release; the classes."""
    home = tmp_path / "jdk"
    for folder in ("bin", "conf/security", "lib/security"):
        (home / folder).mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "bin" / "java").chmod(0o755)
    (home / "conf" / "security" / "java.security").write_text("jdk.certpath.disabledAlgorithms=MD2\n")
    (home / "lib" / "security" / "cacerts").write_bytes(b"cacerts")
    (home / "release").write_text('JAVA_VERSION="21.0.13"\n')
    (tmp_path / "classes").mkdir()
    (tmp_path / "classes" / "Main.class").write_bytes(b"\xca\xfe")
    (tmp_path / "override.security").write_text("jdk.tls.disabledAlgorithms=SSLv3\n")
    return home


class Asked:
    """A validator that accepts (or refuses) and counts what it was asked."""

    def __init__(self, cmd, pki, ok=True):
        self.cmd, self.pki, self.ok, self.asked = cmd, pki, ok, []

    def judge(self, chain, anchors, mode, host=None, auth_type="UNKNOWN"):
        self.asked.append((mode, host, auth_type))
        if not self.ok:
            return Verdict(ok=False, exception="java.security.cert.CertificateException", message="No name matching")
        path = (self.pki["leaf"], self.pki["inter"], self.pki["root"])
        return Verdict(ok=True, anchor="O=Fixture,CN=Root", path=path)


def command(jdk, *extra):
    return [str(jdk / "bin" / "java"), *extra, "-cp", str(jdk.parent / "classes"), "pkixjudge.Main"]


def ask(kept, pki, host="primary-host", auth_type="UNKNOWN", anchors=None):
    return kept.judge([pki["leaf"], pki["inter"]], anchors or [pki["root"]], "server", host=host, auth_type=auth_type)


def restarted(validator, path, when=NOON):
    return KeptAcceptances(validator, path, clock=lambda: when)


def test_an_acceptance_is_kept_across_a_restart(jdk, pki, tmp_path):
    kept_file = tmp_path / "chain-verdicts.json"
    first = Asked(command(jdk), pki)
    verdict = ask(restarted(first, kept_file), pki)
    again = Asked(command(jdk), pki)
    service = restarted(again, kept_file)
    assert service.holds_any()
    kept = ask(service, pki)
    assert (len(first.asked), again.asked) == (1, [])
    assert (kept.ok, kept.anchor, kept.path) == (True, verdict.anchor, verdict.path)
    assert oct(kept_file.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("change", ["host", "key exchange", "anchors", "java.security", "cacerts", "release",
                                    "classes", "override", "JVM options variable", "the next day",
                                    "past the path's validity"])
def test_any_other_question_jre_or_time_is_asked(jdk, pki, tmp_path, monkeypatch, change):
    kept_file = tmp_path / "chain-verdicts.json"
    ask(restarted(Asked(command(jdk, "-Djava.security.properties=" + str(tmp_path / "override.security")), pki),
                  kept_file), pki)
    cmd, when, kwargs = command(jdk, "-Djava.security.properties=" + str(tmp_path / "override.security")), NOON, {}
    if change == "host":
        kwargs["host"] = "primary-host.example"
    elif change == "key exchange":
        kwargs["auth_type"] = "ECDHE_ECDSA"
    elif change == "anchors":
        kwargs["anchors"] = [pki["root"], pki["other"]]
    elif change == "java.security":
        (jdk / "conf" / "security" / "java.security").write_text("jdk.certpath.disabledAlgorithms=MD2, SHA256\n")
    elif change == "cacerts":
        (jdk / "lib" / "security" / "cacerts").write_bytes(b"other")
    elif change == "release":
        (jdk / "release").write_text('JAVA_VERSION="21.0.14"\n')
    elif change == "classes":
        (tmp_path / "classes" / "Main.class").write_bytes(b"\xca\xfe\xba\xbe")
    elif change == "override":
        (tmp_path / "override.security").write_text("jdk.tls.disabledAlgorithms=SSLv3, TLSv1\n")
    elif change == "JVM options variable":
        monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Dcom.sun.net.ssl.checkRevocation=true")
    elif change == "the next day":
        when = NOON + dt.timedelta(days=1)
    else:
        when = dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)
    again = Asked(cmd, pki)
    ask(restarted(again, kept_file, when), pki, **kwargs)
    assert len(again.asked) == 1


def test_a_refusal_is_asked_every_time(jdk, pki, tmp_path):
    kept_file = tmp_path / "chain-verdicts.json"
    refusing = Asked(command(jdk), pki, ok=False)
    assert not ask(restarted(refusing, kept_file), pki).ok
    again = Asked(command(jdk), pki, ok=False)
    service = restarted(again, kept_file)
    assert not service.holds_any()
    assert not ask(service, pki).ok and len(again.asked) == 1


def test_a_client_chain_or_a_jre_not_found_here_is_never_kept(jdk, pki, tmp_path):
    kept_file = tmp_path / "chain-verdicts.json"
    first = restarted(Asked(command(jdk), pki), kept_file)
    first.judge([pki["leaf"], pki["inter"]], [pki["root"]], "client")
    assert not kept_file.exists()
    elsewhere = Asked(["/nonexistent/bin/java", "-cp", "x", "pkixjudge.Main"], pki)
    assert jre_identity(elsewhere.cmd) is None
    for _ in range(2):
        ask(restarted(elsewhere, kept_file), pki)
    assert len(elsewhere.asked) == 2 and not kept_file.exists()


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"k": 1}'])
def test_a_damaged_file_is_not_trusted_and_written_anew(jdk, pki, tmp_path, damage):
    kept_file = tmp_path / "chain-verdicts.json"
    kept_file.write_text(damage)
    asked = Asked(command(jdk), pki)
    assert ask(restarted(asked, kept_file), pki).ok and len(asked.asked) == 1
    assert all(entry["jre"] for entry in json.loads(kept_file.read_text()).values())


def test_an_entry_tampered_with_is_asked_again(jdk, pki, tmp_path):
    kept_file = tmp_path / "chain-verdicts.json"
    ask(restarted(Asked(command(jdk), pki), kept_file), pki)
    entries = json.loads(kept_file.read_text())
    for entry in entries.values():
        entry["ends"] = "not a time"
    kept_file.write_text(json.dumps(entries))
    again = Asked(command(jdk), pki)
    assert ask(restarted(again, kept_file), pki).ok and len(again.asked) == 1


def test_a_file_that_cannot_be_read_or_written_only_means_asking_the_jre(jdk, pki, tmp_path):
    kept_file = tmp_path / "chain-verdicts.json"
    kept_file.mkdir()  # neither readable nor replaceable as a file
    for _ in range(2):
        asked = Asked(command(jdk), pki)
        service = restarted(asked, kept_file)
        assert not service.holds_any()
        assert ask(service, pki).ok and len(asked.asked) == 1
