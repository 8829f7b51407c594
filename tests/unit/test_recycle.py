"""lab.scenarios.recycle without a lab: the PKI folder put back in place, and the reasons a lab is
made anew instead of reset (no baseline, another shape, a damaged record, containers not as saved)."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from certkit.fsio import write_json
from lab import engine, labstate
from lab.scenarios import actions, batch, recycle

SHAPE = {"intermediates": 1, "policy": "trusted-ca", "port": 2600}


def test_sync_tree_puts_the_pki_back_in_place_with_modes(tmp_path):
    source, target = tmp_path / "saved", tmp_path / "pki"
    (source / "hosts/gateway-host").mkdir(parents=True)
    (source / "hosts/gateway-host/acme-ca.pfx").write_bytes(b"truststore")
    (source / "hosts/gateway-host/acme-ca.pfx").chmod(0o644)
    (source / "hosts/gateway-host/gateway-host.pfx").write_bytes(b"keystore")
    (source / "hosts/gateway-host/gateway-host.pfx").chmod(0o600)
    (source / "ca/root.key").parent.mkdir()
    (source / "ca/root.key").write_bytes(b"key")
    (source / "ca/root.key").chmod(0o600)
    shutil.copytree(source, target, symlinks=True)
    mounted = target / "hosts/gateway-host"
    inode = mounted.stat().st_ino
    (mounted / "acme-ca.pfx").write_bytes(b"re-made by a trainee")
    (mounted / "acme-ca.pfx").chmod(0o600)
    (mounted / "gateway-host.pfx").chmod(0o644)  # the same bytes, readable by all
    (mounted / "unattended-install.conf").write_text("added since")
    (target / "ca/root.key").unlink()
    (target / "ca/newca").mkdir()
    recycle.sync_tree(source, target)
    assert (mounted / "acme-ca.pfx").read_bytes() == b"truststore"
    assert (mounted / "acme-ca.pfx").stat().st_mode & 0o777 == 0o644
    assert (mounted / "gateway-host.pfx").stat().st_mode & 0o777 == 0o600
    assert (target / "ca/root.key").read_bytes() == b"key" and (target / "ca/root.key").stat().st_mode & 0o777 == 0o600
    assert not (mounted / "unattended-install.conf").exists() and not (target / "ca/newca").exists()
    assert mounted.stat().st_ino == inode  # the folder a container mounts is the same folder


@pytest.fixture
def lab_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(labstate, "folder", lambda lab=None: tmp_path)
    return tmp_path


def box(cid: str, service: str, running: bool = True):
    return SimpleNamespace(id=cid, service=service, name=f"lab-{service}-1", running=running,
                           state="running" if running else "exited", healthcheck=("CMD", "check"))


def saved_as(containers: list[dict], **changes) -> dict:
    return {"shape": SHAPE, "compose": recycle._compose_digest(), "containers": containers, **changes}


PRIMARY = {"id": "a", "service": "primary", "image": "sha256:1", "image_name": "safeq-lab/primary:latest"}


@pytest.mark.parametrize("saved, containers, said", [
    (None, [], "no baseline yet"),
    (saved_as([], shape={**SHAPE, "intermediates": 2}), [], "baseline made for"),
    (saved_as([], compose="0" * 64), [], "compose.yaml changed since the baseline"),
    (saved_as([PRIMARY, {**PRIMARY, "id": "b"}]), [box("a", "primary")], "a container of the baseline was removed"),
    (saved_as([PRIMARY]), [box("a", "primary"), box("c", "portal")], "running since the baseline: portal"),
    (saved_as([{**PRIMARY, "image": "sha256:0"}]), [box("a", "primary")],
     "images built anew since the baseline: primary"),
])
def test_a_lab_not_as_saved_is_not_reset(lab_folder, monkeypatch, saved, containers, said):
    if saved is not None:
        write_json(lab_folder / recycle.STATE, saved)
    monkeypatch.setattr(engine, "containers", lambda *a, **k: containers)
    monkeypatch.setattr(recycle.engine, "image_ids", lambda names: {name: "sha256:1" for name in names})
    monkeypatch.setattr(recycle, "_put_back", lambda *a: pytest.fail("a lab not as saved was put back"))
    assert said in recycle.restore(SHAPE, 10)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"shape": {}}'])
def test_a_damaged_baseline_record_is_a_reason_not_a_crash(lab_folder, text):
    (lab_folder / recycle.STATE).write_text(text)
    assert recycle.restore(SHAPE, 10).startswith("baseline unreadable")


def test_why_no_baseline_was_kept_is_said_by_the_next_restore(lab_folder, monkeypatch):
    monkeypatch.setattr(engine, "containers", lambda *a, **k: [box("a", "primary")])
    monkeypatch.setattr(engine, "healthcheck_now", lambda b: (False, "pending"))
    assert recycle.save(SHAPE) == "not healthy after `up`: primary"
    assert recycle.restore(SHAPE, 10) == "no baseline (not healthy after `up`: primary)"


def test_scenarios_of_one_shape_run_one_after_another_smallest_groups_first():
    def sc(ident, intermediates=1, policy="trusted-ca", does=("restart",)):
        return SimpleNamespace(id=ident, lab=SimpleNamespace(intermediates=intermediates, policy=policy),
                               breaks=tuple(SimpleNamespace(do=do) for do in does))
    order = batch.by_shape([sc("a"), sc("b", 0), sc("g", does=("public-bundle", "restart")), sc("c"),
                            sc("d", policy="built-in"), sc("e", policy="built-in"), sc("f")])
    # g changes the image's files: the last of its group, so no scenario has to follow it in its lab
    assert [s.id for s in order] == ["b", "d", "e", "a", "c", "f", "g"]
    assert actions.IMAGE_CHANGES <= set(actions.KEYS)
