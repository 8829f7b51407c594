"""What the doctor reports: one finding per problem, its severity, a stable code, the file, the fix."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

INFO, WARNING, ERROR = "info", "warning", "error"
SEVERITIES = (INFO, WARNING, ERROR)
EXIT_CODES = {INFO: 0, WARNING: 1, ERROR: 2}


@dataclass(frozen=True)
class Finding:
    severity: str  # info | warning | error
    code: str      # stable, e.g. eku.client-auth-missing
    file: str      # the file the finding is about ("" when none)
    message: str   # what is wrong
    fix: str       # how to fix it ("" for info)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")


def finding(severity: str, code: str, file: Path | str | None, message: str, fix: str = "") -> Finding:
    return Finding(severity, code, str(file) if file else "", message, fix)


def exit_code(findings: list[Finding]) -> int:
    """0: nothing above info; 1: warnings; 2: errors."""
    return max((EXIT_CODES[f.severity] for f in findings), default=0)


def ordered(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; otherwise in the order found."""
    return sorted(findings, key=lambda f: -EXIT_CODES[f.severity])


def shown_path(file: str, base: Path | None) -> str:
    if not file or base is None:
        return file
    path = Path(file)
    return str(path.relative_to(base)) if path.is_relative_to(base) else file


def line(f: Finding, base: Path | None = None) -> str:
    """severity, code, file, what is wrong, how to fix it: one line."""
    where = shown_path(f.file, base) or "-"
    text = f"{f.severity:<7} {f.code}  {where}: {f.message}"
    return f"{text}; fix: {f.fix}" if f.fix else text


def summary(findings: list[Finding]) -> str:
    counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
    return f"{counts[ERROR]} error(s), {counts[WARNING]} warning(s), {counts[INFO]} note(s)"


def connection_line(outcome) -> str:
    """One endpoint's connection to the primary, as the doctor foresees it (a trust.Outcome)."""
    what = "connects" if outcome.connects else f"refused by {outcome.refused_by}: {outcome.reason}"
    return f"{outcome.role} {outcome.host}: {what}"


def to_json(findings: list[Finding], java: dict, spec: str, connections: list = ()) -> str:
    return json.dumps({"spec": spec, "findings": [asdict(f) for f in ordered(findings)], "java": java,
                       "connections": [dict(asdict(c), connects=c.connects) for c in connections],
                       "exit_code": exit_code(findings)}, indent=2)
