"""The endpoint judges the primary as a Java client does: the JRE's verdict on the chain the primary
sent and on the host name, taken right after the handshake and before any application byte.

A local TLS server plays the primary with certificates made by the openssl CLI; the validator is
the one test_jre_support compiles. Each test runs over Python's ssl and, where installed, pyOpenSSL.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization

from certkit.jre import ValidatorError
from certkit.jsse import PKIX
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, SERVER_EXT, Issued, OpenSSLPKI
from safeqlab import endpoint, proto
from safeqlab.endpoint import Identity, NotTrusted, Refused, Session
from safeqlab.service import StateFile
from test_jre_support import UTC, jre, jre_classes, jre_java  # noqa: F401  (fixtures)

WELCOME = b'{"type":"welcome","decision":"accepted","endpoint_id":"e1"}\n'


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Issued]:
    p = OpenSSLPKI(tmp_path_factory.mktemp("endpoint-trust"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    localhost = SERVER_EXT + "subjectAltName = DNS:localhost\n"
    return {
        "root": root, "inter": inter,
        "primary": p.issue("primary", inter, localhost),
        "primary_direct": p.issue("primary-direct", root, localhost),
        "wrong_name": p.issue("wrong-name", root, SERVER_EXT + "subjectAltName = DNS:primary-host\n"),
        # The certificate a primary with a broken keystore falls back to.
        "fallback": p.root("fallback", ext=localhost, subject="/CN=localhost"),
        "gateway": p.issue("gateway", inter, CLIENT_EXT),
    }


@pytest.fixture
def transport() -> str:
    """The endpoint's TLS layer: pyOpenSSL, which lets the JRE judge inside the handshake."""
    if endpoint.SSL is None:
        pytest.skip("pyOpenSSL is not installed here (the images have python3-openssl)")
    return "pyopenssl"


class Primary:
    """Serves ``served`` (leaf first) on 127.0.0.1; records what each connection sent after the handshake."""

    def __init__(self, served: list[Issued], client_root: Issued, tls12: bool = False, answer: str = "welcome"):
        self.answer = answer  # welcome | silent | close_notify | drop
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        chain_file = served[0].cert_path.with_suffix(".served.pem")
        chain_file.write_text("".join(i.cert_path.read_text() for i in served))
        self.ctx.load_cert_chain(chain_file, served[0].key_path)
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ctx.load_verify_locations(client_root.cert_path)
        if tls12:
            self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sni: list[str | None] = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(30)
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        self.errors: list[OSError] = []
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.server:
            try:
                conn, _ = self.server.accept()
            except TimeoutError:  # the endpoint never connected (the test says whether it should)
                return
            conn.settimeout(10)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.received.append(self._read(tls))
            except OSError as exc:  # e.g. a session ticket sent after the endpoint left: nothing came
                self.errors.append(exc)
                self.received.append(b"")
            finally:
                conn.close()
                self.done.set()

    def _read(self, tls: ssl.SSLSocket) -> bytes:
        data = b""
        try:
            while b"\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    return data
                data += chunk
            if self.answer == "silent":
                tls.recv(4096)  # until the endpoint gives up and closes
        except (ssl.SSLEOFError, ConnectionResetError):
            return data  # the endpoint closed without close_notify
        if self.answer == "welcome":
            tls.sendall(WELCOME)
        elif self.answer == "close_notify":
            tls.unwrap()
        return data

    def what_was_sent(self) -> bytes:
        assert self.done.wait(15), "the test primary saw no connection"
        return self.received[0]


def identity(pki, anchors: list[str], *, chain=("gateway", "inter")) -> Identity:
    key = serialization.load_pem_private_key(pki["gateway"].key_path.read_bytes(), None)
    return Identity("gateway-host", key, [pki[n].cert for n in chain], [pki[n].cert for n in anchors])


