"""The README's scenario catalog table is kept in step with scenarios/: one row per scenario file, in
file-name order (the order of lab.scenarios.catalog.load()), each demo marked "(demo)" and no
exercise marked so.

The checks run on the README and the catalog as they are, and on altered copies (a scenario file
added, a row removed, rows swapped, a mark wrong), which they must catch.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from lab.scenarios import catalog

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BEGIN = "<!-- scenario catalog: kept in step with scenarios/ by tests/unit/test_readme_catalog.py -->"
END = "<!-- end of scenario catalog -->"
HEADER = ["id", "what breaks", "what the trainee sees"]
FIRST_CELL = re.compile(r"`(?P<id>[^`\s]+)`(?P<demo> \(demo\))?")


def cells(line: str) -> list[str]:
    line = line.strip()
    assert line.startswith("|") and line.endswith("|"), f"not a table row: {line!r}"
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def table(text: str) -> list[tuple[str, bool]]:
    """(id, marked demo) per row of the README's catalog table, in the README's order."""
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"the README needs one catalog table between {BEGIN} and {END}"
    lines = [line for line in text.split(BEGIN, 1)[1].split(END, 1)[0].splitlines() if line.strip()]
    assert len(lines) >= 2, "the catalog table has no header"
    header, rule, *rows = lines
    assert cells(header) == HEADER
    assert all(set(c) <= {"-", ":"} and c for c in cells(rule)), f"not a header rule: {rule!r}"
    out = []
    for row in rows:
        found = cells(row)
        assert len(found) == len(HEADER) and all(found), f"a row needs {len(HEADER)} filled cells: {row!r}"
        first = FIRST_CELL.fullmatch(found[0])
        assert first, f"the first cell is `id` or `id` (demo): {row!r}"
        out.append((first["id"], bool(first["demo"])))
    return out


def differences(rows: list[tuple[str, bool]], scenarios: dict[str, catalog.Scenario]) -> list[str]:
    """What the table gets wrong about the catalog; empty when they agree."""
    ids = [ident for ident, _ in rows]
    problems = [f"scenarios/{s.file.name} has no row in the README's catalog table"
                for ident, s in scenarios.items() if ident not in ids]
    problems += [f"README row {ident} names no scenario file" for ident in ids if ident not in scenarios]
    problems += [f"README row {ident} appears {ids.count(ident)} times" for ident in sorted(set(ids))
                 if ids.count(ident) > 1]
    if not problems and ids != list(scenarios):
        problems.append(f"README rows are not in file-name order: {ids} != {list(scenarios)}")
    for ident, demo in rows:
        if ident in scenarios and demo == scenarios[ident].exercise:
            problems.append(f"README row {ident}: " + ("marked (demo), but it is an exercise" if demo
                                                       else "an exercise per the README, but it is a demo (no solution)"))
    return problems


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def scenarios() -> dict[str, catalog.Scenario]:
    return catalog.load()


def test_the_readme_table_lists_every_scenario_in_file_name_order_with_its_mark(readme, scenarios):
    assert differences(table(readme), scenarios) == []


def test_the_catalog_has_demos_and_exercises(scenarios):
    marks = {s.exercise for s in scenarios.values()}
    assert marks == {True, False}  # else the (demo) check would prove little


def _copy_catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for path in sorted(catalog.folder().glob("*.toml")):
        shutil.copy(path, folder / path.name)
    return folder


def test_a_scenario_file_without_a_row_is_caught(readme, tmp_path):
    folder = _copy_catalog(tmp_path)
    text = (folder / "baseline.toml").read_text(encoding="utf-8")
    (folder / "zz-new-scenario.toml").write_text(text.replace('id = "baseline"', 'id = "zz-new-scenario"'),
                                                 encoding="utf-8")
    problems = differences(table(readme), catalog.load(folder))
    assert problems == ["scenarios/zz-new-scenario.toml has no row in the README's catalog table"]


def test_a_removed_row_is_caught(readme, scenarios):
    gone = next(iter(scenarios))
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    row = next(line for line in block.splitlines() if line.startswith(f"| `{gone}`"))
    problems = differences(table(readme.replace(row + "\n", "")), scenarios)
    assert problems == [f"scenarios/{gone}.toml has no row in the README's catalog table"]


def test_a_row_for_a_removed_file_is_caught(readme, tmp_path):
    folder = _copy_catalog(tmp_path)
    gone = sorted(folder.glob("*.toml"))[-1]
    gone.unlink()
    assert differences(table(readme), catalog.load(folder)) == [f"README row {gone.stem} names no scenario file"]


def test_rows_out_of_order_are_caught(readme, scenarios):
    block = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    first, second = [line for line in block.splitlines() if line.startswith("| `")][:2]
    swapped = readme.replace(first + "\n" + second, second + "\n" + first)
    assert swapped != readme
    problems = differences(table(swapped), scenarios)
    assert len(problems) == 1 and "file-name order" in problems[0]


@pytest.mark.parametrize("exercise", [True, False], ids=["exercise-marked-demo", "demo-unmarked"])
def test_a_wrong_mark_is_caught(readme, scenarios, exercise):
    ident = next(i for i, s in scenarios.items() if s.exercise == exercise)
    rows = [(i, (not demo) if i == ident else demo) for i, demo in table(readme)]
    problems = differences(rows, scenarios)
    assert len(problems) == 1 and problems[0].startswith(f"README row {ident}:")
