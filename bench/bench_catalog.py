"""The whole scenario catalog's wall time: `safeq-lab scenarios run --all` (exercises fixed by their
solution) with N labs side by side (BENCH_JOBS, default 2,3), the labs reset between scenarios and with
--fresh (BENCH_LABS, default reset,fresh). Reports, does not assert; the target is 90 s on this 2-core
machine.
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
FRESH = [f == "fresh" for f in os.environ.get("BENCH_LABS", "reset,fresh").split(",")]
TARGET = 90


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat), to report how CPU-bound a run was."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def run(jobs: int, fresh: bool) -> tuple[float, float, int, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        began, cpu = time.perf_counter(), busy_seconds()
        proc = subprocess.run([sys.executable, "-m", "lab.cli", "scenarios", "run", "--all", "--jobs", str(jobs),
                               "--json", str(out), *(["--fresh"] if fresh else [])],
                              cwd=ROOT, capture_output=True, text=True, timeout=3600)
        wall, cpu = time.perf_counter() - began, busy_seconds() - cpu
        outcomes = json.loads(out.read_text()) if out.exists() else []
    if proc.returncode not in (0, 1):
        print(proc.stderr[-2000:], file=sys.stderr)
    return wall, cpu, proc.returncode, outcomes


def main() -> int:
    runs = [(jobs, fresh, *run(jobs, fresh)) for fresh in FRESH for jobs in JOBS]
    lines = [
        "# The scenario catalog's wall time",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB. "
        "`bench/bench_catalog.py`: `safeq-lab scenarios run --all --jobs N` with the images built. Labs reset: "
        "each lab's first scenario (and one of another shape, or after a change the reset cannot undo) makes "
        "it anew (its own PKI, volumes and port, `up`), the others put it back to how `up` left it "
        "(lab.scenarios.recycle); `--fresh`: every scenario in a lab made anew and removed after. Then the "
        "break, the expected outcome, and for an exercise the solution and the fixed checks. Busy CPU: the "
        f"machine's, from /proc/stat, during the run. Target: {TARGET} s. Reported, not asserted.",
        "",
        "| labs | side by side | wall s | busy CPU s | exit | as expected | reset / made anew | sum of scenario s "
        "| slowest scenario |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for jobs, fresh, wall, cpu, code, outcomes in runs:
        slow = max(outcomes, key=lambda o: o["seconds"]) if outcomes else {"id": "-", "seconds": 0}
        reset = sum(o.get("lab") == "recycled" for o in outcomes)
        lines.append(f"| {'--fresh' if fresh else 'reset'} | {jobs} | {wall:.0f} | {cpu:.0f} | {code} | "
                     f"{sum(o['ok'] for o in outcomes)}/{len(outcomes)} | {reset} / {len(outcomes) - reset} | "
                     f"{sum(o['seconds'] for o in outcomes):.0f} | {slow['id']} ({slow['seconds']:.0f} s) |")
    best = min(runs, key=lambda r: r[2])
    outcomes = best[5]
    parts = list(dict.fromkeys(part for o in outcomes for part in o.get("timings", {})))
    how = "--fresh" if best[1] else "labs reset"
    lines += ["", f"Per scenario, seconds (the fastest run: {how}, {best[0]} side by side), how its lab was made, "
              "and the parts of each run:", "",
              "| scenario | s | as expected | lab | " + " | ".join(parts) + " |",
              "| --- | ---: | --- | --- | " + " | ".join("---:" for _ in parts) + " |"]
    lines += [f"| {o['id']} | {o['seconds']:.0f} | {'yes' if o['ok'] else 'no'} | {o.get('lab') or ''} | "
              + " | ".join(f"{o.get('timings', {}).get(p, 0):.1f}" for p in parts) + " |" for o in outcomes]
    lines.append(f"| all | {sum(o['seconds'] for o in outcomes):.0f} | | | "
                 + " | ".join(f"{sum(o.get('timings', {}).get(p, 0) for o in outcomes):.0f}" for p in parts) + " |")
    publish("catalog", "\n".join(lines) + "\n")
    return 0 if all(run[4] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