def session(tmp_path, port: int, ident: Identity, validator, host: str = "localhost", **kwargs) -> Session:
    return Session(host=host, port=port, role="gateway", state=StateFile(tmp_path / "state.json"),
                   log=logging.getLogger("test-endpoint-trust"), stop=threading.Event(), trusted=lambda: ident,
                   validator=validator, **kwargs)


def probe(pki, tmp_path, jre, served: list[str], anchors: list[str], **kwargs):
    primary = Primary([pki[n] for n in served], pki["root"], tls12=kwargs.pop("tls12", False))
    ok, why = session(tmp_path, primary.port, identity(pki, anchors), lambda: jre, **kwargs).probe()
    return (ok, why.replace(f":{primary.port};", ":PORT;")), primary.what_was_sent()


# --- accepted ---------------------------------------------------------------------------------------

def test_a_primary_chaining_to_an_anchor_is_accepted(pki, tmp_path, jre, transport):
    (ok, why), sent = probe(pki, tmp_path, jre, ["primary_direct"], ["root"])
    assert (ok, why) == (True, "connected to localhost:PORT; server certificate O=Fixture,CN=primary-direct issued by "
                               "O=Fixture,CN=Root, verified")
    assert sent == b'{"type":"hello","role":"gateway","name":"gateway-host"}\n'


def test_the_chain_as_sent_is_judged(pki, tmp_path, jre, transport):
    (ok, why), _ = probe(pki, tmp_path, jre, ["primary", "inter"], ["root"])
    assert ok, why


def test_a_trusted_intermediate_is_an_anchor(pki, tmp_path, jre, transport):
    (ok, why), _ = probe(pki, tmp_path, jre, ["primary"], ["inter"])
    assert ok, why


def test_under_tls12_the_key_exchange_reaches_the_jre(pki, tmp_path, jre, transport):
    asked = []

    class Spy:
        def judge(self, *args, **kwargs):
            asked.append(kwargs["auth_type"])
            return jre.judge(*args, **kwargs)
    primary = Primary([pki["primary_direct"]], pki["root"], tls12=True)
    ok, why = session(tmp_path, primary.port, identity(pki, ["root"]), Spy).probe()
    assert ok, why
    assert asked == ["ECDHE_ECDSA"]


# --- refused, in the JRE's words, before a byte is sent -----------------------------------------------

@pytest.mark.parametrize("served, anchors, reason", [
    (["fallback"], ["root"], PKIX),
    (["primary"], ["root"], PKIX),  # the intermediate not sent: no path to the root
    (["wrong_name"], ["root"], "No subject alternative DNS name matching localhost found."),
], ids=["fallback-localhost", "intermediate-missing", "host-name"])
@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_refused_inside_the_handshake_with_the_jres_reason(pki, tmp_path, jre, transport, served, anchors, reason,
                                                           tls12):
    """As a Java client: the handshake fails with certificate_unknown before our certificate or a byte is sent."""
    primary = Primary([pki[n] for n in served], pki["root"], tls12=tls12)
    ok, why = session(tmp_path, primary.port, identity(pki, anchors), lambda: jre).probe()
    assert (ok, why) == (False, jre.refusal(jre.judge([pki[n].cert for n in served], [pki["root"].cert], "server",
                                                       host="localhost")))
    assert why.endswith(reason)
    assert primary.what_was_sent() == b""
    assert [getattr(e, "reason", None) for e in primary.errors] == ["SSLV3_ALERT_CERTIFICATE_UNKNOWN"]


def test_the_service_reports_the_refusal_as_disconnected(pki, tmp_path, jre, transport):
    primary = Primary([pki["fallback"]], pki["root"])
    s = session(tmp_path, primary.port, identity(pki, ["root"]), lambda: jre)
    real_fail = s.fail

    def fail_once(state, reason):
        real_fail(state, reason)
        s.stop.set()
    s.fail = fail_once
    s.run()
    assert (s.state.data["state"], s.state.data["reason"]) == ("disconnected", PKIX)


