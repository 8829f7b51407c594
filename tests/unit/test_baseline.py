"""safeqlab.baseline on a folder standing in for a container's root: what `save` keeps, what `restore`
puts back or removes, and what it refuses to touch (a file of the image changed or gone since)."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from safeqlab import baseline

VOLUME = "/var/lib/safeqcloud"


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An "image" (files older than the container), then the container's own changes, then `save`."""
    monkeypatch.setattr(baseline, "CLOCK_MARGIN", 0.0)
    top = tmp_path / "root"
    for name, text in {"usr/bin/tool": "image tool", "etc/app.conf": "image conf", "etc/ssl/bundle": "image ca",
                       "run/svc/.keep": "", "var/lib/safeqcloud/.keep": "", "var/log/.keep": ""}.items():
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(text)
    (top / "run/safeqlab").mkdir()
    time.sleep(0.05)
    made = time.time()
    time.sleep(0.05)
    (top / "etc/app.conf").write_text("doc's step")          # an image file the container changed
    (top / "opt/keystore.pfx").parent.mkdir()
    (top / "opt/keystore.pfx").write_bytes(b"pfx")            # a file the container added
    (top / "opt/keystore.pfx").chmod(0o600)
    (top / "var/log/server.log").write_text("started\n")
    (top / "run/svc/state.json").write_text('{"state": "connected"}')  # a unit's runtime state
    (top / "run/safeqlab/unit.state").write_text("active 7 1\n")       # the supervisor's
    (top / VOLUME.lstrip("/") / "account.json").write_text('{"policy": "trusted-ca"}')
    answer = baseline.save({"since": made, "volumes": [VOLUME]}, root=top)
    time.sleep(0.05)
    return top, answer


def restore(top: Path) -> dict:
    return baseline.restore({"volumes": [VOLUME]}, root=top)


def test_save_keeps_the_containers_own_files_and_the_volume_not_runtime_state(root):
    top, answer = root
    saved = json.loads((top / baseline.LISTING.lstrip("/")).read_text())
    # Only what the container changed (here a plain folder: no copy-up changes the parent folders).
    assert saved["layer"] == ["/etc/app.conf", "/opt", "/opt/keystore.pfx", "/run/svc", "/var/log",
                              "/var/log/server.log"]
    assert answer["files"] == len(saved["layer"])
    for private in (baseline.ARCHIVE, baseline.LISTING):
        assert (top / private.lstrip("/")).stat().st_mode & 0o777 == 0o600


def test_restore_undoes_every_change_and_gives_the_saved_fingerprint(root):
    top, answer = root
    (top / "etc/app.conf").write_text("a trainee's edit")
    (top / "opt/keystore.pfx").chmod(0o644)
    (top / "var/log/server.log").unlink()
    (top / "var/log/new.log").write_text("x")
    (top / "opt/extra/deep").mkdir(parents=True)
    (top / "tmp").mkdir()
    (top / "tmp/hold.py").write_text("x")
    (top / VOLUME.lstrip("/") / "account.json").write_text('{"policy": "built-in"}')
    (top / VOLUME.lstrip("/") / "trusted-ca").mkdir()
    (top / "run/svc/state.json").write_text('{"state": "refused"}')
    (top / "run/safeqlab/unit.state").write_text("inactive 0 0\n")
    assert restore(top)["fingerprint"] == answer["fingerprint"]
    assert (top / "etc/app.conf").read_text() == "doc's step"
    assert (top / "opt/keystore.pfx").stat().st_mode & 0o777 == 0o600
    assert (top / "var/log/server.log").read_text() == "started\n"
    for gone in ("var/log/new.log", "opt/extra", "tmp", "run/svc/state.json", "var/lib/safeqcloud/trusted-ca"):
        assert not (top / gone).exists(), gone
    assert (top / VOLUME.lstrip("/") / "account.json").read_text() == '{"policy": "trusted-ca"}'
    assert (top / "run/svc").is_dir()  # the runtime folder stays, its state goes
    assert (top / "run/safeqlab/unit.state").read_text() == "inactive 0 0\n"  # the supervisor's, left alone


def test_a_symlink_put_in_a_files_place_is_replaced_not_followed(root, tmp_path):
    top, answer = root
    outside = tmp_path / "outside"
    outside.write_text("not the lab's")
    (top / "opt/keystore.pfx").unlink()
    (top / "opt/keystore.pfx").symlink_to(outside)
    assert restore(top)["fingerprint"] == answer["fingerprint"]
    assert outside.read_text() == "not the lab's"
    assert not (top / "opt/keystore.pfx").is_symlink()


@pytest.mark.parametrize("damage, said", [
    (lambda top: (top / "etc/ssl/bundle").write_text("update-ca-certificates"),
     "/etc/ssl/bundle of the image was changed"),
    (lambda top: (top / "usr/bin/tool").unlink(), "/usr/bin/tool of the image was deleted"),
    (lambda top: (top / "usr/bin").chmod(0o700), "/usr/bin of the image was changed (mode or owner)"),
])
def test_a_change_to_the_image_is_refused_before_anything_is_touched(root, damage, said):
    top, _ = root
    (top / "tmp").mkdir()
    (top / "tmp/new").write_text("added since")
    damage(top)
    with pytest.raises(baseline.Unrestorable, match=said.replace("(", r"\(").replace(")", r"\)")):
        restore(top)
    assert (top / "tmp/new").read_text() == "added since"


def test_main_answers_one_json_line_and_exit_1_on_a_bad_plan(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("not json"))
    umask = os.umask(0o022)
    try:
        assert baseline.main(["restore"]) == 1
    finally:
        os.umask(umask)  # main() sets the process's umask, as the command it is
    assert list(json.loads(capsys.readouterr().out)) == ["error"]
    assert baseline.main(["bogus"]) == 2


def test_the_archive_is_written_owner_only_even_under_a_loose_umask(root):
    top, _ = root
    old = os.umask(0)
    try:
        baseline.save({"since": 0, "volumes": [VOLUME]}, root=top)
    finally:
        os.umask(old)
    assert (top / baseline.ARCHIVE.lstrip("/")).stat().st_mode & 0o077 == 0
