"""Many gateways and clients in one lab (`--lab scale-bench up --gateways G --clients C`): seconds until
every endpoint is accepted and connected, then `systemctl restart safeq-cloud-server` on the primary and
seconds until all are connected again; the primary's memory and CPU (its cgroup, as the engine reports
it), and the memory of the whole lab. Reports, does not assert.

Issue 14's target: 10 gateways + 200 clients, all accepted within 60 s of `up`, back within 30 s of a
restart. The extra clients are installs sharing containers (lab.scale.INSTALLS to one).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from report import publish

from lab import engine, scale
from safeqlab.records import current_record

ROOT = Path(__file__).resolve().parents[1]
NAME = "scale-bench"
GATEWAYS = int(os.environ.get("BENCH_GATEWAYS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "200"))
WAIT = 300.0  # s at most for all connected, each phase
IDLE = 10.0   # s the primary's CPU is sampled with every endpoint connected (heartbeats only)
POLL = 1.0    # s between two looks at the primary's endpoint list
RESTARTS = int(os.environ.get("BENCH_RESTARTS", "2"))  # the reconnection varies with the machine's other load


def _argv_env(args) -> tuple[list[str], dict[str, str]]:
    # The bench's own PKI, whatever SAFEQ_PKI_DIR says: it issues certificates and `clean --pki` removes them.
    env = {k: v for k, v in os.environ.items() if k not in ("SAFEQ_PKI_DIR", "SAFEQ_LAB")}
    return [sys.executable, "-m", "lab.cli", "--lab", NAME, *args], env


def lab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    argv, env = _argv_env(args)
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def up_watched(timeout: float = 900) -> tuple[subprocess.CompletedProcess, float | None, float]:
    """`up`, the primary's endpoint list watched while it runs: (its result, seconds until every endpoint
    was accepted and connected, seconds until `up` returned)."""
    argv, env = _argv_env(["up", "--no-build", "--gateways", str(GATEWAYS), "--clients", str(CLIENTS)])
    began = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = None
    while True:
        try:
            out, err = proc.communicate(timeout=POLL)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - began > timeout:
                proc.kill()
                out, err = proc.communicate(timeout=30)
                break
            if first is None and connected() == len(hosts()):
                first = time.monotonic() - began
    took = time.monotonic() - began
    if first is None and connected() == len(hosts()):
        first = took  # within the last look and `up` returning: at most this
    return subprocess.CompletedProcess(argv, proc.returncode, out, err), first, took


def hosts() -> list[str]:
    return (["gateway-host"] + [f"gateway-host-{i}" for i in range(2, GATEWAYS + 1)]
            + ["pcclient-host"] + [f"pcclient-host-{i}" for i in range(2, CLIENTS + 1)])


def connected(since: str = "") -> int:
    """Endpoints whose current record is accepted and connected (and seen after ``since``), as the primary's
    `safeq-admin endpoints` lists them (asked in the container: the bench's polling stays light)."""
    box = next((b for b in engine.containers(project_name=NAME) if b.service == "primary" and b.running), None)
    if box is None:
        return 0
    try:
        proc = engine.execute(box, ["safeq-admin", "endpoints", "--json"], timeout=30)
    except engine.NotRunning:
        return 0
    if proc.returncode != 0:
        return 0
    try:
        records = json.loads(proc.stdout)
    except ValueError:  # the primary starting: counted as none connected
        return 0
    now = [current_record(records, h) or {} for h in hosts()]
    return sum(r.get("decision") == "accepted" and r.get("state") == "connected" and (r.get("last_seen") or "") >= since
               for r in now)


def until_all(began: float, since: str = "") -> float | None:
    while time.monotonic() - began < WAIT:
        if connected(since) == len(hosts()):
            return time.monotonic() - began
        time.sleep(POLL)
    return None


def usage(service: str | None = None) -> tuple[float, float]:
    """(memory MiB, CPU seconds so far): of the service's running container, or summed over the lab."""
    boxes = [b for b in engine.containers(project_name=NAME) if b.running and (service is None or b.service == service)]
    mem = cpu = 0.0
    with engine.session(60, "docker stats") as api:
        for box in boxes:
            stats = api.stats(box.id, stream=False, one_shot=True)
            mem += stats["memory_stats"].get("usage", 0) / 2**20
            cpu += stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    return mem, cpu


def refused_since(since: float) -> int:
    """Connections the primary refused (its caps, timeouts, TLS errors) since ``since`` (epoch seconds)."""
    box = next(b for b in engine.containers(project_name=NAME) if b.service == "primary" and b.running)
    with engine.session(60, "docker logs") as api:
        text = api.logs(box.id, since=int(since)).decode(errors="replace")
    return sum("Refused" in line for line in text.splitlines())


def restart(rows: list, figures: dict, n: int) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _, cpu_before = usage("primary")
    began, wall = time.monotonic(), time.time()
    done = lab("exec", "primary", "systemctl", "restart", "safeq-cloud-server", timeout=120)
    again = until_all(began, since=stamp) if done.returncode == 0 else None
    rows.append((f"all connected again after `systemctl restart safeq-cloud-server` ({n})", again, again is not None))
    figures["mem_after"], cpu_after = usage("primary")
    figures.setdefault("cpu_restart", []).append(cpu_after - cpu_before)
    figures.setdefault("refused", []).append(refused_since(wall))


def measure(rows: list, figures: dict) -> None:
    figures["load"] = Path("/proc/loadavg").read_text().split()[0]
    up, first, took = up_watched()
    if up.returncode != 0:
        print(up.stderr[-3000:], file=sys.stderr)
    rows.append(("all accepted and connected (the primary's list), from the start of `up`", first, first is not None))
    rows.append(("`up` returned (every container's healthcheck passed)", took, up.returncode == 0))
    phase = re.compile(r"^==> (.+?) \(([\d.]+ s|\d+ min [\d.]+ s)\)$", re.M)
    figures["phases"] = [m.groups() for m in phase.finditer(up.stdout + up.stderr)]
    figures["mem"], figures["cpu_start"] = usage("primary")
    figures["lab_mem"], _ = usage()
    figures["client_mem"] = sum(usage(s)[0] for s in {b.service for b in engine.containers(project_name=NAME)}
                                if s.startswith("client"))
    time.sleep(IDLE)
    figures["cpu_idle"] = (usage("primary")[1] - figures["cpu_start"]) / IDLE
    for n in range(1, RESTARTS + 1):
        restart(rows, figures, n)


def main() -> int:
    rows, figures = [], {}
    try:
        measure(rows, figures)
    finally:
        cleaned = lab("clean", "--pki", timeout=300)
        if cleaned.returncode != 0:
            print(cleaned.stderr[-2000:], file=sys.stderr)
    report(rows, figures)
    return 0 if all(ok for *_, ok in rows) else 1


def report(rows, f: dict) -> None:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout.strip()
    containers = GATEWAYS + 1 + -(-(CLIENTS - 1) // scale.INSTALLS)
    lines = [
        "# Many gateways and clients in one lab",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {cores} cores. "
        f"`bench/bench_scale.py`: `--lab {NAME} up --gateways {GATEWAYS} --clients {CLIENTS}` (each endpoint its "
        f"own certificate from the lab CA; the extra clients {scale.INSTALLS} installs to a container: "
        f"{containers} gateway and client containers), then the primary restarted. Reported, not asserted. "
        "Issue 14's target: 10 gateways + 200 clients, all accepted within 60 s, back within 30 s. "
        f"The machine is shared: load average {f.get('load', '?')} when `up` began.",
        "",
        "| step | seconds | done |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {what} | {'-' if s is None else f'{s:.1f}'} | {'yes' if ok else 'no'} |" for what, s, ok in rows]
    if f.get("phases"):
        lines += ["", "`up`'s own phases (before them: the lab CA issues every endpoint's certificate): "
                  + "; ".join(f"{what} {took}" for what, took in f["phases"]) + "."]
    if "mem_after" in f:
        per_restart = ", ".join(f"{cpu:.1f} s ({refused} connections refused)"
                                for cpu, refused in zip(f["cpu_restart"], f["refused"]))
        lines += ["", f"Primary (its container's cgroup): {f['mem']:.0f} MiB with {len(hosts())} endpoints connected, "
                      f"{f['mem_after']:.0f} MiB after the restarts; {f['cpu_start']:.1f} s of CPU from its start to all "
                      f"accepted, {100 * f['cpu_idle']:.1f} % of one core with all connected (heartbeats); CPU for "
                      f"each restart and its reconnections: {per_restart}.",
                  f"The whole lab: {f['lab_mem']:.0f} MiB; the client containers {f['client_mem']:.0f} MiB "
                  f"({f['client_mem'] / CLIENTS:.1f} MiB per client)."]
    publish("scale", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
