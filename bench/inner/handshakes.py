"""Runs inside safeq-lab/primary: the primary's TLS layer on loopback, with and without the JRE's verdict.

Prints one JSON object. The anchors are what the primary's trusted-ca policy judges against:
one lab root plus the image's public CA bundle.
"""
from __future__ import annotations

import json
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from certkit.build import certificate
from certkit.jre import Validator, Verdict
from safeq_primary.handshake import ServerTLS

BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def issue(cn: str, issuer=None, ca: bool = False, eku=None):
    """(certificate, key), as the rest of this script reads them."""
    key, cert = certificate(cn, issuer=issuer and (issuer[1], issuer[0]), ca=ca, dns_name=cn,
                            usages=[eku] if eku else ())
    return cert, key


def run(server: ServerTLS, client_ctx: ssl.SSLContext, count: int) -> list[float]:
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    def serve():
        for _ in range(count):
            conn, _ = lsock.accept()
            tls = server.accept(conn, 5.0)
            tls.recv(1)  # the client's close: the TLS 1.3 handshake is judged before this returns
            tls.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="primary-host") as tls:
                tls.sendall(b"x")
        times.append(time.perf_counter() - t0)
    thread.join(30)
    lsock.close()
    return times


def main(count: int) -> dict:
    root = issue("Lab-Root", ca=True)
    inter = issue("Lab-Intermediate", root, ca=True)
    server_cert = issue("primary-host", inter, eku=ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert = issue("gateway-host", inter, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    anchors = [root[0], *x509.load_pem_x509_certificates(BUNDLE.read_bytes())]
    validator = Validator()
    info = validator.info()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "c.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                for c in (client_cert[0], inter[0])))
        Path(tmp, "k.pem").write_bytes(client_cert[1].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx.load_cert_chain(Path(tmp, "c.pem"), Path(tmp, "k.pem"))
    chain = [server_cert[0], inter[0]]
    with_jre = ServerTLS(server_cert[1], chain, anchors, lambda sent: validator.judge(sent, anchors, "client"),
                         require=True)
    without = ServerTLS(server_cert[1], chain, anchors, lambda sent: Verdict(ok=True, anchor="CN=Lab-Root"),
                        require=True)
    run(with_jre, ctx, 20)  # warm-up: JVM compiled paths, Python imports
    jre_times = run(with_jre, ctx, count)
    plain_times = run(without, ctx, count)
    judge_times = []
    for _ in range(count):
        t0 = time.perf_counter()
        assert validator.judge([client_cert[0], inter[0]], anchors, "client").ok
        judge_times.append(time.perf_counter() - t0)
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    p95 = lambda xs: round(sorted(xs)[int(len(xs) * 0.95) - 1] * 1000, 2)  # noqa: E731
    return {"count": count, "anchors": len(anchors), "java": info.get("java.version"),
            "handshake_with_jre_ms": ms(jre_times), "handshake_with_jre_p95_ms": p95(jre_times),
            "handshake_without_jre_ms": ms(plain_times), "handshake_without_jre_p95_ms": p95(plain_times),
            "judge_alone_ms": ms(judge_times), "judge_alone_p95_ms": p95(judge_times)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)))
