"""The JSON-lines reader the primary uses for what unauthenticated peers send."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from safeqlab import proto


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    yield a, b
    a.close()
    b.close()


def test_reads_messages_one_by_one(pair):
    a, b = pair
    b.sendall(b'{"type":"hello","name":"x"}\n{"type":"heartbeat"}\n')
    reader = proto.Reader(a)
    assert reader.read() == {"type": "hello", "name": "x"}
    assert reader.read(deadline=time.monotonic() + 1) == {"type": "heartbeat"}
    b.close()
    assert reader.read() is None


def test_drip_feed_hits_the_overall_deadline(pair):
    a, b = pair
    stop = threading.Event()

    def drip():
        for byte in b'{"type":"hello","name":"' + b"x" * 100:
            if stop.wait(0.1):
                return
            try:
                b.sendall(bytes([byte]))
            except OSError:
                return
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    start = time.monotonic()
    with pytest.raises(proto.ProtocolError, match=r"no complete message within 1 s"):
        proto.Reader(a).read(deadline=start + 1.0)
    took = time.monotonic() - start
    stop.set()
    t.join()
    assert 0.9 < took < 2.0
    assert a.gettimeout() == 5  # the caller's timeout is put back


def test_silence_hits_the_deadline_too(pair):
    a, _ = pair
    with pytest.raises(proto.DeadlineExceeded):
        proto.Reader(a).read(deadline=time.monotonic() + 0.3)


def test_without_deadline_the_socket_timeout_applies_per_recv(pair):
    a, _ = pair
    a.settimeout(0.2)
    with pytest.raises(TimeoutError):
        proto.Reader(a).read()


def test_size_cap_keeps_the_buffer_bounded(pair):
    a, b = pair
    reader = proto.Reader(a)
    sizes = []
    real_recv = a.recv

    class Spy:
        def recv(self, n):
            sizes.append(len(reader.buf))
            return real_recv(n)

        def gettimeout(self):
            return a.gettimeout()

        def settimeout(self, t):
            a.settimeout(t)
    reader.sock = Spy()
    threading.Thread(target=lambda: b.sendall(b"x" * (proto.MAX_LINE * 3)), daemon=True).start()
    with pytest.raises(proto.ProtocolError, match="too long"):
        reader.read(deadline=time.monotonic() + 5)
    assert max(sizes) <= proto.MAX_LINE
    assert len(reader.buf) <= proto.MAX_LINE + proto.CHUNK


def test_a_long_line_with_its_newline_in_one_chunk_is_refused(pair):
    a, b = pair
    b.sendall(b'{"type":"hello","pad":"' + b"x" * (proto.MAX_LINE + 10) + b'"}\n')
    with pytest.raises(proto.ProtocolError, match="too long"):
        proto.Reader(a).read()


@pytest.mark.parametrize("line, reason", [
    (b"[" * 60000, "nested too deeply"),
    (b'{"type": "\xff\xfe"}', "not UTF-8"),
    (b"hello there", "not a JSON message"),
    (b'["type", "hello"]', "not a JSON object"),
    (b"42", "not a JSON object"),
    (b'{"role": "gateway"}', "without a type"),
    (b'{"type": 7}', "without a type"),
    (b'{"type": null}', "without a type"),
])
def test_bad_messages_are_protocol_errors(pair, line, reason):
    a, b = pair
    threading.Thread(target=lambda: b.sendall(line + b"\n"), daemon=True).start()
    with pytest.raises(proto.ProtocolError, match=reason):
        proto.Reader(a).read(deadline=time.monotonic() + 5)


def test_deep_nesting_within_the_cap_is_a_protocol_error():
    with pytest.raises(proto.ProtocolError):
        proto.decode(json.dumps({"type": "x", "v": []}).encode().replace(b"[]", b"[" * 30000 + b"]" * 30000))
