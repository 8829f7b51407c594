"""The web portal's login: written once per lab by `up` (0600), mounted read-only into the portal.

The portal reads it as root at start and keeps it in memory; the host file is where a trainer
looks the password up again (`safeq-lab status` prints where it is).
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path

from certkit.fsio import SECRET_FILE_MODE, StateError, atomic_write, read_json

from . import labstate
from .errors import LabError

LOGIN_FILE = "portal-login.json"
USER = "admin"


def login_path(lab: str | None = None) -> Path:
    return labstate.folder(lab) / LOGIN_FILE


def ensure_login(path: Path | None = None) -> dict:
    """The lab's portal login, created with a fresh password when there is none; never replaced."""
    path = path or login_path()
    try:
        login = read_json(path)
    except StateError:
        login = "damaged"
    if login is None:
        login = {"user": USER, "password": secrets.token_urlsafe(12)}
        atomic_write(path, json.dumps(login, indent=2).encode() + b"\n", SECRET_FILE_MODE)
        return login
    if not (isinstance(login, dict) and isinstance(login.get("user"), str) and isinstance(login.get("password"), str)
            and login["user"] and login["password"]):
        raise LabError(f"{path} is damaged (it should hold the web portal's user and password as JSON): "
                       "delete it, then `safeq-lab up` writes a new login")
    path.chmod(SECRET_FILE_MODE)  # owner-only even if someone loosened it
    return login


def compose_env(path: Path, port: int) -> dict[str, str]:
    return {"SAFEQ_PORTAL_LOGIN": str(path), "SAFEQ_PORTAL_PORT": str(port)}


def url(state: labstate.LabState) -> str:
    return f"http://127.0.0.1:{state.portal_port}/"


def announce(state: labstate.LabState, password: bool = False) -> str:
    """One line for `up` (with the password) and `status` (where it is kept)."""
    path = login_path()
    try:
        login = read_json(path)
    except StateError:
        login = None
    if not isinstance(login, dict):
        return f"web portal: {url(state)} (no login in {path}: `safeq-lab up` writes one)"
    secret = f"password {login.get('password')}  " if password else ""
    return f"web portal: {url(state)}  user {login.get('user')}  {secret}(login kept in {path}, owner-only)"



def lookup() -> dict:
    """This lab's portal address and login (`safeq-lab portal`); LabError when `up` never wrote one."""
    path = login_path()
    if not path.exists():
        raise LabError(f"lab {labstate.name()} has no web portal login yet: `safeq-lab up` writes it ({path})")
    login = ensure_login(path)  # the same checks `up` makes: damage is one error
    return {"url": url(labstate.current()), "user": login["user"], "password": login["password"],
            "login_file": str(path)}
