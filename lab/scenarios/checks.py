"""What a scenario expects the lab to show, and the pure judgement of one observation.

One check is one TOML table with exactly one subject key:

  endpoint = "gateway-host"   the primary's record of that endpoint: decision, state, reason
  status   = "gateway"        the endpoint's own status (safeq-gateway / safeq-client status): state, reason, icon
  served   = "CN=localhost"   the certificate the primary serves on its port (its subject contains this)
  log      = "text"           a line of a service's log file contains it: service, file
  refused  = "text"           the primary's refused connections hold a reason that contains it
  health   = "primary"        the service's own healthcheck, run now: ok, says

``reason``, ``says`` and the texts are substrings in the product's (Java's) words; the others match
exactly. Gathering the observation is lab.scenarios.observe; this module never touches the lab.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUBJECTS = {
    "endpoint": {"decision", "state", "reason"},
    "status": {"state", "reason", "icon"},
    "served": set(),
    "log": {"service", "file"},
    "refused": set(),
    "health": {"ok", "says"},
}
SUBSTRING = {"reason", "says"}


@dataclass(frozen=True)
class Check:
    kind: str
    subject: str
    want: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default=None):
        return dict(self.want).get(key, default)

    def describe(self) -> str:
        wants = ", ".join(f"{k} {'~' if k in SUBSTRING else '='} {v!r}" for k, v in self.want if k not in ("file",))
        return f"{self.kind} {self.subject}" + (f": {wants}" if wants else "")


@dataclass(frozen=True)
class Result:
    check: Check
    ok: bool
    observed: str


def parse(table: dict) -> Check:
    kinds = [k for k in table if k in SUBJECTS]
    if len(kinds) != 1:
        raise ValueError(f"a check names exactly one of {', '.join(SUBJECTS)}; got {sorted(table)}")
    kind = kinds[0]
    subject = table[kind]
    if not isinstance(subject, str) or not subject:
        raise ValueError(f"{kind} must be a non-empty string")
    extra = set(table) - {kind} - SUBJECTS[kind]
    if extra:
        raise ValueError(f"a {kind} check takes {', '.join(sorted(SUBJECTS[kind])) or 'no other key'}; "
                         f"not {', '.join(sorted(extra))}")
    if kind == "log" and not {"service", "file"} <= set(table):
        raise ValueError("a log check names the service and the file it reads")
    if kind in ("endpoint", "status", "health") and len(table) == 1:
        raise ValueError(f"{'an' if kind == 'endpoint' else 'a'} {kind} check says what it expects: "
                         f"{', '.join(sorted(SUBJECTS[kind]))}")
    for key, value in table.items():
        if key == "ok" and not isinstance(value, bool):
            raise ValueError("ok must be true or false")
        if key != "ok" and not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
    return Check(kind, subject, tuple(sorted((k, v) for k, v in table.items() if k != kind)))


def _fields(check: Check, record: dict | None, shown: str) -> Result:
    if record is None:
        return Result(check, False, shown)
    for key, value in check.want:
        have = record.get(key)
        ok = (value in (have or "")) if key in SUBSTRING else have == value
        if not ok:
            return Result(check, False, shown)
    return Result(check, True, shown)


def match(check: Check, observed: Any) -> Result:
    """Judge one observation (what observe.gather returned for this check)."""
    kind = check.kind
    if kind == "endpoint":
        record = observed
        shown = "no record" if record is None else \
            f"{record.get('decision')}/{record.get('state')}: {record.get('reason') or ''}".removesuffix(": ")
        return _fields(check, record, shown)
    if kind == "status":
        shown = "no status" if observed is None else \
            "/".join(str(observed.get(k)) for k in ("state", "icon") if k in observed) + f": {observed.get('reason') or ''}"
        return _fields(check, observed, shown.removesuffix(": "))
    if kind == "served":
        return Result(check, observed is not None and check.subject in observed, observed or "nothing served")
    if kind == "log":
        lines = [line for line in (observed or "").splitlines() if check.subject in line]
        return Result(check, bool(lines), lines[-1] if lines else "no such line")
    if kind == "refused":
        reasons = [r.get("reason") or "" for r in observed or []]
        hits = [r for r in reasons if check.subject in r]
        return Result(check, bool(hits), hits[-1] if hits else (reasons[-1] if reasons else "nothing refused"))
    if kind == "health":
        ok, text = observed
        return _fields(check, {"ok": ok, "says": text}, f"{'healthy' if ok else 'unhealthy'}: {text}")
    raise ValueError(kind)  # pragma: no cover - parse() admits only known kinds
