"""What the running lab looks like: compose's view plus each stand-in's own report."""
from __future__ import annotations

import json

from . import docker

SERVICES = {"primary": "primary-host", "gateway": "gateway-host", "client": "pcclient-host"}
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


def collect() -> dict:
    services = []
    running = set()
    for row in docker.ps():
        name = row.get("Service")
        state = row.get("State")
        if state == "running":
            running.add(name)
        services.append({"name": name, "container": row.get("Name"), "host": SERVICES.get(name),
                         "state": state, "health": row.get("Health") or None})
    reports = {s: _json_from(s, cmd) for s, cmd in REPORT.items() if s in running}
    endpoints = _json_from("primary", "safeq-admin endpoints --json") if "primary" in running else []
    return {"services": services, "reports": reports, "endpoints": endpoints or []}


def summary_rows(status: dict) -> list[tuple[str, str, str, str, str, str]]:
    """service, host, port, certificate subject, issuer, state."""
    by_name = {ep["name"]: ep for ep in status["endpoints"]}
    rows = []
    for svc in status["services"]:
        name, host = svc["name"], svc["host"] or ""
        report = status["reports"].get(name) or {}
        state = svc["health"] or svc["state"]
        if name == "primary":
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
