"""What the running lab looks like: the engine's view plus each stand-in's own report.

Through the Docker SDK (lab.engine): no subprocess per service. The commands run in the
containers are independent, so they run at once; `status` takes as long as the slowest.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Collection

from safeqlab.records import current_record

from . import engine, labstate, topology
from .engine import HEALTHCHECK_TIMEOUT, Container

REPORT = {"primary": "safeq-admin status --json", "gateway": "safeq-gateway status --json",
          "client": "safeq-client status --json"}
PRIMARY = {"endpoints": "safeq-admin endpoints --json",
           "account": "safeq-admin account show --json",  # policy, auto-trust, OCSP, Trusted CA certificates
           # An older primary has no refused list (404): an error reads as an empty list, like the endpoints.
           "refused": "safeq-admin api GET /api/v1/refused"}
SUMMARY = ("endpoints",)  # what summary_rows reads of the primary's answers besides its own report
WORKERS = 8  # at most this many commands in the containers at once
RECHECK_PAUSE = 0.5  # s between rounds of checks while services are still coming up
ENGINE_POLL = 0.15  # s between reads of the engine's own checks (no process in a container)


def _within(end: float, cap: float, floor: float) -> float:
    """A command's timeout: at most ``cap``, at most what is left before ``end``."""
    return max(floor, min(cap, end - time.monotonic()))


def _json_from(box: Container, command: str, timeout: float):
    try:
        result = engine.execute(box, command.split(), timeout=timeout)
    except engine.NotRunning:  # stopped since it was listed: as a command that failed
        return None
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout)
    except ValueError:
        return None


def _gather(calls: dict[str, Callable]) -> dict:
    """Each call's result, the calls run at once; a call's error is raised as if run alone."""
    if not calls:
        return {}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(calls))) as pool:
        futures = {key: pool.submit(call) for key, call in calls.items()}
        return {key: future.result() for key, future in futures.items()}


def collect(health_now: dict[str, bool] | None = None, timeout: float = engine.DEFAULT,
            asked: Collection[str] = tuple(PRIMARY)) -> dict:
    """``health_now``: container -> passed, when the healthchecks were just run (by wait_converged).

    ``timeout`` bounds the whole collection (each command gets what is left). ``asked``: which of the
    primary's answers (PRIMARY) to ask; the others read as none (the summary table needs the endpoints only)."""
    end = time.monotonic() + timeout

    def left(cap: float = engine.DEFAULT) -> float:
        return _within(end, cap, 0.1)

    topo = topology.load()
    boxes = sorted(engine.containers(timeout=left(engine.QUICK)),
                   key=lambda b: topo.names.index(b.service) if b.service in topo.names else len(topo.names))
    live: dict[str, Container] = {}
    for box in boxes:
        if box.running:
            live.setdefault(box.service, box)
    calls: dict[str, Callable] = {}
    for box in boxes:
        if box.running and box.name not in (health_now or {}):
            calls[f"health {box.name}"] = lambda box=box: engine.healthcheck_now(box, left(HEALTHCHECK_TIMEOUT))[0]
    roles = {name: (topo.service(name).role if name in topo.names else name) for name in live}
    for name, box in live.items():
        if roles[name] in REPORT:  # each gateway and client reports, the extra ones too (lab.scale)
            calls[f"report {name}"] = lambda box=box, command=REPORT[roles[name]]: _json_from(box, command, left())
    for key, command in PRIMARY.items():
        if "primary" in live and key in asked:
            calls[key] = lambda command=command: _json_from(live["primary"], command, left())
    got = _gather(calls)
    services = []
    for box in boxes:
        health = box.health
        if box.running:
            ok = health_now[box.name] if box.name in (health_now or {}) else got[f"health {box.name}"]
            health = "healthy" if ok else "unhealthy"
        host = topo.service(box.service).host if box.service in topo.names else None
        services.append({"name": box.service, "container": box.name, "host": host, "state": box.state,
                         "health": health})
    refused = got.get("refused")
    return {"services": services, "reports": {n: got[f"report {n}"] for n in live if f"report {n}" in got},
            "endpoints": got.get("endpoints") or [], "refused": refused if isinstance(refused, list) else [],
            "account": got.get("account") if isinstance(got.get("account"), dict) else None}


