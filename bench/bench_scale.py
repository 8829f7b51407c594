"""Many gateways and clients in one lab (`--lab bench-scale up --gateways G --clients C`): seconds until
every endpoint is accepted and connected, then `systemctl restart safeq-cloud-server` on the primary and
seconds until all are connected again; the primary's memory and CPU. Reports, does not assert.

Issue 14's target is 10 gateways + 200 clients, each accepted within 60 s of `up` and back within 30 s of a
restart. Each extra endpoint is a container of its own (lab.scale), so BENCH_CLIENTS defaults to what this
2-core machine starts in reasonable time; the report says which size ran.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from report import publish

from lab import engine
from safeqlab.records import current_record

ROOT = Path(__file__).resolve().parents[1]
NAME = "bench-scale"
GATEWAYS = int(os.environ.get("BENCH_GATEWAYS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
WAIT = 300.0  # s at most for all connected, each phase


def lab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli", "--lab", NAME, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def hosts() -> list[str]:
    return (["gateway-host"] + [f"gateway-host-{i}" for i in range(2, GATEWAYS + 1)]
            + ["pcclient-host"] + [f"pcclient-host-{i}" for i in range(2, CLIENTS + 1)])


def connected(since: str = "") -> int:
    """Endpoints whose current record is accepted and connected (and seen after ``since``)."""
    proc = lab("endpoints", "list", "--json", timeout=60)
    if proc.returncode != 0:
        return 0
    records = json.loads(proc.stdout)
    now = [current_record(records, h) or {} for h in hosts()]
    return sum(r.get("decision") == "accepted" and r.get("state") == "connected" and (r.get("last_seen") or "") >= since
               for r in now)


def until_all(began: float, since: str = "") -> float | None:
    while time.monotonic() - began < WAIT:
        if connected(since) == len(hosts()):
            return time.monotonic() - began
        time.sleep(0.5)
    return None


def primary_usage() -> tuple[float, float]:
    """(memory MiB, CPU seconds so far) of the primary's container."""
    box = next(b for b in engine.containers(project_name=NAME) if b.service == "primary" and b.running)
    with engine.session(30, "docker stats") as api:
        stats = api.stats(box.id, stream=False, one_shot=True)
    return stats["memory_stats"].get("usage", 0) / 2**20, stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def main() -> int:
    rows = []
    try:
        began = time.monotonic()
        up = lab("up", "--no-build", "--gateways", str(GATEWAYS), "--clients", str(CLIENTS))
        if up.returncode != 0:
            print(up.stderr[-3000:], file=sys.stderr)
        rows.append(("`up` returned (every service healthy)", time.monotonic() - began, up.returncode == 0))
        first = until_all(began)
        rows.append(("all accepted and connected, from the start of `up`", first, first is not None))
        mem, cpu_before = primary_usage()
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        began = time.monotonic()
        restart = lab("exec", "primary", "systemctl", "restart", "safeq-cloud-server", timeout=120)
        again = until_all(began, since=stamp) if restart.returncode == 0 else None
        rows.append(("all connected again after `systemctl restart safeq-cloud-server`", again, again is not None))
        mem_after, cpu_after = primary_usage()
    finally:
        lab("clean", "--pki")
    report(rows, mem, mem_after, cpu_after - cpu_before)
    return 0 if all(ok for *_, ok in rows) else 1


def report(rows, mem: float, mem_after: float, cpu: float) -> None:
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Many gateways and clients in one lab",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {cores} cores. "
        f"`bench/bench_scale.py`: `--lab {NAME} up --gateways {GATEWAYS} --clients {CLIENTS}` (each endpoint a "
        "container of its own, its own certificate from the lab CA), then the primary restarted. Reported, not "
        "asserted. Issue 14's target: 10 gateways + 200 clients, all accepted within 60 s, back within 30 s.",
        "",
        "| step | seconds | done |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {what} | {'-' if s is None else f'{s:.1f}'} | {'yes' if ok else 'no'} |" for what, s, ok in rows]
    lines += ["", f"Primary: {mem:.0f} MiB with {len(hosts())} endpoints connected, {mem_after:.0f} MiB after the "
                  f"restart; {cpu:.1f} s of CPU for the restart and the reconnections."]
    publish("scale", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
