"""The portal's one login, its sessions and CSRF tokens: no HTTP here, so each rule is testable alone."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

DEFAULT_LOGIN_FILE = "/run/secrets/portal-login"
IDLE = 8 * 3600  # seconds a session lives without a request
SESSION_COOKIE = "__Host-safeq-portal"
CSRF_COOKIE = "__Host-safeq-csrf"  # the double-submit token of the login form (no session yet)
CSRF_REFUSED = "refused: the form's CSRF token is missing or wrong; reload the page"


class LoginFileError(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # a traceback or a debug line must not show the password
        return f"Credentials(user={self.user!r}, password=***)"

    def check(self, user: str, password: str) -> bool:
        # Both compared every time: the answer's timing says nothing about which one was wrong.
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user & ok_password


def login_file() -> str:
    return os.environ.get("SAFEQ_PORTAL_LOGIN", DEFAULT_LOGIN_FILE)


def load_credentials(path: str) -> Credentials:
    """The login from ``path``; LoginFileError with one line naming the file and what to do."""
    hint = "run `safeq-lab up`, which writes it"
    try:
        with open(path, "rb") as f:
            raw = f.read(64 * 1024)
    except OSError as exc:
        raise LoginFileError(f"portal login file {path}: {exc.strerror or exc}: {hint}") from None
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError too
        raise LoginFileError(f"portal login file {path} is not JSON: {hint}") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data.get(k) for k in ("user", "password")):
        raise LoginFileError(f'portal login file {path} needs {{"user": "...", "password": "..."}} '
                             f"(non-empty strings): {hint}")
    return Credentials(data["user"], data["password"])


def same_token(given: str | None, expected: str | None) -> bool:
    """A CSRF token check: both present and equal, compared in constant time."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Session:
    user: str
    csrf: str
    last_used: float
    flash: list = field(default_factory=list)  # (kind, text) shown once after a redirect


class Sessions:
    """Sessions in memory, keyed by the token's hash (a lookup's timing says nothing about the token)."""

    def __init__(self, idle: float = IDLE, clock=time.monotonic):
        self.idle = idle
        self.clock = clock
        self._by_hash: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def create(self, user: str) -> tuple[str, Session]:
        token = new_token()
        session = Session(user=user, csrf=new_token(), last_used=self.clock())
        with self._lock:
            self._expire()
            self._by_hash[self._key(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (its idle time starts again), or None."""
        if not token:
            return None
        with self._lock:
            self._expire()
            session = self._by_hash.get(self._key(token))
            if session:
                session.last_used = self.clock()
            return session

    def drop(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_hash.pop(self._key(token), None)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._by_hash)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._by_hash.items() if now - s.last_used > self.idle]:
            del self._by_hash[key]


def cookie(name: str, value: str, max_age: int | None = None) -> str:
    """A Set-Cookie value: __Host- cookies must be Secure, Path=/ and have no Domain."""
    parts = [f"{name}={value}", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def clear_cookie(name: str) -> str:
    return cookie(name, "", max_age=0)
