"""`safeq-lab scenarios list|run` and `safeq-lab exercise start|hint|check`, offline.

Nothing here may reach Docker: every call that would (preflight, compose, the image builds, the runs, up,
a container command) is replaced by one that records it; commands that must fail first assert that
none was made. A lab's folder and PKI live under tmp_path, never in the checkout's build/.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import pki
from lab import docker, engine, images, labstate, project, up as lab_up
from lab.cli import main
from lab.errors import LabError
from lab.scenarios import batch, catalog, checks, observe, runner
from pki.database import DB_PATH


@pytest.fixture(scope="module")
def real() -> dict[str, catalog.Scenario]:
    return catalog.load()


@pytest.fixture
def docker_calls(monkeypatch) -> list[str]:
    """Every way these commands reach Docker, recorded (and stopped) instead."""
    calls: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called")
        return call

    for target, name in [(docker, "preflight"), (docker, "compose"), (images, "build_all"), (batch, "run_all"),
                         (runner, "start"), (lab_up, "run"), (engine, "exec_sh")]:
        monkeypatch.setattr(target, name, refuse(f"{target.__name__}.{name}"))
    return calls


@pytest.fixture
def labs(tmp_path, monkeypatch):
    """Labs' folders under tmp_path; SAFEQ_LAB and SAFEQ_PKI_DIR (which `--lab` sets in os.environ) restored after."""
    monkeypatch.setattr(project, "lab_folder", lambda name: tmp_path / "build" / "labs" / name)
    for var in (labstate.NAME_VAR, "SAFEQ_PKI_DIR"):
        monkeypatch.setenv(var, "restored-after-the-test")
        monkeypatch.delenv(var)
    return tmp_path / "build" / "labs"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# -- scenarios list / run ---------------------------------------------------------------------

