"""A lab container's own files put back as they were: `python3 -m safeqlab.baseline save|restore`.

A lab is reset between scenarios (a catalog run's, an exercise's) instead of made anew. `save` keeps, in
a root-only archive inside the container, every file of its root file system changed since the
container was made (inode change time) and its volumes whole, with a listing of every folder.
`restore` stops the units, removes what was added since, empties the volumes, extracts the archive and
answers with the units it stopped (the host starts them, in the lab's order) and the fingerprint of
what is now there, which the host compares with the one `save` gave. A file of the image changed or
deleted since `save` cannot be put back: `restore` says so before it changes any file, and starts the
units again. Other mounts (the read-only /pki, docker's init) are never walked; the supervisor's state
is left alone; what units keep under /run is not saved but removed, as at a boot.

Each command reads a JSON plan on stdin and answers one JSON line on stdout.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from certkit.fsio import atomic_write

ARCHIVE = "/var/lib/safeqlab-baseline.tar"
LISTING = "/var/lib/safeqlab-baseline.json"
SUPERVISOR = "/run/safeqlab"   # safeqlab.supervise's state: it keeps running, so it is left alone
RUNTIME = "/run"
UNIT_TIMEOUT = 15
CLOCK_MARGIN = 1.0  # inode times tick coarsely: a change just after a moment may carry a time just before it


class Unrestorable(Exception):
    """A change the archive cannot undo (a file of the image changed or deleted since `save`)."""


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _left_alone(path: str) -> bool:
    return path in (ARCHIVE, LISTING) or _under(path, SUPERVISOR)


def _real(root: Path, path: str) -> str:
    return str(root) + path if str(root) != "/" else path


def walk(root: Path, since: float, volumes: list[str]) -> tuple[dict[str, tuple[str, list[str]]], list[str]]:
    """Every folder of the root file system (other mounts and the volumes left out) with its mode,
    owner and entries; and the paths whose inode changed at or after ``since``."""
    device, found, changed, todo = os.lstat(root).st_dev, {}, [], ["/"]
    skip = set(volumes)
    while todo:
        folder = todo.pop()
        st, names = os.lstat(_real(root, folder)), []
        if st.st_ctime >= since:
            changed.append(folder)
        prefix = folder.rstrip("/") + "/"
        with os.scandir(_real(root, folder)) as entries:
            for entry in entries:
                est = entry.stat(follow_symlinks=False)
                if est.st_dev != device or prefix + entry.name in skip:
                    continue
                names.append(entry.name)
                if stat.S_ISDIR(est.st_mode):
                    todo.append(prefix + entry.name)
                elif est.st_ctime >= since:
                    changed.append(prefix + entry.name)
        found[folder] = (f"{stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid}", sorted(names))
    return found, sorted(changed)


def record(path: Path, name: str) -> str | None:
    """One line per entry: name, type, mode, owner and content; sockets and devices are not kept."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{name}\tmissing"
    head = f"{name}\t{{}}\t{stat.S_IMODE(st.st_mode):o}\t{st.st_uid}\t{st.st_gid}"
    if stat.S_ISDIR(st.st_mode):
        return head.format("d")
    if stat.S_ISLNK(st.st_mode):
        return head.format("l") + "\t" + os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            return head.format("f") + "\t" + hashlib.sha256(f.read()).hexdigest()
    return None


