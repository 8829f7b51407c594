"""The lab's small application protocol over the mutual-TLS session: JSON lines.

client -> primary: {"type": "hello", "role": ..., "name": ...}, then {"type": "heartbeat"}
primary -> client: {"type": "welcome", "decision": "accepted", "endpoint_id": ...} or
                   {"type": "refused", "reason": ...}; {"type": "ack"} per heartbeat
"""
from __future__ import annotations

import json
import socket
import time

MAX_LINE = 64 * 1024
CHUNK = 4096  # the buffer never grows past MAX_LINE + CHUNK
HEARTBEAT_SECONDS = 2.0


class ProtocolError(Exception):
    pass


class DeadlineExceeded(ProtocolError):
    """The peer did not send a whole message in time (a slow drip counts as silence)."""


def send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def decode(line: bytes) -> dict:
    """One message line -> dict with a string "type"; ProtocolError with a short reason otherwise."""
    if len(line) > MAX_LINE:
        raise ProtocolError("message too long")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("message is not UTF-8") from None
    try:
        msg = json.loads(text)
    except RecursionError:
        raise ProtocolError("message nested too deeply") from None
    except ValueError:
        raise ProtocolError("not a JSON message") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a JSON object")
    if not isinstance(msg.get("type"), str):
        raise ProtocolError("message without a type")
    return msg


class Reader:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def read(self, deadline: float | None = None) -> dict | None:
        """Next message, or None when the peer closed the session.

        ``deadline`` (a time.monotonic() instant) bounds the whole message, not each recv;
        without it the socket's own timeout applies to each recv, as before."""
        if deadline is None:
            return self._read(None)
        window = max(0.0, deadline - time.monotonic())
        previous = self.sock.gettimeout()
        try:
            return self._read(deadline)
        except TimeoutError:
            raise DeadlineExceeded(f"no complete message within {window:.0f} s") from None
        finally:
            try:
                self.sock.settimeout(previous)
            except OSError:  # closed under us (a deadline reaper); nothing left to restore
                pass

    def _read(self, deadline: float | None) -> dict | None:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("message too long")
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.sock.settimeout(remaining)
            chunk = self.sock.recv(CHUNK)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return decode(line)
