"""The primary's state files (account settings, endpoints list): strict reads and the start-up check.

A damaged file is never read as the defaults and then overwritten: that would silently
drop the account's policy or every endpoint an administrator trusted.
"""
from __future__ import annotations

import datetime
import os
import threading
import time
from pathlib import Path

from certkit import fsio
from certkit.fsio import StateError

from . import paths

POLICIES = ("built-in", "trusted-ca")
ON_FAILURE = ("fail-closed", "fail-open")
RESTART = "then `systemctl restart safeq-cloud-server`"
_STARTS_FROM = {
    "settings.json": "the product defaults (certificate policy built-in, no auto-trust, OCSP off)",
    "endpoints.json": "an empty endpoints list (built-in endpoints must then be trusted again)",
}


def settings_problem(doc) -> str | None:
    """What is wrong with a settings document, or None."""
    if not isinstance(doc, dict):
        return f"not a JSON object but {type(doc).__name__}"
    if "certificate_policy" in doc and doc["certificate_policy"] not in POLICIES:
        return f"certificate_policy {doc['certificate_policy']!r} is not one of {', '.join(POLICIES)}"
    if "auto_trust" in doc and not isinstance(doc["auto_trust"], bool):
        return "auto_trust is not true or false"
    ocsp = doc.get("ocsp", {})
    if ocsp is not None and not isinstance(ocsp, dict):
        return "ocsp is not a JSON object"
    if ocsp and ocsp.get("on_failure", "fail-closed") not in ON_FAILURE:
        return f"ocsp.on_failure {ocsp.get('on_failure')!r} is not one of {', '.join(ON_FAILURE)}"
    return None


def endpoints_problem(doc) -> str | None:
    if not isinstance(doc, dict):
        return f"not a JSON object but {type(doc).__name__}"
    endpoints = doc.get("endpoints", {})
    if not isinstance(endpoints, dict):
        return "endpoints is not a JSON object"
    bad = [key for key, ep in endpoints.items() if not isinstance(ep, dict)]
    if bad:
        return f"endpoint record {bad[0]!r} is not a JSON object"
    return None


def _checks() -> list[tuple[Path, object]]:
    return [(paths.SETTINGS, settings_problem), (paths.ENDPOINTS, endpoints_problem)]


def _what_to_do(path: Path) -> str:
    starts = _STARTS_FROM.get(path.name, "empty")
    return f"fix it, or remove it to start from {starts}, {RESTART}"


def read_state(path: Path, problem) -> dict:
    """The JSON object in ``path`` ({} when there is none); StateError saying what to do when damaged."""
    try:
        doc = fsio.read_json(path, {})
    except StateError as exc:
        raise StateError(f"{exc}; {_what_to_do(path)}") from None
    found = problem(doc)
    if found:
        raise StateError(f"{path}: {found}; {_what_to_do(path)}")
    return doc


_read: dict[Path, tuple[tuple, dict]] = {}
_read_lock = threading.Lock()
# File times tick coarsely (a few ms): a file changed this recently could change again under
# the same times, so it is read every time until it is older than this.
SETTLED_NS = 100_000_000


def read_state_unchanged(path: Path, problem) -> dict:
    """read_state(), parsed again only when the file changed (its inode, size, mtime or ctime):
    the settings are asked for at every connection. Treat the document as read-only."""
    try:
        st = os.stat(path)
    except OSError:
        return read_state(path, problem)  # missing or unreadable: read_state says which
    key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _read_lock:
        found = _read.get(path)
    if found is not None and found[0] == key:
        return found[1]
    doc = read_state(path, problem)
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > SETTLED_NS:
        with _read_lock:
            _read[path] = (key, doc)
    return doc


def _damage(path: Path, problem) -> str | None:
    try:
        doc = fsio.read_json(path, {})
    except StateError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return problem(doc)


def keep_copy(path: Path) -> str:
    """Copy a damaged file aside once; an identical earlier copy is reused. Returns what happened."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"no copy could be made ({exc.strerror})"
    for earlier in sorted(path.parent.glob(f"{path.name}.corrupt-*")):
        try:
            if earlier.read_bytes() == data:
                return f"a copy is kept as {earlier}"
        except OSError:
            continue
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    copy = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        fsio.atomic_write(copy, data, fsio.SECRET_FILE_MODE)
    except OSError as exc:
        return f"no copy could be made ({exc.strerror})"
    return f"a copy is kept as {copy}"


def preflight() -> None:
    """Called at start: StateError (one message for every damaged file) instead of starting on defaults.

    The damaged file stays where it is, so nothing is lost until an administrator decides."""
    problems = []
    for path, problem in _checks():
        found = _damage(path, problem)
        if found:
            problems.append(f"{path} is damaged ({found}); {keep_copy(path)}; {_what_to_do(path)}")
    if problems:
        raise StateError(" | ".join(problems))
