"""What the running lab looks like: compose's view plus each stand-in's own report."""
from __future__ import annotations

import json
import time

from safeqlab.records import current_record

from . import docker, topology
from .docker import CommandTimeout

REPORT = {"primary": "safeq-admin status --json", "gateway": "safeq-gateway status --json",
          "client": "safeq-client status --json"}
HEALTHCHECK_TIMEOUT = 30


def _within(end: float, cap: float, floor: float) -> float:
    """A command's timeout: at most ``cap``, at most what is left before ``end``."""
    return max(floor, min(cap, end - time.monotonic()))


def _json_from(service: str, command: str, timeout: float):
    proc = docker.compose("exec", "-T", service, *command.split(), check=False, capture=True, timeout=timeout)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def collect(health_now: dict[str, bool] | None = None, timeout: float = docker.DEFAULT) -> dict:
    """``health_now``: container -> passed, when the healthchecks were just run (by wait_converged).

    ``timeout`` bounds the whole collection (each command gets what is left)."""
    end = time.monotonic() + timeout

    def left(cap: float = docker.DEFAULT) -> float:
        return _within(end, cap, 0.1)

    topo = topology.load()
    services, running = [], set()
    for row in docker.ps(timeout=left(docker.QUICK)):
        name, state, health = row.get("Service"), row.get("State"), row.get("Health") or None
        if state == "running":
            running.add(name)
            ok = health_now[row["Name"]] if health_now and row["Name"] in health_now \
                else healthcheck_now(row["Name"], left(HEALTHCHECK_TIMEOUT))[0]
            health = "healthy" if ok else "unhealthy"
        host = topo.service(name).host if name in topo.names else None
        services.append({"name": name, "container": row.get("Name"), "host": host, "state": state, "health": health})
    reports = {s: _json_from(s, cmd, left()) for s, cmd in REPORT.items() if s in running}
    primary = "primary" in running
    endpoints = _json_from("primary", "safeq-admin endpoints --json", left()) if primary else None
    # An older primary has no refused list (404): an error reads as an empty list, like the endpoints.
    refused = _json_from("primary", "safeq-admin api GET /api/v1/refused", left()) if primary else None
    return {"services": services, "reports": reports, "endpoints": endpoints or [],
            "refused": refused if isinstance(refused, list) else []}


def summary_rows(status: dict, topo: topology.Topology | None = None) -> list[tuple[str, str, str, str, str, str]]:
    """service, host, port, certificate subject, issuer, state."""
    topo = topo or topology.load()
    order = topo.names
    rows = []
    for svc in sorted(status["services"], key=lambda s: order.index(s["name"]) if s["name"] in order else len(order)):
        name, host = svc["name"], svc["host"] or ""
        port = topo.service(name).port if name in order else ""
        report = status["reports"].get(name) or {}
        state = svc["health"] or svc["state"]
        if name == "ocsp":
            subject, issuer = "(delegated OCSP signers)", ""
        elif name == "primary":
            serving = report.get("serving") or {}
            subject, issuer = serving.get("subject", ""), serving.get("issuer", "")
            state = f"{state}, {report.get('state', '?')}"
        else:
            ep = current_record(status["endpoints"], host) or {}
            subject, issuer = ep.get("subject") or "", ep.get("issuer") or ""
            detail = report.get("icon") or report.get("state") or "?"
            state = f"{state}, {detail}" + (f" ({ep['decision']})" if ep.get("decision") else "")
        rows.append((name, host, port, subject, issuer, state))
    return rows


def healthcheck_now(container: str, timeout: float = HEALTHCHECK_TIMEOUT) -> tuple[bool, str]:
    """Run the container's own healthcheck command (from compose.yaml) right now.

    Docker's recorded health lags by up to interval x retries; right after the primary
    restarts, a gateway can still read "healthy" while it is reconnecting."""
    try:
        inspect = docker.run_timed(["docker", "inspect", "-f", "{{json .Config.Healthcheck.Test}}", container],
                                   min(timeout, docker.QUICK), capture_output=True, text=True)
    except CommandTimeout:
        return False, f"docker inspect did not answer within {min(timeout, docker.QUICK):.0f} s"
    if inspect.returncode != 0:
        return False, "container is gone"
    test = json.loads(inspect.stdout or "null")
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        return True, "no healthcheck"
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    try:
        proc = docker.run_timed(["docker", "exec", container, *argv], timeout, capture_output=True, text=True)
    except CommandTimeout:
        return False, f"healthcheck did not answer within {timeout:.0f} s"
    return proc.returncode == 0, (proc.stdout or proc.stderr).strip()


def wait_converged(timeout: float) -> tuple[dict[str, str], dict[str, bool]]:
    """Until every running service passes its healthcheck at once, for at most ``timeout`` s.

    Returns what still fails (service -> why) and the last result per container, for collect()."""
    deadline = time.monotonic() + timeout
    while True:
        failing, results = {}, {}
        for row in docker.ps(timeout=_within(deadline, docker.QUICK, 0.5)):
            ok, why = healthcheck_now(row["Name"], _within(deadline, HEALTHCHECK_TIMEOUT, 0.5))
            results[row["Name"]] = ok
            if not ok or row.get("State") != "running":
                failing[row["Service"]] = why or row.get("State")
        if not failing or time.monotonic() > deadline:
            return failing, results
        time.sleep(0.5)
