"""What the running lab looks like: compose's view plus each stand-in's own report."""
from __future__ import annotations

import json
import subprocess
import time

from . import docker

SERVICES = {"ocsp": "ocsp-host", "primary": "primary-host", "gateway": "gateway-host", "client": "pcclient-host"}
REPORT = {"primary": "safeq-admin status --json", "gateway": "safeq-gateway status --json",
          "client": "safeq-client status --json"}


def _json_from(service: str, command: str):
    proc = docker.compose("exec", "-T", service, *command.split(), check=False, capture=True)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def collect(health_now: dict[str, bool] | None = None) -> dict:
    """``health_now``: container -> passed, when the healthchecks were just run (by wait_converged)."""
    services = []
    running = set()
    for row in docker.ps():
        name = row.get("Service")
        state = row.get("State")
        health = row.get("Health") or None
        if state == "running":
            running.add(name)
            ok = health_now[row["Name"]] if health_now and row["Name"] in health_now else healthcheck_now(row["Name"])[0]
            health = "healthy" if ok else "unhealthy"
        services.append({"name": name, "container": row.get("Name"), "host": SERVICES.get(name),
                         "state": state, "health": health})
    reports = {s: _json_from(s, cmd) for s, cmd in REPORT.items() if s in running}
    endpoints = _json_from("primary", "safeq-admin endpoints --json") if "primary" in running else []
    return {"services": services, "reports": reports, "endpoints": endpoints or []}


def summary_rows(status: dict) -> list[tuple[str, str, str, str, str, str]]:
    """service, host, port, certificate subject, issuer, state."""
    # Several records may share a name (a reissued certificate): the connected or latest one counts.
    by_name = {}
    for ep in sorted(status["endpoints"], key=lambda e: (e.get("state") == "connected", e.get("last_seen") or "")):
        by_name[ep.get("name")] = ep
    rows = []
    order = list(SERVICES)
    for svc in sorted(status["services"], key=lambda s: order.index(s["name"]) if s["name"] in order else len(order)):
        name, host = svc["name"], svc["host"] or ""
        report = status["reports"].get(name) or {}
        state = svc["health"] or svc["state"]
        if name == "ocsp":
            subject, issuer, port = "(delegated OCSP signers)", "", "8080"
        elif name == "primary":
            serving = report.get("serving") or {}
            subject, issuer, port = serving.get("subject", ""), serving.get("issuer", ""), "2560"
            state = f"{state}, {report.get('state', '?')}"
        else:
            ep = by_name.get(host) or {}
            subject, issuer, port = ep.get("subject") or "", ep.get("issuer") or "", ""
            detail = report.get("icon") or report.get("state") or "?"
            state = f"{state}, {detail}" + (f" ({ep['decision']})" if ep.get("decision") else "")
        rows.append((name, host, port, subject, issuer, state))
    return rows


def healthcheck_now(container: str) -> tuple[bool, str]:
    """Run the container's own healthcheck command (from compose.yaml) right now.

    Docker's recorded health lags by up to interval x retries; right after the primary
    restarts, a gateway can still read "healthy" while it is reconnecting."""
    inspect = subprocess.run(["docker", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", container],
                             capture_output=True, text=True)
    if inspect.returncode != 0:
        return False, "container is gone"
    test = json.loads(inspect.stdout or "null")
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return True, "no healthcheck"
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    try:
        proc = subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False, "healthcheck did not answer within 30 s"
    return proc.returncode == 0, (proc.stdout or proc.stderr).strip()


def wait_converged(timeout: float) -> tuple[dict[str, str], dict[str, bool]]:
    """Until every running service passes its healthcheck at once.

    Returns what still fails (service -> why) and the last result per container, for collect()."""
    deadline = time.monotonic() + timeout
    while True:
        failing, results = {}, {}
        for row in docker.ps():
            ok, why = healthcheck_now(row["Name"])
            results[row["Name"]] = ok
            if not ok or row.get("State") != "running":
                failing[row["Service"]] = why or row.get("State")
        if not failing or time.monotonic() > deadline:
            return failing, results
        time.sleep(0.5)
