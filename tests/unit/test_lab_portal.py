"""The web portal's login file: written once per lab, owner-only, never replaced, damage is one error."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lab import labstate, portal
from lab.errors import LabError


def test_up_writes_a_login_once_owner_only(tmp_path):
    path = tmp_path / "portal-login.json"
    first = portal.ensure_login(path)
    assert first["user"] == "admin" and len(first["password"]) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert portal.ensure_login(path) == first  # kept across `up`s: the class keeps its password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert portal.ensure_login(tmp_path / "other.json")["password"] != first["password"]


@pytest.mark.parametrize("text", ["{not json", "[]", '{"user": "admin"}', '{"user": "", "password": "x"}'])
def test_a_damaged_login_is_one_error_and_left_as_it_is(tmp_path, text):
    path = tmp_path / "portal-login.json"
    path.write_text(text)
    with pytest.raises(LabError, match=r"portal-login.json is damaged .*: delete it, then `safeq-lab up` writes a new"):
        portal.ensure_login(path)
    assert path.read_text() == text


def test_up_prints_the_login_and_status_only_where_it_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(portal, "login_path", lambda lab=None: tmp_path / "portal-login.json")
    state = labstate.LabState(Path("/p"), env={"SAFEQ_PORTAL_PORT": "8563"})
    assert "no login in" in portal.announce(state)
    login = portal.ensure_login(tmp_path / "portal-login.json")
    shown = portal.announce(state, password=True)
    assert shown.startswith("web portal: http://127.0.0.1:8563/  user admin") and login["password"] in shown
    assert login["password"] not in portal.announce(state)
    assert json.loads((tmp_path / "portal-login.json").read_text()) == login


def test_portal_command_looks_the_login_up_lab_by_lab(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from lab import project
    from lab.cli import main
    monkeypatch.setattr(project, "lab_folder", lambda name: tmp_path / name)
    missing = CliRunner().invoke(main, ["--lab", "student-03", "portal"])
    assert missing.exit_code == 2 and "lab student-03 has no web portal login yet: `safeq-lab up` writes it" in missing.stderr
    assert not (tmp_path / "student-03").exists()
    login = portal.ensure_login(tmp_path / "student-03" / portal.LOGIN_FILE)
    shown = CliRunner().invoke(main, ["--lab", "student-03", "portal", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {"url": "http://127.0.0.1:8560/", "user": "admin", "password": login["password"],
                                        "login_file": str(tmp_path / "student-03" / portal.LOGIN_FILE)}
    (tmp_path / "student-03" / portal.LOGIN_FILE).write_text("{")
    damaged = CliRunner().invoke(main, ["--lab", "student-03", "portal"])
    assert damaged.exit_code == 2 and "is damaged" in damaged.stderr