def test_list_prints_every_id_marked_exercise_or_demo(real, docker_calls):
    result = invoke("scenarios", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(real) == 28
    shown = {}
    for line in lines:
        ident, mark, title = line.split(None, 2)
        shown[ident] = mark
        assert title == real[ident].title
    assert list(shown) == list(real)
    assert shown == {i: "exercise" if s.exercise else "demo" for i, s in real.items()}
    assert shown["gateway-expired"] == "exercise" and shown["baseline"] == "demo"
    assert docker_calls == []


def test_list_json(real, docker_calls):
    result = invoke("scenarios", "list", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [d["id"] for d in data] == list(real)
    for d in data:
        scenario = real[d["id"]]
        assert d == {"id": scenario.id, "title": scenario.title, "exercise": scenario.exercise,
                     "ticket": scenario.ticket, "file": f"scenarios/{scenario.id}.toml"}
    assert sum(d["exercise"] for d in data) == 21


@pytest.mark.parametrize("args", [[], ["--all", "baseline"], ["--junit", "r.xml"]])
def test_run_needs_ids_or_all_but_not_both(args, docker_calls):
    result = invoke("scenarios", "run", *args)
    assert result.exit_code == 2
    assert "name scenario ids, or --all" in result.stderr
    assert docker_calls == []


def test_run_an_unknown_id_is_one_error_before_any_build(docker_calls):
    result = invoke("scenarios", "run", "baseline", "no-such")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: unknown scenario(s) no-such: `safeq-lab scenarios list` shows the ids"]
    assert result.stdout == ""
    assert docker_calls == []


def test_run_reports_and_exits_1_on_a_mismatch(real, docker_calls, monkeypatch, tmp_path):
    monkeypatch.setattr(images, "build_all", lambda phases, deadline: None)
    good = runner.Outcome("baseline", real["baseline"].title, phases={"expect": [
        checks.Result(real["baseline"].expect[0], True, "CN=primary-host")]}, seconds=3).to_json()
    bad = runner.Outcome("gateway-expired", real["gateway-expired"].title, error="up failed", seconds=4).to_json()
    asked = {}

    def run_all(chosen, *, jobs, solve, timeout, progress, reuse):
        asked.update(ids=[s.id for s in chosen], jobs=jobs, solve=solve, timeout=timeout, reuse=reuse)
        for o in (good, bad):
            progress(o)
        return [good, bad]

    monkeypatch.setattr(batch, "run_all", run_all)
    report = tmp_path / "r.xml"
    result = invoke("scenarios", "run", "baseline", "gateway-expired", "-j", "3", "--no-solve", "--junit", str(report))
    assert result.exit_code == 1, result.output
    assert asked == {"ids": ["baseline", "gateway-expired"], "jobs": 3, "solve": False, "timeout": 600, "reuse": True}
    assert invoke("scenarios", "run", "baseline", "--fresh").exit_code == 1
    assert asked["reuse"] is False
    lines = result.stdout.splitlines()
    assert lines[0] == "ok   baseline (3 s)"
    assert "FAIL gateway-expired (4 s)" in lines
    assert "               observed up failed   <-- MISMATCH" in lines
    assert lines[-1] == "1 of 2 scenarios as expected; mismatch: gateway-expired"
    assert report.is_file()
    assert docker_calls == []


# -- exercise ---------------------------------------------------------------------------------

def test_start_a_demo_is_refused_before_anything_starts(labs, docker_calls):
    result = invoke("--lab", "x", "exercise", "start", "baseline")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: baseline is a demo scenario, not an exercise (nothing to fix): `safeq-lab scenarios list` marks "
        "the exercises"]
    assert docker_calls == []
    assert not labs.exists()


def test_start_without_lab_is_refused_before_anything_starts(labs, docker_calls):
    result = invoke("exercise", "start", "gateway-expired")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: scenarios and exercises run in a lab of their own, never the default one")
    assert "`safeq-lab --lab student-01 exercise start ID`" in line
    assert docker_calls == []
    assert not (labs.parent / "exercise-start.log").exists()


def test_start_an_unknown_id(labs, docker_calls):
    result = invoke("--lab", "x", "exercise", "start", "gateway-expird")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: unknown scenario(s) gateway-expird: `safeq-lab scenarios list` shows the ids"]
    assert docker_calls == []


def test_start_prints_the_ticket_only_when_the_break_shows(labs, docker_calls, monkeypatch, real):
    scenario = real["gateway-expired"]
    seen = {}

    def start(s, *, timeout, port, force, build, reuse):
        seen.update(id=s.id, lab=labstate.name(), port=port, force=force, build=build, reuse=reuse)
        return [checks.Result(c, True, "as expected") for c in s.expect]

    monkeypatch.setattr(runner, "start", start)
    result = invoke("--lab", "x", "exercise", "start", "gateway-expired", "--port", "2601")
    assert result.exit_code == 0, result.output
    assert seen == {"id": "gateway-expired", "lab": "x", "port": 2601, "force": False, "build": True, "reuse": True}
    assert result.stdout == f"Ticket (x, primary on 127.0.0.1:2560):\n{scenario.ticket}\n"
    assert (labs / "x" / "exercise-start.log").is_file()

    monkeypatch.setattr(runner, "start", lambda s, **kw: [checks.Result(s.expect[0], False, "nothing refused")])
    result = invoke("--lab", "x", "exercise", "start", "gateway-expired")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the lab did not show the break as the scenario expects (")
    assert f"{scenario.expect[0].describe()}: nothing refused" in result.stderr
    assert "Ticket" not in result.stdout


def test_check_without_an_exercise_says_the_lab_runs_none(labs, docker_calls):
    result = invoke("--lab", "x", "exercise", "check")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: lab x runs no exercise: start one with `safeq-lab --lab x exercise start ID`"]
    assert docker_calls == []


def test_hint_prints_the_hint_of_the_lab_s_exercise(labs, docker_calls, monkeypatch, real):
    monkeypatch.setenv(labstate.NAME_VAR, "x")
    state = labstate.folder() / runner.STATE_FILE
    assert state == labs / "x" / "exercise.json" == runner.state_path()
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"id": "gateway-expired"}))
    monkeypatch.delenv(labstate.NAME_VAR)

    result = invoke("--lab", "x", "exercise", "hint")
    assert result.exit_code == 0, result.output
    assert result.stdout == real["gateway-expired"].hint + "\n"
    other = invoke("--lab", "y", "exercise", "hint")  # another lab runs no exercise
    assert other.exit_code == 2 and "lab y runs no exercise" in other.stderr
    assert docker_calls == []


def test_check_says_what_still_fails_in_the_product_s_words(labs, docker_calls, monkeypatch, real):
    (labs / "x").mkdir(parents=True)
    (labs / "x" / runner.STATE_FILE).write_text(json.dumps({"id": "gateway-expired"}))
    scenario = real["gateway-expired"]
    refused = {"decision": "refused", "state": "disconnected", "reason": "validity check failed"}
    monkeypatch.setattr(observe, "gather", lambda check, cache: refused)
    result = invoke("--lab", "x", "exercise", "check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"not fixed yet: {scenario.title}",
        f"  expected {scenario.fixed[0].describe()}",
        "  observed refused/disconnected: validity check failed"]

    monkeypatch.setattr(observe, "gather", lambda check, cache: {"decision": "accepted", "state": "connected"})
    result = invoke("--lab", "x", "exercise", "check")
    assert result.exit_code == 0
    assert result.stdout == f"fixed: {scenario.title}\n"
    assert docker_calls == []


