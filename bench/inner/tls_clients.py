"""Runs in a container in the primary's network namespace: COUNT full mutual-TLS handshakes in a row,
no session reuse, each ended with close_notify (so the server has judged the client's chain).

Usage: tls_clients.py PORT TLSv1.2|TLSv1.3 COUNT. Prints one JSON object."""
from __future__ import annotations

import json
import socket
import ssl
import sys
import time

PORT, VERSION, COUNT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])


def context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations("/certs/cas.pem")
    ctx.load_cert_chain("/certs/client.pem", "/certs/client.key")
    version = ssl.TLSVersion.TLSv1_3 if VERSION == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = version
    ctx.check_hostname = False  # the name is the server's business here; the chain is still verified
    return ctx


def main() -> int:
    ctx, failures = context(), []
    began = time.perf_counter()
    for _ in range(COUNT):
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw) as tls:
                    tls.unwrap()
            except (ssl.SSLError, OSError) as exc:
                # The server may close without its own close_notify: the handshake was done.
                if not isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)):
                    failures.append(str(exc))
    print(json.dumps({"count": COUNT, "seconds": time.perf_counter() - began, "failures": failures[:3],
                      "failed": len(failures)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