def _member_record(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str | None:
    head = f"{member.name}\t{{}}\t{member.mode & 0o7777:o}\t{member.uid}\t{member.gid}"
    if member.isdir():
        return head.format("d")
    if member.issym():
        return head.format("l") + "\t" + member.linkname
    if member.isreg():
        return head.format("f") + "\t" + hashlib.sha256(tar.extractfile(member).read()).hexdigest()
    return None


def digest(lines) -> str:
    return hashlib.sha256("\n".join(sorted(line for line in lines if line is not None)).encode()).hexdigest()


def save(plan: dict, root: Path = Path("/")) -> dict:
    """The container's own files (changed since ``since``, the container's making) and the volumes archived."""
    at = time.time() - CLOCK_MARGIN
    folders, changed = walk(root, plan["since"] - CLOCK_MARGIN, plan["volumes"])
    layer = [p for p in changed if p != "/" and not _left_alone(p) and not _runtime_file(root, p)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in layer:
            tar.add(root / path.lstrip("/"), arcname=path.lstrip("/"), recursive=False)
        for volume in sorted(plan["volumes"]):
            tar.add(root / volume.lstrip("/"), arcname=volume.lstrip("/"), recursive=True)
    atomic_write(root / ARCHIVE.lstrip("/"), buffer.getvalue(), 0o600)
    atomic_write(root / LISTING.lstrip("/"), json.dumps({"at": at, "layer": layer, "folders": folders}).encode(), 0o600)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        return {"fingerprint": digest(_member_record(tar, m) for m in tar.getmembers()), "files": len(layer)}


def _is_dir(path: Path) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)


def _runtime_file(root: Path, path: str) -> bool:
    """A unit's runtime state: not kept, removed (as /run is emptied at a boot); its folders stay."""
    return _under(path, RUNTIME) and path != RUNTIME and not _is_dir(root / path.lstrip("/"))


def plan_restore(root: Path, saved: dict, volumes: list[str]) -> list[str]:
    """What to remove to come back to ``saved`` (the archive puts back the rest); Unrestorable when the
    archive cannot: a file or folder of the image, not in it, changed or gone since."""
    layer, before = set(saved["layer"]), saved["folders"]
    now, changed = walk(root, saved["at"], volumes)
    remove = []
    for folder, (meta, names) in now.items():
        if folder not in before:
            continue  # a new folder: its parent lists it as added
        if meta != before[folder][0] and folder not in layer:
            raise Unrestorable(f"{folder} of the image was changed (mode or owner)")
        old = set(before[folder][1])
        for name in names:
            path = os.path.join(folder, name)
            if not _left_alone(path) and (name not in old or _runtime_file(root, path)):
                remove.append(path)
        for name in old - set(names):
            path = os.path.join(folder, name)
            if path not in layer and (path in before or not _under(path, RUNTIME)):
                raise Unrestorable(f"{path} of the image was deleted")
    for path in set(changed) - layer - set(remove):  # new folders' content goes with them
        if not _left_alone(path) and not _is_dir(root / path.lstrip("/")) and \
                os.path.dirname(path) in before and os.path.basename(path) in before[os.path.dirname(path)][1]:
            raise Unrestorable(f"{path} of the image was changed")
    return sorted(set(remove))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def restore(plan: dict, root: Path = Path("/")) -> dict:
    """Units stopped, back to the archive; the fingerprint of the result and the units stopped."""
    with open(root / LISTING.lstrip("/"), "rb") as f:
        saved = json.load(f)
    stopped = systemctl("stop") if root == Path("/") else []
    try:
        remove = plan_restore(root, saved, plan["volumes"])
    except Unrestorable:
        if stopped:
            systemctl("start")  # left running as it was
        raise
    for path in remove:
        _remove(root / path.lstrip("/"))
    for volume in plan["volumes"]:
        for entry in (root / volume.lstrip("/")).iterdir():
            _remove(entry)
    with tarfile.open(root / ARCHIVE.lstrip("/")) as tar:
        members = tar.getmembers()
        for member in members:  # what a scenario put in a file's place (a symlink, a folder) goes first
            here = root / member.name
            if os.path.lexists(here) and not (member.isdir() and here.is_dir() and not here.is_symlink()):
                _remove(here)
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tar.extractall(root, members=members, numeric_owner=True, **trusted)
    names = {m.name for m in members}
    for volume in plan["volumes"]:
        for folder, dirs, files in os.walk(root / volume.lstrip("/")):
            names.update(os.path.relpath(os.path.join(folder, n), root) for n in [""] + dirs + files)
    return {"fingerprint": digest(record(root / n, os.path.normpath(n)) for n in names), "units": stopped}


def units(run: Path = Path(SUPERVISOR)) -> list[str]:
    """The units safeqlab.supervise runs here (by their state files)."""
    return sorted(p.name.removesuffix(".state") for p in run.glob("*.state"))


def systemctl(verb: str) -> list[str]:
    """`systemctl VERB UNIT` for every unit; the units."""
    for unit in units():
        proc = subprocess.run(["systemctl", verb, unit], capture_output=True, text=True, timeout=UNIT_TIMEOUT)
        if proc.returncode != 0:
            raise Unrestorable(f"systemctl {verb} {unit}: {(proc.stderr or proc.stdout).strip()}")
    return units()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("save", "restore"):
        print("usage: python3 -m safeqlab.baseline save|restore  (a JSON plan on stdin)", file=sys.stderr)
        return 2
    os.umask(0o077)
    try:
        plan = json.load(sys.stdin)
        answer = save(plan) if args[0] == "save" else restore(plan)
    except (Unrestorable, OSError, tarfile.TarError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
        print(json.dumps({"error": str(exc) or type(exc).__name__}))
        return 1
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