# -- runner ----------------------------------------------------------------------------------

def test_require_named_lab(labs, monkeypatch):
    with pytest.raises(LabError, match="never the default one"):
        runner.require_named_lab()
    monkeypatch.setenv(labstate.NAME_VAR, "student-01")
    assert runner.require_named_lab() == "student-01"


def test_fresh_pki_keeps_a_pki_no_exercise_made_unless_forced(labs, monkeypatch, tmp_path, real):
    monkeypatch.setattr(project, "pki_dir", lambda: tmp_path / "pki")
    monkeypatch.setenv(labstate.NAME_VAR, "x")
    pki.builder.init_pki(tmp_path / "pki")
    db = tmp_path / "pki" / DB_PATH
    before = db.read_bytes()
    assert not runner.state_path().exists()

    with pytest.raises(LabError) as err:
        runner.fresh_pki(real["two-intermediates"], force=False)
    assert str(err.value) == (f"lab x has a PKI of its own in {tmp_path / 'pki'} that no exercise made: an exercise "
                              "replaces it and the lab's volumes; pick another --lab name, or add --force")
    assert db.read_bytes() == before
    # `exercise start` refuses before anything is torn down: the lab's volumes are kept too.
    torn = []
    monkeypatch.setattr(runner.docker, "compose", lambda *a, **k: torn.append(a))
    monkeypatch.setattr(runner.docker, "preflight", lambda: torn.append("preflight"))
    with pytest.raises(LabError, match="no exercise made"):
        runner.start(real["two-intermediates"], timeout=10)
    assert torn == [] and db.read_bytes() == before

    assert runner.fresh_pki(real["two-intermediates"], force=True) == tmp_path / "pki"
    assert db.read_bytes() != before
    assert len(pki.load_manifest(tmp_path / "pki")["cas"]) == 3  # the scenario's shape: root + 2 intermediates


def test_fresh_pki_replaces_the_pki_of_an_exercise(labs, monkeypatch, tmp_path, real):
    monkeypatch.setattr(project, "pki_dir", lambda: tmp_path / "pki")
    monkeypatch.setenv(labstate.NAME_VAR, "x")
    pki.builder.init_pki(tmp_path / "pki")
    before = (tmp_path / "pki" / DB_PATH).read_bytes()
    runner.state_path().parent.mkdir(parents=True, exist_ok=True)
    runner.state_path().write_text(json.dumps({"id": "gateway-expired"}))
    runner.fresh_pki(real["no-intermediate"], force=False)
    assert (tmp_path / "pki" / DB_PATH).read_bytes() != before
    assert len(pki.load_manifest(tmp_path / "pki")["cas"]) == 1


def test_labs_shows_the_exercise_each_lab_runs(labs, monkeypatch):
    from lab import cli
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(cli.engine, "containers", lambda project_name=None: [])
    monkeypatch.setattr(labstate, "names", lambda: ["student-01", "student-02", "student-03"])
    for name, body in [("student-01", '{"id": "gateway-expired"}'), ("student-03", "{not json")]:
        (labs / name).mkdir(parents=True)
        (labs / name / runner.STATE_FILE).write_text(body)
    out = invoke("labs", "--json")
    assert out.exit_code == 0, out.output
    assert [r["exercise"] for r in json.loads(out.output)] == ["gateway-expired", None, "(exercise.json damaged)"]
    text = invoke("labs").output.splitlines()
    assert text[0].endswith("exercise gateway-expired") and "exercise" not in text[1]


def test_exec_names_the_services_when_one_is_unknown(monkeypatch):
    from lab import cli, topology
    ran = []
    monkeypatch.setattr(docker, "preflight", lambda: None)
    monkeypatch.setattr(topology, "load", lambda: SimpleNamespace(names=["ocsp", "primary", "gateway", "client"]))
    monkeypatch.setattr(cli.engine, "execute", lambda *a, **k: ran.append(a))
    out = invoke("exec", "primry", "ls")
    assert out.exit_code == 2 and ran == []
    assert out.output.strip() == "error: no service 'primry' in compose.yaml: choose one of ocsp, primary, gateway, client"
