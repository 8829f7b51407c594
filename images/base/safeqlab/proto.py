"""The lab's small application protocol over the mutual-TLS session: JSON lines.

client -> primary: {"type": "hello", "role": ..., "name": ...}, then {"type": "heartbeat"}
primary -> client: {"type": "welcome", "decision": "accepted", "endpoint_id": ...} or
                   {"type": "refused", "reason": ...}; {"type": "ack"} per heartbeat
"""
from __future__ import annotations

import json
import socket

MAX_LINE = 64 * 1024
HEARTBEAT_SECONDS = 2.0


class ProtocolError(Exception):
    pass


def send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class Reader:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def read(self) -> dict | None:
        """Next message, or None when the peer closed the session."""
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise ProtocolError("message too long")
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except ValueError:
            raise ProtocolError("not a JSON message") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("message without a type")
        return msg