def test_a_validator_that_cannot_answer_is_a_setup_error(pki, tmp_path, transport):
    def broken():
        raise ValidatorError("no Java runtime")
    primary = Primary([pki["primary_direct"]], pki["root"])
    ok, why = session(tmp_path, primary.port, identity(pki, ["root"]), broken).probe()
    assert (ok, why) == (False, "the primary's certificate cannot be judged: no Java runtime")
    assert not primary.done.wait(0.5)  # without a judge there is no connection at all


def test_sni_as_a_java_client_sends_it_none_for_a_name_without_a_dot_or_an_address(pki, tmp_path, jre, transport):
    primary = Primary([pki["primary_direct"]], pki["root"])
    ok, why = session(tmp_path, primary.port, identity(pki, ["root"]), lambda: jre).probe()
    assert ok, why
    assert primary.sni == [None]  # "localhost": no dot
    by_address = Primary([pki["primary_direct"]], pki["root"])
    ok, why = session(tmp_path, by_address.port, identity(pki, ["root"]), lambda: jre, host="127.0.0.1").probe()
    # As Java: no SNI for an address, and the address is looked for among the IP subjectAltNames.
    assert (ok, why) == (False, "No subject alternative names matching IP address 127.0.0.1 found")
    assert by_address.what_was_sent() == b"" and by_address.sni == [None]


# --- the gateway's extra check (OCSP) gets the chain as sent and the anchors ----------------------------

def test_peer_check_sees_the_sent_chain_and_can_refuse(pki, tmp_path, jre, transport):
    seen = []

    def check(chain, anchors):
        seen.append((chain, anchors))
        raise Refused("the primary's certificate failed the OCSP check: revoked")
    (ok, why), sent = probe(pki, tmp_path, jre, ["primary", "inter"], ["root"], check_peer=check)
    assert (ok, why) == (False, "the primary's certificate failed the OCSP check: revoked")
    assert seen == [([pki["primary"].cert, pki["inter"].cert], [pki["root"].cert])]
    assert sent == b""


# --- the transport: deadlines and a primary that goes away -------------------------------------------

def test_a_primary_that_never_answers_the_handshake_times_out(pki, tmp_path, jre, transport, monkeypatch):
    monkeypatch.setattr(endpoint, "HANDSHAKE_SECONDS", 0.5)
    mute = socket.create_server(("127.0.0.1", 0))

    def hold_then_close():  # silent for 5 s, then gone: an endpoint without a deadline fails otherwise
        with mute:
            mute.settimeout(10)
            conn, _ = mute.accept()
            time.sleep(5)
            conn.close()
    threading.Thread(target=hold_then_close, daemon=True).start()
    started = time.monotonic()
    ok, why = session(tmp_path, mute.getsockname()[1], identity(pki, ["root"]), lambda: jre).probe()
    assert (ok, why) == (False, "Read timed out")
    assert time.monotonic() - started < 3


def test_a_primary_that_never_answers_hello_times_out(pki, tmp_path, jre, transport, monkeypatch):
    monkeypatch.setattr(proto, "HEARTBEAT_SECONDS", 0.2)  # the session reads with 3 heartbeats' patience
    primary = Primary([pki["primary_direct"]], pki["root"], answer="silent")
    started = time.monotonic()
    ok, why = session(tmp_path, primary.port, identity(pki, ["root"]), lambda: jre).probe()
    assert (ok, why) == (False, "Read timed out")
    assert time.monotonic() - started < 5
    assert primary.what_was_sent().startswith(b'{"type":"hello"')


@pytest.mark.parametrize("answer", ["close_notify", "drop"])
def test_a_primary_closing_after_hello_is_a_closed_session(pki, tmp_path, jre, transport, answer):
    primary = Primary([pki["primary_direct"]], pki["root"], answer=answer)
    ok, why = session(tmp_path, primary.port, identity(pki, ["root"]), lambda: jre).probe()
    assert (ok, why) == (False, "the primary closed the session after the handshake")
