"""Crash-safe file system writes.

Every change to a PKI directory goes through a :class:`Transaction`:

* new files are written to a temporary sibling and fsync'ed first
  (:meth:`Transaction.write_file`);
* whole directories are built in a temporary sibling
  (:meth:`Transaction.stage_dir`);
* :meth:`Transaction.commit` then swaps everything into place with
  ``os.replace``/``os.rename`` (atomic on POSIX within one file system), in
  the order the caller added them, and undoes the swaps already made if a
  later one fails.

A reader therefore sees each file either old or new, never half-written.
A directory cannot be swapped in one rename: the old one is renamed aside
first, so its path is briefly absent. Callers add the CA database last, so it
is the commit point; ``init`` instead builds a whole tree beside the target
and swaps it in with :func:`replace_tree`.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from certkit.fsio import FILE_MODE, fsync_dir, write_new

try:  # advisory locking exists on POSIX only; the lab runs on Linux
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

DIR_MODE = 0o755
SECRET_DIR_MODE = 0o700


def _temp_sibling(path: Path, tag: str) -> Path:
    # Hidden sibling on the same file system, so the final rename is atomic.
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(4)}")


def make_dir(path: Path, mode: int = DIR_MODE) -> Path:
    """``path`` with ``mode`` whatever the umask; parents it has to create get ``mode`` too."""
    if not path.parent.is_dir():
        make_dir(path.parent, mode)
    path.mkdir(exist_ok=True)
    os.chmod(path, mode)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class Transaction:
    """A set of file and directory replacements applied together.

    Use as a context manager: anything staged but not committed is removed on
    exit, so a failed operation leaves the tree exactly as it was.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temp, target)
        self._in_place: set[Path] = set()
        self._done: list[tuple[Path, Path | None]] = []  # (target, backup)
        self._backups: list[Path] = []

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._done:
            self.rollback()
        for temp, _ in self._pending:
            _remove(temp)
        self._pending.clear()
        for backup in self._backups:
            _remove(backup)
        self._backups.clear()

    def write_file(self, target: Path, data: bytes, mode: int = FILE_MODE) -> None:
        """Prepare ``target`` with ``data``; it appears on :meth:`commit`.

        The temporary file has ``mode`` from its creation on, so a secret is
        never readable by others, not even before the swap."""
        temp = _temp_sibling(target, "new")
        self._pending.append((temp, target))
        write_new(temp, data, mode)

    def stage_dir(self, target: Path, mode: int = DIR_MODE, in_place: bool = False) -> Path:
        """Return an empty directory that replaces ``target`` on :meth:`commit`.

        ``in_place``: keep the directory itself and replace its files one by one, so a
        container that bind-mounts it sees the new files (a renamed-in directory it would not).
        """
        temp = _temp_sibling(target, "new")
        self._pending.append((temp, target))
        if in_place:
            self._in_place.add(temp)
        temp.mkdir(mode=mode)
        os.chmod(temp, mode)
        return temp

    def commit(self) -> None:
        """Swap every staged item into place, in the order it was added."""
        try:
            for temp, target in self._pending:
                self._swap(temp, target)
        except OSError:
            self.rollback()
            raise
        self._pending.clear()

    def _swap_files(self, temp: Path, target: Path) -> None:
        new = {p.relative_to(temp) for p in temp.rglob("*") if p.is_file()}
        old = {p.relative_to(target) for p in target.rglob("*") if p.is_file()}
        for rel in sorted(p.relative_to(temp) for p in temp.rglob("*") if p.is_dir()):  # parents first
            (target / rel).mkdir(exist_ok=True)
            os.chmod(target / rel, (temp / rel).stat().st_mode & 0o7777)
        for rel in sorted(new):
            self._swap(temp / rel, target / rel)
        for rel in sorted(old - new):
            backup = _temp_sibling(target / rel, "old")
            os.rename(target / rel, backup)
            self._backups.append(backup)
            self._done.append((target / rel, backup))
        _remove(temp)

    def _swap(self, temp: Path, target: Path) -> None:
        backup: Path | None = None
        if temp in self._in_place and target.is_dir():
            return self._swap_files(temp, target)
        if temp.is_dir():
            if target.exists():
                # Directories cannot be replaced in one rename; keep the old
                # one aside until the whole transaction has succeeded.
                backup = _temp_sibling(target, "old")
                os.rename(target, backup)
                self._backups.append(backup)
            try:
                os.rename(temp, target)
            except OSError:
                if backup is not None:
                    os.rename(backup, target)
                    self._backups.remove(backup)
                raise
        else:
            if target.exists():
                # A hard link keeps the old content reachable for rollback
                # while os.replace swaps the name with no gap for readers.
                backup = _temp_sibling(target, "old")
                try:
                    os.link(target, backup)
                except OSError:
                    shutil.copy2(target, backup)
                self._backups.append(backup)
            os.replace(temp, target)
        fsync_dir(target.parent)
        self._done.append((target, backup))

    def rollback(self) -> None:
        """Undo the swaps already made, newest first (best effort)."""
        for target, backup in reversed(self._done):
            with contextlib.suppress(OSError):
                if backup is None:
                    _remove(target)
                elif backup.is_dir():
                    _remove(target)
                    os.rename(backup, target)
                    self._backups.remove(backup)
                else:
                    os.replace(backup, target)
                    self._backups.remove(backup)
        self._done.clear()


def replace_tree(staging: Path, target: Path) -> None:
    """Move a fully built directory ``staging`` to ``target``.

    An existing ``target`` is moved aside first and deleted only after the
    new tree is in place; on failure the old tree is put back.
    """
    old: Path | None = None
    if target.exists():
        old = _temp_sibling(target, "old")
        try:
            os.rename(target, old)
        except OSError as exc:
            if exc.errno in (errno.EBUSY, errno.EXDEV):
                raise OSError(
                    exc.errno,
                    f"cannot replace {target} (is it a mount point?); "
                    "use a --dir below the mount point",
                ) from exc
            raise
    try:
        os.rename(staging, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def temp_dir_beside(target: Path) -> Iterator[Path]:
    """A private scratch directory next to ``target`` (same file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    path = _temp_sibling(target, "staging")
    path.mkdir(mode=DIR_MODE)
    try:
        yield path
    finally:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def locked(directory: Path, shared: bool = False) -> Iterator[None]:
    """Serialize writers of one PKI: a flock on its parent directory
    (exclusive for writers, shared for readers).

    The parent is used because ``init`` replaces the PKI directory itself;
    locking a directory creates no file, so a failed command leaves no trace.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    # Lock the nearest existing ancestor: a command that fails must not have
    # created directories as a side effect.
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
