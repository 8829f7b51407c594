"""certkit.jsse: what the endpoints report for failures the JRE's trust manager does not decide
(alerts, transport errors) and JSSE's authType for the negotiated suite."""
from __future__ import annotations

import socket
import ssl
import threading

import pytest

from certkit.jsse import EMPTY_CHAIN, PKIX, REPORTED, UNRECOGNIZED, auth_type, java_reason, reported, tls_reason
from support.fixtures_openssl import OpenSSLPKI
from certkit.openssl import TLSFailure


def ssl_error(reason: str) -> ssl.SSLError:
    """An SSLError as Python's ssl raises it (reason: OpenSSL's code name)."""
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


# --- alerts, by their name, from both spellings OpenSSL's reason comes in ----------------------

ALERTS = [
    ("TLSV1_ALERT_UNKNOWN_CA", "tlsv1 alert unknown ca", "unknown_ca"),
    ("SSLV3_ALERT_BAD_CERTIFICATE", "sslv3 alert bad certificate", "bad_certificate"),
    ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "tlsv13 alert certificate required", "certificate_required"),
    ("SSLV3_ALERT_HANDSHAKE_FAILURE", "sslv3 alert handshake failure", "handshake_failure"),
    ("SSLV3_ALERT_CERTIFICATE_UNKNOWN", "sslv3 alert certificate unknown", "certificate_unknown"),
    ("TLSV1_ALERT_PROTOCOL_VERSION", "tlsv1 alert protocol version", "protocol_version"),
    ("TLSV1_UNRECOGNIZED_NAME", "tlsv1 unrecognized name", "unrecognized_name"),
]


@pytest.mark.parametrize("python_name, words, alert", ALERTS)
def test_alerts_in_the_jres_words_as_each_jre_says_them(python_name, words, alert):
    said = f"Received fatal alert: {alert}"
    for exc in (ssl_error(python_name), TLSFailure(words)):  # Python's ssl; pyOpenSSL as the endpoint reraises it
        assert java_reason(exc) == said
        assert java_reason(exc, "17.0.15") == said
        assert java_reason(exc, "21.0.13") == f"({alert}) {said}"
    assert tls_reason(words) == said


@pytest.mark.parametrize("python_name, words, java", [
    ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "peer did not return a certificate", EMPTY_CHAIN),
    ("WRONG_VERSION_NUMBER", "wrong version number", UNRECOGNIZED),
    ("HTTP_REQUEST", "http request", UNRECOGNIZED),
])
def test_other_tls_failures_in_jsse_words_with_openssls_in_brackets(python_name, words, java):
    expected = f"{java} (openssl: {words})"
    assert java_reason(ssl_error(python_name)) == expected
    assert java_reason(TLSFailure(words), "21.0.13") == expected
    assert tls_reason(words) == expected


@pytest.mark.parametrize("words", ["ssl/tls alert handshake failure", "tls alert handshake failure"],
                         ids=["openssl-3", "openssl-4"])
def test_newer_openssl_alert_words(words):
    assert tls_reason(words) == "Received fatal alert: handshake_failure"


def test_openssls_spelling_of_an_alert_becomes_the_rfcs():
    assert tls_reason("tlsv1 alert user cancelled") == "Received fatal alert: user_canceled"


def test_a_local_handshake_failure_is_no_alert():
    assert tls_reason("ssl handshake failure") == "TLS error (openssl: ssl handshake failure)"


def test_unknown_tls_failures_keep_openssls_words():
    assert java_reason(ssl_error("BAD_ECPOINT")) == "TLS error (openssl: bad ecpoint)"
    assert tls_reason("tlsv1 alert no such thing") == "TLS error (openssl: tlsv1 alert no such thing)"
    bare = ssl.SSLError(1, "handshake went wrong")  # no reason code
    assert java_reason(bare) == "TLS error (openssl: handshake went wrong)"


def test_the_table_is_keyed_by_alert_name_reason_words_and_exception_class():
    assert reported("tlsv1 alert unknown ca") == "unknown_ca"
    assert reported("peer did not return a certificate") == "peer did not return a certificate"
    assert REPORTED["unknown_ca"] == "Received fatal alert: unknown_ca"
    assert REPORTED[TimeoutError] == "Read timed out"


@pytest.mark.parametrize("exc, expected", [
    (TimeoutError("timed out"), "Read timed out"),
    (socket.timeout("timed out"), "Read timed out"),
    (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
    (ConnectionResetError(104, "Connection reset by peer"), "Connection reset by peer"),
    (OSError("no strerror"), "no strerror"),
])
def test_transport_errors(exc, expected):
    assert java_reason(exc) == expected


# --- real events ------------------------------------------------------------------------------------

def test_a_closed_port_is_connection_refused():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(OSError) as err:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    assert java_reason(err.value) == "Connection refused"


def test_a_peer_that_is_not_tls_is_an_unrecognized_message():
    with socket.create_server(("127.0.0.1", 0)) as server:
        def answer_http():
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        threading.Thread(target=answer_http, daemon=True).start()
        ctx = ssl.create_default_context()
        with socket.create_connection(server.getsockname(), timeout=5) as raw, pytest.raises(ssl.SSLError) as err:
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert java_reason(err.value) == f"{UNRECOGNIZED} (openssl: wrong version number)"


# --- authType --------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, cipher, expected", [
    ("TLSv1.3", "TLS_AES_256_GCM_SHA384", "UNKNOWN"),
    ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", "UNKNOWN"),
    ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE_ECDSA"),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE_RSA"),
    ("TLSv1.2", "DHE-RSA-AES256-GCM-SHA384", "DHE_RSA"),
    ("TLSv1.2", "ECDH-ECDSA-AES128-SHA", "ECDH_ECDSA"),
    ("TLSv1.2", "AES128-GCM-SHA256", "RSA"),
    ("TLSv1.2", "ECDHE-PSK-AES128-CBC-SHA256", "UNKNOWN"),
    ("TLSv1.2", "ADH-AES128-SHA", "UNKNOWN"),
    (None, None, "UNKNOWN"),
])
def test_auth_type_from_the_negotiated_suite(version, cipher, expected):
    assert auth_type(version, cipher) == expected


@pytest.mark.parametrize("key, expected", [("ec", "ECDHE_ECDSA"), ("rsa:2048", "ECDHE_RSA")])
def test_tls12_key_exchange_follows_the_servers_key(tmp_path, key, expected):
    from certkit.jsse import ecdhe_auth_type
    p = OpenSSLPKI(tmp_path)
    assert ecdhe_auth_type(p.root("Server", key=key).cert) == expected


@pytest.mark.parametrize("version, major", [("21.0.13", 21), ("17.0.15", 17), ("1.8.0_402", 8), ("25-ea", 25),
                                            (None, 0), ("", 0)])
def test_java_major_reads_every_version_scheme(version, major):
    from certkit.jsse import handshake_message, java_major
    assert java_major(version) == major
    said = handshake_message("certificate_unknown", "PKIX path building failed", version)
    assert said == ("(certificate_unknown) PKIX path building failed" if major >= 21 else "PKIX path building failed")


@pytest.mark.parametrize("host, sni", [("primary-host", None), ("safeq.corp.example", "safeq.corp.example"),
                                       ("localhost", None), ("10.0.0.5", None), ("[::1]", None),
                                       ("host.example.", None), (".example", None)])
def test_sni_is_sent_as_java_sends_it(host, sni):
    from certkit.jsse import java_sni
    assert java_sni(host) == sni