def summary_rows(status: dict, topo: topology.Topology | None = None) -> list[tuple[str, str, str, str, str, str]]:
    """service, host, port, certificate subject, issuer, state."""
    topo = topo or topology.load()
    order = topo.names
    own_pki = labstate.current().own_pki
    rows = []
    for svc in sorted(status["services"], key=lambda s: order.index(s["name"]) if s["name"] in order else len(order)):
        name, host = svc["name"], svc["host"] or ""
        port = topo.service(name).port if name in order else ""
        role = topo.service(name).role if name in order else name
        report = status["reports"].get(name) or {}
        state = svc["health"] or svc["state"]
        if role == "ocsp":  # a spec's PKI hands out no OCSP signer keys: the responder answers for no CA
            subject, issuer = "(delegated OCSP signers)" if own_pki else "(no CA: a spec brings no OCSP signers)", ""
        elif role not in REPORT:  # the portal: no certificate of its own, its health says it all
            subject, issuer = "", ""
        elif role == "primary":
            serving = report.get("serving") or {}
            subject, issuer = serving.get("subject", ""), serving.get("issuer", "")
            state = f"{state}, {report.get('state', '?')}"
        elif isinstance(report.get("installs"), dict):  # a container of several client installs (lab.scale)
            host, subject, issuer, detail = _installs_row(report["installs"], status["endpoints"])
            state = f"{state}, {detail}"
        else:
            ep = current_record(status["endpoints"], host) or {}
            subject, issuer = ep.get("subject") or "", ep.get("issuer") or ""
            detail = report.get("icon") or report.get("state") or "?"
            state = f"{state}, {detail}" + (f" ({ep['decision']})" if ep.get("decision") else "")
        rows.append((name, host, port, subject, issuer, state))
    return rows


def _installs_row(installs: dict, endpoints: list[dict]) -> tuple[str, str, str, str]:
    """host, subject, issuer and state of a container of installs: each install's own record, summed up."""
    hosts = list(installs)
    records = [current_record(endpoints, h) or {} for h in hosts]
    subjects = [r.get("subject") for r in records if r.get("subject")]
    issuers = {r.get("issuer") for r in records if r.get("issuer")}
    connected = sum((d or {}).get("state") == "connected" for d in installs.values())
    accepted = sum(r.get("decision") == "accepted" for r in records)
    subject = f"{subjects[0]} ... {subjects[-1]}" if len(subjects) > 1 else "".join(subjects)
    issuer = issuers.pop() if len(issuers) == 1 else ("(several)" if issuers else "")
    return (f"{hosts[0]} ... {hosts[-1]}" if len(hosts) > 1 else "".join(hosts), subject, issuer,
            f"{connected}/{len(hosts)} installs connected ({accepted} accepted)")


def _engine_verdict(box: Container, since: float | None) -> tuple[bool, str] | None:
    """The engine's own verdict on a container when it is recent enough to stand (else None: check it here).

    A check the engine began after ``since`` is the verdict; a container started after ``since`` waits
    for the engine's first one (compose.yaml's start_interval), with no process of ours beside it. The
    engine's times and ``since`` are one clock: the engine runs on this host (the PKI is bind-mounted)."""
    if since is None or not box.running:
        return None
    if box.last_check is not None and box.last_check.began >= max(since, box.started):  # not before a restart
        return box.last_check.passed, box.last_check.output or "its healthcheck failed"
    if box.started >= since and box.healthcheck:
        return False, "starting: its first healthcheck has not run yet"
    return None


def wait_converged(timeout: float, expected_down: Collection[str] = (),
                   since: float | None = None) -> tuple[dict[str, str], dict[str, bool]]:
    """Until every running service passes its healthcheck (but the services in ``expected_down``, whose
    connection the doctor foresaw refused), for at most ``timeout`` s.

    ``since`` (epoch s): what the engine checked after that moment stands (_engine_verdict); the rest
    (an older record: a gateway that read healthy before the primary restarted) is checked here. Between
    full rounds only the containers that failed here are checked again (each check is a process in a
    container that is starting), and success is a full round in which all pass.

    Returns what still fails (service -> why) and the last result per container, for collect()."""
    deadline = time.monotonic() + timeout
    passed: dict[str, bool] = {}
    full = True
    while True:
        boxes = engine.containers(timeout=_within(deadline, engine.QUICK, 0.5))
        by_engine = {box.name: v for box in boxes if (v := _engine_verdict(box, since)) is not None}
        ours = [box for box in boxes if box.running and box.name not in by_engine]
        todo = [box for box in ours if full or not passed.get(box.name)]
        checks = _gather({box.name: lambda box=box: engine.healthcheck_now(
            box, _within(deadline, HEALTHCHECK_TIMEOUT, 0.5)) for box in todo})
        failing, results = {}, {}
        for box in boxes:
            kept = (True, "") if box.running and passed.get(box.name) else (False, box.state)
            ok, why = by_engine.get(box.name) or checks.get(box.name, kept)
            results[box.name] = ok
            if not ok:
                failing[box.service] = why or box.state
        passed = results
        if not set(failing) - set(expected_down):
            if full or not ours:
                return failing, results
            full = True  # the last ones passed: one round over all that are checked here, at once
            continue
        if time.monotonic() > deadline:
            return failing, results
        full = False
        # Each check of ours starts a process in a container that is itself starting: back to back they
        # would take the CPU the services need to get there (two cores). The engine's are only read.
        time.sleep(RECHECK_PAUSE if [box for box in ours if not passed.get(box.name)] else ENGINE_POLL)
