"""Connection caps and overall deadlines for unauthenticated peers (no server needed)."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

import pytest

from safeq_primary.limits import ConnectionGate, Deadlines


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_gate_caps_per_address_and_in_all():
    gate = ConnectionGate(max_total=5, max_per_address=3)
    assert all(gate.admit("10.0.0.1") for _ in range(3))
    assert not gate.admit("10.0.0.1")
    assert gate.admit("10.0.0.2") and gate.admit("10.0.0.2")
    assert not gate.admit("10.0.0.3")  # 5 in all
    assert gate.counts() == {"total": 5, "per_address": {"10.0.0.1": 3, "10.0.0.2": 2}}
    gate.release("10.0.0.1")
    assert gate.admit("10.0.0.3")
    for _ in range(2):
        gate.release("10.0.0.2")
    assert gate.counts() == {"total": 3, "per_address": {"10.0.0.1": 2, "10.0.0.3": 1}}


def test_release_without_admit_is_an_error():
    with pytest.raises(ValueError):
        ConnectionGate().release("10.0.0.9")


def test_refusals_are_logged_once_per_address_per_10_s(caplog):
    clock = Clock()
    gate = ConnectionGate(max_total=100, max_per_address=1, clock=clock)
    assert gate.admit("10.0.0.1") and gate.admit("10.0.0.2")
    with caplog.at_level(logging.WARNING, logger="safeq-cloud-server"):
        for _ in range(50):
            assert not gate.admit("10.0.0.1")
        assert not gate.admit("10.0.0.2")
        clock.now += 9.9
        assert not gate.admit("10.0.0.1")
        clock.now += 0.2
        assert not gate.admit("10.0.0.1")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Refused connection from 10.0.0.1: 1 unauthenticated connections already open (limit 1 per address, 100 in all)",
        "Refused connection from 10.0.0.2: 1 unauthenticated connections already open (limit 1 per address, 100 in all)",
        "Refused connection from 10.0.0.1: 1 unauthenticated connections already open (limit 1 per address, 100 in all)",
    ]


def test_gate_is_thread_safe():
    gate = ConnectionGate(max_total=10_000, max_per_address=10_000)

    def churn():
        for _ in range(2000):
            assert gate.admit("a")
            gate.release("a")
        for _ in range(500):
            assert gate.admit("a")
    threads = [threading.Thread(target=churn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gate.counts() == {"total": 4000, "per_address": {"a": 4000}}


@pytest.fixture
def stop():
    event = threading.Event()
    yield event
    event.set()


def _blocked_recv(sock):
    """Run sock.recv in a thread; returns (thread, result list)."""
    out = []

    def run():
        try:
            out.append(sock.recv(10))
        except OSError as exc:
            out.append(exc)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_reaper_wakes_a_blocked_reader_after_its_deadline(stop):
    deadlines = Deadlines(stop)
    a, b = socket.socketpair()
    a.settimeout(10)
    with a, b:
        start = time.monotonic()
        deadlines.add(a, 0.5)
        t, out = _blocked_recv(a)
        t.join(3)
        took = time.monotonic() - start
        assert not t.is_alive()
        assert out == [b""]
        assert 0.45 < took < 1.2
        assert deadlines.pending() == 0


def test_cancelled_deadline_leaves_the_socket_alone(stop):
    deadlines = Deadlines(stop)
    a, b = socket.socketpair()
    a.settimeout(10)
    with a, b:
        token = deadlines.add(a, 0.3)
        deadlines.cancel(token)
        deadlines.cancel(token)  # twice is harmless
        t, out = _blocked_recv(a)
        time.sleep(0.9)
        assert t.is_alive()
        assert deadlines.pending() == 0
        b.sendall(b"still here")
        t.join(3)
        assert out == [b"still here"]


def test_reaper_survives_closed_sockets_and_stops_with_the_event():
    stop = threading.Event()
    deadlines = Deadlines(stop, tick=0.05)
    a, b = socket.socketpair()
    a.close()
    deadlines.add(a, 0)
    c, d = socket.socketpair()
    with c, d:
        deadlines.add(c, 0.1)
        t, out = _blocked_recv(c)
        t.join(2)
        assert out == [b""]
    b.close()
    stop.set()
    deadlines._thread.join(1)
    assert not deadlines._thread.is_alive()


def test_reaper_keeps_the_tls_object_of_an_ssl_socket(stop):
    """SSLSocket.shutdown() would drop the TLS object under its user; the reaper must not."""
    deadlines = Deadlines(stop)
    a, b = socket.socketpair()
    with a, b:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_socket(a, do_handshake_on_connect=False,
                                                                  server_hostname="x")
        with tls:
            deadlines.add(tls, 0)
            time.sleep(0.6)
            assert tls._sslobj is not None
            with pytest.raises(OSError):
                tls.do_handshake()


def test_a_tls_connection_is_reaped_through_its_socket_and_the_reaper_lives_on(stop):
    """The primary's TLS connections (certkit.openssl) are not sockets: their ``raw`` one is shut down."""
    class Tls:
        def __init__(self, raw):
            self.raw = raw
    deadlines = Deadlines(stop, tick=0.05)
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    a.settimeout(10)
    c.settimeout(10)
    with a, b, c, d:
        deadlines.add(Tls(a), 0.1)
        t, out = _blocked_recv(a)
        t.join(3)
        assert out == [b""]
        deadlines.add(c, 0.1)  # the reaper still works after it
        t2, out2 = _blocked_recv(c)
        t2.join(3)
        assert out2 == [b""] and deadlines._thread.is_alive()
