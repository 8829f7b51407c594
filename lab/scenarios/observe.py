"""Look at the running lab for a scenario's checks (lab.scenarios.checks judges what is seen).

Everything is read the way a person would find it: the primary's admin API (endpoints, refused
connections), an endpoint's own status command, `openssl s_client` on the primary, a log file, the
service's healthcheck run now.
"""
from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any, Sequence

from safeqlab.records import current_record

from .. import admin, engine
from ..errors import LabError
from .checks import Check, Result, match

STATUS_COMMANDS = {"gateway": "safeq-gateway status --json", "client": "safeq-client status --json"}
POLL = 0.5


def served_subject(host: str = "primary-host") -> str | None:
    """The subject of what the primary serves, as the doc checks it (openssl s_client on the primary)."""
    out = engine.exec_sh("primary", f"openssl s_client -servername {shlex.quote(host)} -connect localhost:2560 "
                                    "</dev/null 2>&1", check=False, timeout=20).stdout
    found = re.search(r"^subject=(.*)$", out, re.M)
    return re.sub(r",\s+", ",", found.group(1).strip()) if found else None


def _status(service: str) -> dict | None:
    proc = engine.exec_sh(service, STATUS_COMMANDS[service], check=False, timeout=20)
    try:
        return json.loads(proc.stdout) if proc.returncode in (0, 1) and proc.stdout.strip() else None
    except ValueError:
        return None


def _health(service: str) -> tuple[bool, str]:
    try:
        return engine.healthcheck_now(engine.running(service))
    except engine.NotRunning:
        return False, "container is not running"


def gather(check: Check, cache: dict) -> Any:
    """The observation one check needs; ``cache`` shares one API answer between checks of a round."""
    def once(key, read):
        if key not in cache:
            cache[key] = read()
        return cache[key]

    if check.kind == "endpoint":
        return current_record(once("endpoints", lambda: admin.lab_call("GET", "/api/v1/endpoints")), check.subject)
    if check.kind == "refused":
        return once("refused", lambda: admin.lab_call("GET", "/api/v1/refused"))
    if check.kind == "status":
        return once(("status", check.subject), lambda: _status(check.subject))
    if check.kind == "served":
        return once("served", served_subject)
    if check.kind == "log":
        path = shlex.quote(check.get("file"))
        return engine.exec_sh(check.get("service"), f"tail -n 400 {path}", check=False, timeout=20).stdout
    if check.kind == "health":
        return once(("health", check.subject), lambda: _health(check.subject))
    raise ValueError(check.kind)  # pragma: no cover


def look(checks: Sequence[Check]) -> list[Result]:
    """One round: each check judged against what the lab shows now."""
    cache: dict = {}
    out = []
    for check in checks:
        try:
            out.append(match(check, gather(check, cache)))
        except LabError as exc:  # the primary down, a container gone: observed as such, not a crash
            out.append(Result(check, False, f"not observable: {exc}"))
    return out


def wait(checks: Sequence[Check], timeout: float) -> list[Result]:
    """Look again until every check holds or the time is up; the last round is the answer."""
    end = time.monotonic() + timeout
    while True:
        results = look(checks)
        if all(r.ok for r in results) or time.monotonic() >= end:
            return results
        time.sleep(POLL)
