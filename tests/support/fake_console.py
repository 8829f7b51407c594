"""The primary's console session (lab.steps.console) played by a fake engine: every step passes."""
from __future__ import annotations

import re

from lab import engine, steps


def passed(script: str) -> str:
    """The stdout of a session in which each step of ``script`` ran and exited 0."""
    indexes = sorted({int(n) for n in re.findall(rf"{re.escape(steps.MARK)} (\d+) ", script)})
    return "".join(f"{steps.MARK} {i} 0\n" for i in indexes)


def ran(service: str, script: str) -> engine.ExecResult:
    return engine.ExecResult(("sh", "-c", script), 0, passed(script) if steps.MARK in script else "", "")
