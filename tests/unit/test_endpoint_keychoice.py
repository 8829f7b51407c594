"""The endpoint offers its certificate as Java's key manager would: only when the CA names of the
primary's CertificateRequest name an issuer of its chain (certkit.keychoice), learnt in the
handshake through pyOpenSSL. A pyOpenSSL server plays the primary and records what it received.
"""
from __future__ import annotations

import logging
import socket
import struct
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from certkit import keychoice
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, Issued, OpenSSLPKI
from safeqlab.endpoint import Identity, Session
from safeqlab.service import StateFile
from test_jre_support import UTC, jre, jre_classes, jre_java  # noqa: F401  (fixtures)

SSL = pytest.importorskip("OpenSSL.SSL", reason="pyOpenSSL is not installed here: the endpoint needs it to see the "
                                                "CertificateRequest (the images have python3-openssl)")

VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
WELCOME = b'{"type":"welcome","decision":"accepted","endpoint_id":"e1"}\n'


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Issued]:
    p = OpenSSLPKI(tmp_path_factory.mktemp("endpoint-keychoice"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    return {"root": root, "inter": inter, "other": p.root("OtherRoot"),
            "primary": p.issue("primary", root, SERVER_EXT + "subjectAltName = DNS:localhost\n"),
            "gateway": p.issue("gateway", inter, CLIENT_EXT)}


def key_of(issued: Issued):
    return serialization.load_pem_private_key(issued.key_path.read_bytes(), None)


class AskingPrimary:
    """Asks for a client certificate naming ``ca_names`` (subjects of those certificates) and records
    the chain it got (leaf first; [] for none), then answers hello with welcome."""

    def __init__(self, pki, ca_names: list[str], version: str, require: bool = False):
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(VERSIONS[version])
        ctx.set_max_proto_version(VERSIONS[version])
        ctx.use_certificate(pki["primary"].cert)
        ctx.use_privatekey(key_of(pki["primary"]))
        for name in ca_names:
            ctx.add_client_ca(pki[name].cert)
        mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if require else 0)
        ctx.set_verify(mode, lambda *args: True)  # any certificate: the test looks at what came
        self.ctx = ctx
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]
        self.got: list = []
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.server:
            raw, _ = self.server.accept()
        # Kernel timeouts on the blocking socket bound every read and write of the server.
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            raw.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", 10, 0))
        conn = SSL.Connection(self.ctx, raw)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            self.got.append(self._client_chain(conn))
            data = b""
            while b"\n" not in data:
                data += conn.recv(4096)
            conn.sendall(WELCOME)
        except SSL.Error as exc:  # kept for the test to look at
            self.got.append(exc)
            self._drain(raw)
        finally:
            raw.close()
            self.done.set()

    @staticmethod
    def _drain(raw: socket.socket) -> None:
        """After the alert, read until the endpoint closes: closing with its bytes unread would reset
        the connection and could destroy the alert before the endpoint reads it."""
        try:
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(4096):
                pass
        except OSError:
            return  # the kernel timeout (10 s), a reset, a socket already gone: the endpoint is gone either way

    @staticmethod
    def _client_chain(conn) -> list:
        leaf = conn.get_peer_certificate(as_cryptography=True)
        if leaf is None:
            return []
        rest = conn.get_peer_cert_chain(as_cryptography=True) or []
        return rest if rest and rest[0] == leaf else [leaf, *rest]  # the server side may leave the leaf out

    def received(self):
        assert self.done.wait(15), "the test primary saw no connection"
        return self.got[0]


def gateway_session(pki, tmp_path, port: int, jre, chain=("gateway", "inter")) -> Session:
    ident = Identity("gateway-host", key_of(pki["gateway"]), [pki[n].cert for n in chain], [pki["root"].cert])
    return Session(host="localhost", port=port, role="gateway", state=StateFile(tmp_path / "state.json"),
                   log=logging.getLogger("test-endpoint-keychoice"), stop=threading.Event(),
                   trusted=lambda: ident, validator=lambda: jre)


@pytest.fixture(params=sorted(VERSIONS))
def version(request) -> str:
    return request.param


@pytest.mark.parametrize("named", [["root"], ["inter"], [], ["other", "root"]],
                         ids=["root", "intermediate", "no-names", "other-and-root"])
def test_the_chain_is_offered_when_an_issuer_is_named(pki, tmp_path, jre, version, named):
    primary = AskingPrimary(pki, named, version)
    ok, why = gateway_session(pki, tmp_path, primary.port, jre).probe()
    assert ok, why
    assert primary.received() == [pki["gateway"].cert, pki["inter"].cert]


def test_nothing_is_offered_when_no_issuer_is_named(pki, tmp_path, jre, version, caplog):
    primary = AskingPrimary(pki, ["other"], version)
    with caplog.at_level(logging.WARNING, logger="test-endpoint-keychoice"):
        ok, why = gateway_session(pki, tmp_path, primary.port, jre).probe()
    assert ok, why  # this primary asks without requiring
    assert primary.received() == []
    assert [r.getMessage() for r in caplog.records] == [
        "No certificate sent to the primary: it accepts certificates issued by O=Fixture,CN=OtherRoot, and the chain "
        "of O=Fixture,CN=gateway names none of them as issuer"]


def test_root_named_and_the_intermediate_missing_offers_nothing(pki, tmp_path, jre, version):
    primary = AskingPrimary(pki, ["root"], version)
    ok, why = gateway_session(pki, tmp_path, primary.port, jre, chain=("gateway",)).probe()
    assert ok, why
    assert primary.received() == []


@pytest.mark.parametrize("version, alert", [("TLSv1.2", "handshake_failure"), ("TLSv1.3", "certificate_required")])
def test_a_primary_requiring_a_certificate_answers_with_an_alert(pki, tmp_path, jre, version, alert):
    primary = AskingPrimary(pki, ["other"], version, require=True)
    ok, why = gateway_session(pki, tmp_path, primary.port, jre).probe()
    # In the words of the endpoint's JRE: JRE 21 puts the alert in front, 17 does not.
    said = f"Received fatal alert: {alert}"
    assert not ok and why in (said, f"({alert}) {said}"), why
    assert isinstance(primary.received(), SSL.Error)


def test_the_note_is_logged_once_while_it_holds(pki, tmp_path, jre, caplog):
    session = None
    with caplog.at_level(logging.WARNING, logger="test-endpoint-keychoice"):
        for _ in range(2):
            primary = AskingPrimary(pki, ["other"], "TLSv1.3")
            session = session or gateway_session(pki, tmp_path, primary.port, jre)
            session.port = primary.port
            assert session.probe()[0]
    assert len(caplog.records) == 1


def test_a_request_that_cannot_be_read_fails_the_attempt(pki, tmp_path, jre, monkeypatch):
    def unreadable(der):
        raise ValueError("attribute 2.5.4.3 has a value of DER type 0x2, not a string")
    monkeypatch.setattr(keychoice, "name_from_der", unreadable)
    primary = AskingPrimary(pki, ["root"], "TLSv1.3")
    assert gateway_session(pki, tmp_path, primary.port, jre).probe() == (
        False, "the primary's certificate request cannot be read: attribute 2.5.4.3 has a value of DER type 0x2, "
               "not a string")
