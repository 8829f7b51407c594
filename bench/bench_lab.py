"""Times the lab's life cycle: cold and warm `up`, `status`, `verify`, `down`, and an idle lab's CPU
(bench_idle.py). Reports, does not assert.

Cold: role and base images removed first (the Debian OS image and the build cache are kept;
a machine's very first run adds debootstrap and the apt installs, about 2 minutes). Targets:
warm up <= 5 s to all healthy, verify (the quick checks) <= 10 s, down <= 2 s.
"""
from __future__ import annotations

import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench_idle import measure as idle_cpu, table as idle_table
from report import publish

ROOT = Path(__file__).resolve().parents[1]
LAB = [sys.executable, "-m", "lab.cli"]
TARGETS = {"warm up": 5.0, "verify --quick": 10.0, "down": 2.0}


def timed(label: str, argv: list[str]) -> tuple[str, float, int]:
    start = time.perf_counter()
    rc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return label, time.perf_counter() - start, rc


def main() -> int:
    rows = [
        timed("clean (setup for cold)", LAB + ["clean"]),
        timed("cold up", LAB + ["up"]),
        timed("verify --quick", LAB + ["verify", "--quick", "-q"]),
        timed("verify (with scenarios)", LAB + ["verify", "-q"]),
        timed("down", LAB + ["down"]),
        timed("warm up", LAB + ["up"]),
        timed("status", LAB + ["status"]),
        timed("down", LAB + ["down"]),
        timed("warm up (no build)", LAB + ["up", "--no-build"]),
    ]
    idle = idle_cpu()  # the lab just started is left idle: every service healthy, nothing happening
    rows.append(timed("down", LAB + ["down"]))
    lines = [
        "# Lab life-cycle timings",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores. Reported, not asserted.",
        "Cold up: images removed, Debian OS image and build cache kept.",
        "",
        "| step | seconds | exit | target |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, seconds, rc in rows:
        target = next((f"<= {t:g} s" for k, t in TARGETS.items() if label.startswith(k)), "")
        lines.append(f"| {label} | {seconds:.1f} | {rc} | {target} |")
    publish("lab", "\n".join(lines + [""] + idle_table(idle)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
