"""`safeq-lab clean --pki` deletes only a PKI the lab made, and says when it could not delete it all."""
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

import pki
from lab import cli, docker, engine
from lab.scenarios import recycle


@pytest.fixture
def docker_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(docker, "preflight", lambda: calls.append("preflight"))
    monkeypatch.setattr(docker, "compose", lambda *args, **kw: calls.append(("compose", *args)))
    monkeypatch.setattr(docker, "run_timed", lambda argv, timeout, **kw: calls.append(tuple(argv))
                        or subprocess.CompletedProcess(argv, 0))
    # A volume compose no longer names (an extra gateway's, dropped by a smaller `up --gateways`).
    monkeypatch.setattr(engine, "project_volumes", lambda *a, **kw: ["lab_gateway-3-data"])
    monkeypatch.setattr(engine, "remove_volumes", lambda names, **kw: calls.append(("volume rm", *names)))
    return calls


def clean(monkeypatch, pki_dir):
    monkeypatch.setenv("SAFEQ_PKI_DIR", str(pki_dir))
    return CliRunner().invoke(cli.main, ["clean", "--pki"])


def test_a_folder_the_lab_did_not_make_is_left_alone(monkeypatch, tmp_path, docker_calls):
    folder = tmp_path / "my documents"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "thesis.odt").write_text("years of work")
    result = clean(monkeypatch, folder)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {folder} is not a PKI made by safeq-lab (it lacks ca/db.json): nothing was deleted; delete it "
        "yourself if you mean to, or point SAFEQ_PKI_DIR at the lab's PKI"]
    assert (folder / "sub" / "thesis.odt").read_text() == "years of work"
    assert docker_calls == []  # not even the containers


def test_the_lab_pki_is_removed(monkeypatch, tmp_path, docker_calls):
    pki.init_pki(tmp_path / "pki")
    result = clean(monkeypatch, tmp_path / "pki")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "pki").exists()
    assert f"removed {tmp_path / 'pki'}" in " ".join(result.output.split())
    assert docker_calls[0] == "preflight" and docker_calls[1][:2] == ("compose", "down")


def test_a_failed_removal_is_reported_not_called_removed(monkeypatch, tmp_path, docker_calls):
    pki.init_pki(tmp_path / "pki")
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):  # as root, permissions cannot make a file undeletable
        if str(path).endswith(".key.pem"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", unlink)
    result = clean(monkeypatch, tmp_path / "pki")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: could not remove all of {tmp_path / 'pki'}: ")
    assert ".key.pem (Permission denied)" in lines[0]
    assert lines[0].endswith("fix the permissions (or unmount it) and run `safeq-lab clean --pki` again")
    assert "removed" not in result.output
    assert list((tmp_path / "pki").rglob("*.key.pem"))  # what the error lists is still there


def test_no_pki_folder_is_nothing_to_remove(monkeypatch, tmp_path, docker_calls):
    result = clean(monkeypatch, tmp_path / "none")
    assert result.exit_code == 0
    assert f"no PKI in {tmp_path / 'none'}: nothing to remove" in " ".join(result.output.split())


def test_without_pki_the_folder_is_not_looked_at(monkeypatch, tmp_path, docker_calls):
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.setenv("SAFEQ_PKI_DIR", str(tmp_path))
    result = CliRunner().invoke(cli.main, ["clean"])
    assert result.exit_code == 0 and (tmp_path / "keep.txt").exists()


def test_a_named_lab_goes_with_its_exercise_portal_login_stack_and_folder(monkeypatch, tmp_path, docker_calls):
    from lab import labstate, project
    monkeypatch.setattr(project, "lab_folder", lambda name: tmp_path / "labs" / name)
    folder = tmp_path / "labs" / "student-01"
    pki.init_pki(folder / "pki")
    (folder / "exercise.json").write_text('{"id": "gateway-expired"}')
    (folder / "exercise-start.log").write_text("up's progress")
    (folder / "portal-login.json").write_text('{"user": "admin", "password": "x"}')
    (folder / "compose.scale.yaml").write_text("services: {}\n")
    (folder / "stack.json").write_text("{}")  # `up --engine swarm`'s stack
    shutil.copytree(folder / "pki", folder / recycle.PKI_COPY)  # a reset's baseline: CA keys included
    (folder / recycle.STATE).write_text('{"shape": {}}')
    monkeypatch.setenv(labstate.NAME_VAR, "student-01")
    result = CliRunner().invoke(cli.main, ["--lab", "student-01", "clean", "--pki"])
    assert result.exit_code == 0, result.output
    assert not folder.exists()  # `exercise check` there now says the lab runs no exercise
    assert ("compose", "down", "--timeout", "2", "--volumes", "--remove-orphans") in docker_calls
    assert docker_calls.index(("volume rm", "lab_gateway-3-data")) > docker_calls.index(
        ("compose", "down", "--timeout", "2", "--volumes", "--remove-orphans"))


def test_down_volumes_takes_the_volumes_compose_no_longer_names(docker_calls, monkeypatch, tmp_path):
    from lab import labstate, swarmlab
    monkeypatch.setattr(swarmlab, "is_swarm", lambda *a: False)
    monkeypatch.setattr(labstate, "folder", lambda lab=None: tmp_path)
    assert CliRunner().invoke(cli.main, ["down", "--volumes"]).exit_code == 0
    assert docker_calls[-2:] == [("compose", "down", "--timeout", "2", "--volumes"), ("volume rm", "lab_gateway-3-data")]
    docker_calls.clear()
    (tmp_path / recycle.PKI_COPY / "ca").mkdir(parents=True)
    (tmp_path / recycle.PKI_COPY / "ca" / "root.key.pem").write_text("a copy of a CA key")
    (tmp_path / recycle.STATE).write_text('{"shape": {}}')
    assert CliRunner().invoke(cli.main, ["down"]).exit_code == 0
    assert docker_calls[-1] == ("compose", "down", "--timeout", "2")  # the volumes stay
    # The containers a reset would put back are gone: its baseline, a copy of the PKI, goes too.
    assert not (tmp_path / recycle.PKI_COPY).exists() and not (tmp_path / recycle.STATE).exists()
