"""Atomic file writes and strict JSON state reads."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600


class StateError(Exception):
    """A state file exists but cannot be used; it is left where it is."""


def fsync_dir(path: Path) -> None:
    """Persist a directory entry change (rename/create) to disk."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_new(path: str | Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write (or truncate) ``path`` with an explicit mode, whatever the umask, and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # before the data: an existing file with a looser mode never shows it
        view = memoryview(data)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace ``path`` in one rename, so readers see the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        write_new(tmp, data, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: str | Path, data, mode: int = FILE_MODE) -> None:
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode)


def read_json(path: str | Path, default=None):
    """The document, ``default`` when the file does not exist, StateError when it is damaged.

    A damaged state file is never read as the default: whoever owns it decides what to do."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise StateError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise StateError(f"{path}: not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None
