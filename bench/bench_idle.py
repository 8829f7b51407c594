"""An idle lab's CPU: every service healthy, nothing happening, each container's cgroup CPU time
over a window (Docker's one-shot stats, which read the cgroup). Reports, does not assert.

Run alone against a running lab (prints the table), or from bench_lab.py (into bench/results/lab.md).
Target: the whole lab <= 3 % of one core, so that a class's labs fit this 2-core machine.
"""
from __future__ import annotations

import time

from lab import engine
from lab.status import wait_converged

WINDOW = 60.0   # s of idle measured
SETTLE = 10.0   # s after all healthy: start-up work (JVMs, first handshakes) is not idle
TARGET = 3.0    # % of one core, the whole lab


def cpu_ns(api, container_id: str) -> int:
    """CPU time the container's cgroup has used so far."""
    stats = api.stats(container_id, stream=False, one_shot=True)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])


def measure(window: float = WINDOW, settle: float = SETTLE) -> list[tuple[str, float]]:
    """(service, % of one core) per running container, then ("lab", the sum)."""
    failing, _ = wait_converged(60)
    if failing:
        raise SystemExit(f"the lab is not healthy, nothing to measure: {failing}")
    time.sleep(settle)
    boxes = [b for b in engine.containers() if b.running]
    with engine.session(30, "docker stats") as api:
        start = {b.service: cpu_ns(api, b.id) for b in boxes}
        began = time.monotonic()
        time.sleep(window)
        end = {b.service: cpu_ns(api, b.id) for b in boxes}
        elapsed = time.monotonic() - began
    rows = [(svc, 100.0 * (end[svc] - start[svc]) / 1e9 / elapsed) for svc in start]
    return rows + [("lab", sum(share for _, share in rows))]


def table(rows: list[tuple[str, float]], window: float = WINDOW) -> list[str]:
    lines = [f"## An idle lab: CPU over {window:.0f} s (all healthy, nothing happening)", "",
             "| service | % of one core | target |", "| --- | ---: | ---: |"]
    for svc, share in rows:
        lines.append(f"| {svc} | {share:.2f} | {f'<= {TARGET:g}' if svc == 'lab' else ''} |")
    return lines


if __name__ == "__main__":
    print("\n".join(table(measure())))
