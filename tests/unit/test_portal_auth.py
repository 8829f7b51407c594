"""The portal's login file, sessions and CSRF tokens (safeq_portal.auth), without HTTP."""
from __future__ import annotations

import json

import pytest

from safeq_portal import auth, cli


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_credentials_check_needs_both():
    creds = auth.Credentials("admin", "s3cret")
    assert creds.check("admin", "s3cret")
    assert not creds.check("admin", "wrong")
    assert not creds.check("other", "s3cret")
    assert not creds.check("", "")
    assert "s3cret" not in repr(creds)


def test_load_credentials(tmp_path):
    path = tmp_path / "login.json"
    path.write_text(json.dumps({"user": "admin", "password": "pässword"}))
    creds = auth.load_credentials(str(path))
    assert (creds.user, creds.password) == ("admin", "pässword")


@pytest.mark.parametrize("content, words", [
    (None, "No such file"),
    (b"{not json", "is not JSON"),
    (b"\xff\xfe", "is not JSON"),
    (json.dumps({"user": "admin"}).encode(), '"password"'),
    (json.dumps({"user": "", "password": "x"}).encode(), "non-empty"),
    (json.dumps(["admin", "x"]).encode(), '"user"'),
    (json.dumps({"user": 1, "password": "x"}).encode(), '"user"'),
])
def test_login_file_errors_name_the_file_and_the_fix(tmp_path, content, words):
    path = tmp_path / "portal-login"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(auth.LoginFileError) as err:
        auth.load_credentials(str(path))
    message = str(err.value)
    assert str(path) in message and words in message
    assert "run `safeq-lab up`, which writes it" in message
    assert "\n" not in message


def test_serve_without_login_file_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nope"
    monkeypatch.setenv("SAFEQ_PORTAL_LOGIN", str(missing))
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "safeq-lab up" in err


def test_sessions_expire_after_idle_time_and_use_renews_them():
    clock = Clock()
    sessions = auth.Sessions(idle=100, clock=clock)
    token, session = sessions.create("admin")
    assert session.user == "admin" and session.csrf and session.csrf != token
    clock.now += 90
    assert sessions.get(token) is session  # used: the idle time starts again
    clock.now += 90
    assert sessions.get(token) is session
    clock.now += 101
    assert sessions.get(token) is None
    assert len(sessions) == 0


def test_sessions_default_idle_is_8_hours():
    clock = Clock()
    sessions = auth.Sessions(clock=clock)
    token, _ = sessions.create("admin")
    clock.now += 8 * 3600 - 1
    assert sessions.get(token)
    clock.now += 8 * 3600 + 1
    assert sessions.get(token) is None


def test_session_tokens_are_random_unknown_ones_refused_and_drop_ends_one():
    sessions = auth.Sessions()
    a, _ = sessions.create("admin")
    b, _ = sessions.create("admin")
    assert a != b and len(a) >= 40
    assert sessions.get("forged") is None and sessions.get(None) is None and sessions.get("") is None
    sessions.drop(a)
    assert sessions.get(a) is None and sessions.get(b) is not None


@pytest.mark.parametrize("given, expected, ok", [
    ("abc", "abc", True), ("abc", "abd", False), ("", "", False), (None, "abc", False),
    ("abc", None, False), ("abc", "abcd", False), ("é", "é", True),
])
def test_same_token(given, expected, ok):
    assert auth.same_token(given, expected) is ok


def test_cookie_attributes():
    value = auth.cookie(auth.SESSION_COOKIE, "tok")
    assert value == "__Host-safeq-portal=tok; Path=/; Secure; HttpOnly; SameSite=Strict"
    assert auth.clear_cookie(auth.CSRF_COOKIE).startswith("__Host-safeq-csrf=; Path=/; Secure")
    assert auth.clear_cookie(auth.CSRF_COOKIE).endswith("Max-Age=0")
