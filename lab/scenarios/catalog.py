"""The scenario catalog: one TOML file per scenario under scenarios/, read into frozen dataclasses.

A scenario says how the lab is built (``[lab]``), what breaks (``[[break]]``, declarative actions
from lab.scenarios.actions), what the lab then shows (``[[expect]]``), what the trainee is told
(``ticket``, ``hint``), the commands that fix it (``solution``) and what proves the fix
(``[[fixed]]``). Anything wrong is one ScenarioError naming the file and the key.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import project
from ..errors import LabError
from . import actions, checks

POLICIES = ("trusted-ca", "built-in")
ID_RULE = re.compile(r"[a-z0-9][a-z0-9-]{0,36}")
TOP_KEYS = {"id", "title", "ticket", "hint", "solution", "lab", "break", "expect", "fixed"}
LAB_KEYS = {"intermediates": int, "policy": str}


class ScenarioError(LabError):
    """A scenario file that cannot be used."""


@dataclass(frozen=True)
class LabOptions:
    intermediates: int = 1
    policy: str = "trusted-ca"


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    ticket: str
    hint: str
    file: Path
    lab: LabOptions = LabOptions()
    breaks: tuple[actions.Action, ...] = ()
    expect: tuple[checks.Check, ...] = ()
    fixed: tuple[checks.Check, ...] = ()
    solution: tuple[str, ...] = field(default=())

    @property
    def exercise(self) -> bool:
        """A trainee can be handed it: something breaks and something proves the fix."""
        return bool(self.breaks and self.fixed and self.solution)


def folder() -> Path:
    return project.root() / "scenarios"


def _text(data: dict, key: str, where: str, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


def _lab(data: Any, where: str) -> LabOptions:
    if data is None:
        return LabOptions()
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: [lab] must be a table")
    for key, value in data.items():
        if key not in LAB_KEYS:
            raise ScenarioError(f"{where}: [lab] has an unknown key '{key}' (known: {', '.join(LAB_KEYS)})")
        if not isinstance(value, LAB_KEYS[key]) or isinstance(value, bool):
            raise ScenarioError(f"{where}: [lab] {key} must be a {LAB_KEYS[key].__name__}")
    options = LabOptions(**data)
    if options.policy not in POLICIES:
        raise ScenarioError(f"{where}: [lab] policy must be one of {', '.join(POLICIES)}")
    if not 0 <= options.intermediates <= 3:
        raise ScenarioError(f"{where}: [lab] intermediates must be 0 to 3")
    return options


def _tables(data: Any, key: str, where: str) -> list[dict]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError(f"{where}: '{key}' must be an array of tables ([[{key}]])")
    return value


def parse(text: str, path: Path) -> Scenario:
    where = path.name
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(TOP_KEYS))})")
    ident = _text(data, "id", where)
    if not ID_RULE.fullmatch(ident):
        raise ScenarioError(f"{where}: id '{ident}': lowercase letters, digits and '-', up to 37 (its lab is sc-ID)")
    if ident != path.stem:
        raise ScenarioError(f"{where}: id '{ident}' must match the file name ({path.stem})")
    solution = data.get("solution", [])
    if not isinstance(solution, list) or not all(isinstance(s, str) and s.strip() for s in solution):
        raise ScenarioError(f"{where}: 'solution' must be a list of commands")
    try:
        breaks = tuple(actions.parse(t) for t in _tables(data, "break", where))
        expect = tuple(checks.parse(t) for t in _tables(data, "expect", where))
        fixed = tuple(checks.parse(t) for t in _tables(data, "fixed", where))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if not expect:
        raise ScenarioError(f"{where}: at least one [[expect]] is needed: what the lab shows")
    if bool(fixed) != bool(solution):
        raise ScenarioError(f"{where}: [[fixed]] and 'solution' go together (an exercise needs both)")
    return Scenario(id=ident, title=_text(data, "title", where), ticket=_text(data, "ticket", where),
                    hint=_text(data, "hint", where, required=bool(fixed)), file=path, lab=_lab(data.get("lab"), where),
                    breaks=breaks, expect=expect, fixed=fixed, solution=tuple(s.strip() for s in solution))


def load(directory: Path | None = None) -> dict[str, Scenario]:
    """Every scenario of the catalog, by id, in file-name order."""
    directory = directory or folder()
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ScenarioError(f"no scenario files (*.toml) in {directory}")
    out = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path.name}: cannot be read: {exc}") from None
        scenario = parse(text, path)
        out[scenario.id] = scenario
    return out


def pick(catalog: dict[str, Scenario], ids: list[str]) -> list[Scenario]:
    unknown = [i for i in ids if i not in catalog]
    if unknown:
        raise ScenarioError(f"unknown scenario(s) {', '.join(unknown)}: `safeq-lab scenarios list` shows the ids")
    return [catalog[i] for i in dict.fromkeys(ids)]  # one lab per scenario: each id once
