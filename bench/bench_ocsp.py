#!/usr/bin/env python3
"""OCSP timings on loopback: the responder's requests/s and the checker's cold vs warm check.

Reports; does not assert. Bounded: each load phase stops after --seconds or --requests,
whichever comes first, and talks only to 127.0.0.1. Writes bench/results/ocsp.md.

    python bench/bench_ocsp.py [--seconds 2] [--requests 2000] [--threads 4]
"""
from __future__ import annotations

import argparse
import http.client
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

import cryptography
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from pki import init_pki
from safeqlab.ocspcheck import OcspChecker
from report import publish

# Seconds per check / requests per second; what the lab needs with room to spare.
TARGETS = {"responder_rps": 200.0, "cold_ms": 50.0, "warm_ms": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_responder(ocsp_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OCSP_DIR": str(ocsp_dir), "OCSP_PORT": str(port), "OCSP_BIND": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "images" / "ocsp" / "ocsp_responder.py"), "run"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the responder did not start; see {log}")


def load(port: int, body: bytes, threads: int, seconds: float, limit: int, keep_alive: bool):
    """Requests/s and per-request latencies (s) of ``threads`` clients posting ``body``."""
    lock = threading.Lock()
    budget = [limit]
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def client():
        conn = None
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("POST", "/", body, {"Content-Type": "application/ocsp-request",
                                                 **({} if keep_alive else {"Connection": "close"})})
                data = conn.getresponse().read()
                ok = ocsp.load_der_ocsp_response(data).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                conn = None
            took = time.perf_counter() - start
            if not keep_alive and conn is not None:
                conn.close()
                conn = None
            with lock:
                latencies.append(took)
                errors[0] += not ok

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies, errors[0]


def checks(chain, anchors, runs: int, warm: bool) -> list[float]:
    times = []
    checker = OcspChecker()
    if warm:
        checker.check_chain(chain, anchors)  # fills the cache
    for _ in range(runs):
        if not warm:
            checker = OcspChecker()
        start = time.perf_counter()
        result = checker.check_chain(chain, anchors)
        times.append(time.perf_counter() - start)
        assert result.ok, result.reason
    return times


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ocsp-") as tmp:
        port = free_port()
        root = Path(init_pki(Path(tmp) / "pki", ocsp_url=f"http://127.0.0.1:{port}")["dir"])
        proc = start_responder(root / "hosts" / "ocsp-host", port, Path(tmp) / "responder.log")
        try:
            chain = x509.load_pem_x509_certificates((root / "entities/primary-host/primary-host.chain.pem").read_bytes())
            anchors = chain[-1:]
            body = ocsp.OCSPRequestBuilder().add_certificate(chain[0], chain[1], hashes.SHA1()).build().public_bytes(
                serialization.Encoding.DER)
            rows = []
            for keep_alive in (True, False):
                rps, lat, errors = load(port, body, args.threads, args.seconds, args.requests, keep_alive)
                rows.append(("keep-alive" if keep_alive else "new connection each", len(lat), rps,
                             statistics.median(lat) * 1000, pct(lat, 0.95) * 1000, errors))
            cold = checks(chain, anchors, 50, warm=False)
            warm = checks(chain, anchors, 1000, warm=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=5)

    best_rps = max(r[2] for r in rows)
    cold_ms, warm_ms = statistics.median(cold) * 1000, statistics.median(warm) * 1000
    lines = [
        "# OCSP: responder throughput and checker latency (loopback)",
        "",
        f"Responder: `images/ocsp/ocsp_responder.py` (ThreadingHTTPServer, ECDSA P-256 delegated signer, "
        f"one response signed per request), {args.threads} client threads, at most {args.requests} requests "
        f"or {args.seconds:g} s per row; request for `primary-host` (good), no nonce.",
        "",
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{platform.machine()}, {platform.system()} {platform.release()}, {os.cpu_count()} CPUs.",
        "",
        "| connection | requests | requests/s | median ms | p95 ms | errors |",
        "|---|---|---|---|---|---|",
        *(f"| {name} | {n} | {rps:.0f} | {med:.2f} | {p95:.2f} | {err} |" for name, n, rps, med, p95, err in rows),
        "",
        "Checker: `OcspChecker.check_chain` on primary-host's chain (leaf + intermediate: two OCSP requests "
        "with nonce, each response's signature, delegated signer, CertID, times and nonce verified).",
        "",
        "| check | runs | median ms | p95 ms | target ms | median within target |",
        "|---|---|---|---|---|---|",
        f"| cold (new checker, 2 HTTP round trips) | {len(cold)} | {cold_ms:.2f} | {pct(cold, 0.95) * 1000:.2f} | "
        f"{TARGETS['cold_ms']:g} | {'yes' if cold_ms <= TARGETS['cold_ms'] else 'NO'} |",
        f"| warm (cached until nextUpdate) | {len(warm)} | {warm_ms:.3f} | {pct(warm, 0.95) * 1000:.3f} | "
        f"{TARGETS['warm_ms']:g} | {'yes' if warm_ms <= TARGETS['warm_ms'] else 'NO'} |",
        "",
        f"Responder target: {TARGETS['responder_rps']:.0f} requests/s; best row "
        f"{best_rps:.0f} ({'yes' if best_rps >= TARGETS['responder_rps'] else 'NO'}). "
        "A warm check still verifies which certificate issued which (signatures of the chain), "
        "but makes no HTTP request.",
    ]
    report = "\n".join(lines) + "\n"
    publish("ocsp", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
