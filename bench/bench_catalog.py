"""The whole scenario catalog's wall time: `safeq-lab scenarios run --all` (each scenario in a lab of
its own, exercises fixed by their solution) with 1..N labs side by side. Reports, does not assert;
the target is 90 s on this 2-core machine.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import publish

ROOT = Path(__file__).resolve().parents[1]
JOBS = [int(j) for j in os.environ.get("BENCH_JOBS", "2,3").split(",")]
TARGET = 90


def run(jobs: int) -> tuple[float, int, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        began = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "lab.cli", "scenarios", "run", "--all", "--jobs", str(jobs),
                               "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - began
        outcomes = json.loads(out.read_text()) if out.exists() else []
    if proc.returncode not in (0, 1):
        print(proc.stderr[-2000:], file=sys.stderr)
    return wall, proc.returncode, outcomes


def main() -> int:
    runs = [(jobs, *run(jobs)) for jobs in JOBS]
    lines = [
        "# The scenario catalog's wall time",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB. "
        "`bench/bench_catalog.py`: `safeq-lab scenarios run --all --jobs N` with the images built; each "
        "scenario in a fresh lab (its own PKI, volumes and port: `up`, the break, the expected outcome, and "
        f"for an exercise the solution and the fixed checks), the lab removed after. Target: {TARGET} s. "
        "Reported, not asserted.",
        "",
        "| labs side by side | wall s | exit | as expected | sum of scenario s | slowest scenario |",
        "| ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for jobs, wall, code, outcomes in runs:
        slow = max(outcomes, key=lambda o: o["seconds"]) if outcomes else {"id": "-", "seconds": 0}
        lines.append(f"| {jobs} | {wall:.0f} | {code} | {sum(o['ok'] for o in outcomes)}/{len(outcomes)} | "
                     f"{sum(o['seconds'] for o in outcomes):.0f} | {slow['id']} ({slow['seconds']:.0f} s) |")
    best = min(runs, key=lambda r: r[1])
    parts = list(dict.fromkeys(part for o in best[3] for part in o.get("timings", {})))
    lines += ["", f"Per scenario, seconds (run with {best[0]} labs side by side), and the parts of each run:", "",
              "| scenario | s | as expected | " + " | ".join(parts) + " |",
              "| --- | ---: | --- | " + " | ".join("---:" for _ in parts) + " |"]
    lines += [f"| {o['id']} | {o['seconds']:.0f} | {'yes' if o['ok'] else 'no'} | "
              + " | ".join(f"{o.get('timings', {}).get(p, 0):.1f}" for p in parts) + " |" for o in best[3]]
    lines.append(f"| all | {sum(o['seconds'] for o in best[3]):.0f} | | "
                 + " | ".join(f"{sum(o.get('timings', {}).get(p, 0) for o in best[3]):.0f}" for p in parts) + " |")
    publish("catalog", "\n".join(lines) + "\n")
    return 0 if all(code == 0 for _, _, code, _ in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
