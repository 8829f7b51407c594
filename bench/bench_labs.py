"""A class on one machine: N labs (`--lab bench-01` ...) up at once beside nothing else, all healthy;
memory per lab (its containers' cgroup memory) and the CPU of them all idle. Reports, does not assert.

Each lab gets its own PKI and port; all are removed at the end (`--lab NAME clean --pki`).
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from report import publish

from lab import engine, topology

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab.cli"]
LABS = int(os.environ.get("BENCH_LABS", "8"))
WINDOW = 60.0  # s of idle measured, all labs at once
SETTLE = 10.0


def lab(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(LAB + ["--lab", name, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def usage(api, boxes) -> dict[str, tuple[int, int]]:
    """container id -> (CPU ns used so far, memory bytes now)."""
    out = {}
    for box in boxes:
        stats = api.stats(box.id, stream=False, one_shot=True)
        out[box.id] = (int(stats["cpu_stats"]["cpu_usage"]["total_usage"]), int(stats["memory_stats"].get("usage", 0)))
    return out


def main() -> int:
    names = [f"bench-{i:02d}" for i in range(1, LABS + 1)]
    started, rows = {}, []
    try:
        for name in names:
            began = time.perf_counter()
            proc = lab(name, "up", "--no-build")
            started[name] = (proc.returncode, time.perf_counter() - began)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
        time.sleep(SETTLE)
        boxes = {name: [b for b in engine.containers(project_name=name) if b.running] for name in names}
        healthy = {name: sum(engine.healthcheck_now(b)[0] for b in boxes[name]) for name in names}
        every = [b for name in names for b in boxes[name]]
        with engine.session(60, "docker stats") as api:
            first = usage(api, every)
            began = time.monotonic()
            time.sleep(WINDOW)
            last = usage(api, every)
            elapsed = time.monotonic() - began
        for name in names:
            mem = sum(last[b.id][1] for b in boxes[name]) / 2**20
            cpu = sum(last[b.id][0] - first[b.id][0] for b in boxes[name]) / 1e9 / elapsed * 100
            rows.append((name, *started[name], healthy[name], len(boxes[name]), mem, cpu))
    finally:
        for name in names:
            lab(name, "clean", "--pki")
    report(rows)
    services = len(topology.load().names)  # compose.yaml's services: each lab runs them all
    return 0 if all(r[1] == 0 and r[3] == r[4] == services for r in rows) else 1


def report(rows) -> None:
    lines = [
        "# A class on one machine: labs side by side",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB. "
        f"`bench/bench_labs.py`: {len(rows)} labs started one after the other (`--lab NAME up --no-build`, "
        f"each with its own PKI), then all idle together for {WINDOW:.0f} s. Reported, not asserted.",
        "",
        "| lab | up exit | up s | healthy | memory MiB | idle CPU % of one core |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rc, seconds, healthy, total, mem, cpu in rows:
        lines.append(f"| {name} | {rc} | {seconds:.1f} | {healthy}/{total} | {mem:.0f} | {cpu:.2f} |")
    if rows:
        lines.append(f"| all | | | {sum(r[3] for r in rows)}/{sum(r[4] for r in rows)} | "
                     f"{sum(r[5] for r in rows):.0f} | {sum(r[6] for r in rows):.2f} |")
    publish("labs", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
