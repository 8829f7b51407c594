#!/usr/bin/env python3
"""Time ``init_pki`` for the default tree (root, one intermediate, three hosts).

Reports; does not assert. Writes bench/results/pki.md next to this script.

    python bench/bench_pki.py [--runs N]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


import cryptography

from pki import init_pki
from report import publish

TARGETS = {"ecdsa-p256": 0.3, "rsa-3072": 3.0}  # seconds per init


def measure(key_type: str, runs: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory(prefix="bench-pki-") as tmp:
        for i in range(runs):
            start = time.perf_counter()
            init_pki(Path(tmp) / f"run{i}", key_type=key_type)
            times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    rows = []
    for key_type, target in TARGETS.items():
        times = measure(key_type, args.runs)
        median = statistics.median(times)
        rows.append((key_type, args.runs, min(times), median, max(times), target, "yes" if median <= target else "NO"))

    header = ("key type", "runs", "min s", "median s", "max s", "target s", "median within target")
    lines = [
        "# PKI build time: `init_pki` default tree",
        "",
        "Root CA + 1 intermediate + primary-host, gateway-host, pcclient-host; all exports"
        " (PFX with PBES2/AES-256, 50 000 PBKDF2 rounds), truststore, hosts/, manifest.",
        "",
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{platform.machine()}, {platform.system()} {platform.release()}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for key_type, runs, lo, med, hi, target, ok in rows:
        lines.append(f"| {key_type} | {runs} | {lo:.3f} | {med:.3f} | {hi:.3f} | {target:.1f} | {ok} |")
    lines.append("")
    lines.append("RSA key generation dominates the RSA time and varies from run to run (random prime search).")
    report = "\n".join(lines) + "\n"
    publish("pki", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
