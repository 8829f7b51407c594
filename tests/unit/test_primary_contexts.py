"""The primary's server context: rebuilt, with no remembered verdicts, when what it trusts changes."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

pytest.importorskip("OpenSSL")

from certkit.verdicts import AcceptedChains  # noqa: E402
from safeq_primary import account, paths  # noqa: E402
from safeq_primary.contexts import Contexts  # noqa: E402
from support.fixtures_openssl import CA_EXT, SERVER_EXT, OpenSSLPKI  # noqa: E402
from test_primary_state import primary_state  # noqa: E402,F401  (fixture)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = OpenSSLPKI(tmp_path_factory.mktemp("contexts-pki"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    server = p.issue("primary-host", inter, SERVER_EXT + "subjectAltName = DNS:primary-host\n")
    return {"root": root, "other": p.root("Other"), "inter": inter, "server": server}


@pytest.fixture
def contexts(primary_state, monkeypatch, pki):
    monkeypatch.setattr(paths, "STATUS", primary_state / "status.json")
    monkeypatch.setattr(paths, "SYSTEM_BUNDLE", primary_state / "no-public-bundle.pem")
    account.update(certificate_policy="trusted-ca")
    account.import_cas([("root.pem", pki["root"].cert_path.read_bytes())])
    key = load_pem_private_key(pki["server"].key_path.read_bytes(), None)
    chain = [pki["server"].cert, pki["inter"].cert]
    return Contexts((key, chain, {"state": "loaded"}), (key, chain), registry=None, validator=object())


def anchors_of(server_tls) -> list[str]:
    assert isinstance(server_tls.judge, AcceptedChains)
    return sorted(a.subject.rfc4514_string() for a in server_tls.judge.anchors)


def test_the_same_context_while_nothing_changes_a_new_one_for_each_change(contexts, pki, primary_state):
    first, policy = contexts.current()
    assert policy == "trusted-ca" and contexts.current()[0] is first
    assert anchors_of(first) == ["O=Fixture,CN=Root"]
    (paths.TRUSTED_CA_DIR / ".editor-swap.pem").write_text("x")  # not part of the list, as glob("*.pem")
    (paths.TRUSTED_CA_DIR / "notes.txt").write_text("x")
    assert contexts.current()[0] is first
    account.import_cas([("other.pem", pki["other"].cert_path.read_bytes())])
    second = contexts.current()[0]
    assert second is not first and second.judge is not first.judge  # nothing remembered carries over
    assert anchors_of(second) == ["O=Fixture,CN=Other", "O=Fixture,CN=Root"]
    account.remove_ca("Other")
    third = contexts.current()[0]
    assert third is not second and anchors_of(third) == ["O=Fixture,CN=Root"]


def test_a_trusted_ca_file_rewritten_in_place_is_a_change(contexts, pki):
    first = contexts.current()[0]
    [path] = paths.TRUSTED_CA_DIR.glob("*.pem")
    stat = path.stat()
    path.write_bytes(pki["other"].cert_path.read_bytes())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert anchors_of(contexts.current()[0]) == ["O=Fixture,CN=Other"]
    assert contexts.current()[0] is not first
