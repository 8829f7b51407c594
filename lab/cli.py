"""The `safeq-lab` command line: PKI -> images -> compose -> checks."""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

import pki
from pki.cli import pki_group
from pki.cli import reports_errors as pki_reports_errors
from pki.database import DB_PATH

from . import admin, docker, engine, images, labstate, project, spec, status, topology
from . import drills, portal as lab_portal, rotation, scale as lab_scale, swarm, swarmlab  # rotation: its drills
from . import up as lab_up
from .deadline import Deadline
from .scenarios import cli as scenario_cli
from .scenarios import recycle as scenario_recycle
from .scenarios import runner as scenario_runner
from .errors import LabError
from .views import Phases, print_endpoint_counts, print_endpoints, print_refused, print_summary, say

DISTRIBUTION = "safeq-pki-lab"
EXEC_TIMEOUT = 300  # a command typed at a container's console
VERIFY_TIMEOUT = 3600  # the whole suite takes minutes; a lab that hangs ends in an error, not a wait


LIST_UP_TO = 12  # endpoint records `status` lists without --all; past that, the counts say it


def reports_errors(func):
    return pki_reports_errors(func, LabError)


def version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from sources that were never installed
        return "unknown (not installed)"


def quick_start() -> str:
    """What to type first: the Makefile's two targets in a checkout, else the installed command's."""
    home = project.find()
    if home is not None and not project.installed_apart() and (home / "Makefile").is_file():
        lines = ["Quick start (Docker Engine with Compose v2; on Debian, make installs them when missing):",
                 "  make lab-up     # PKI, images, the doc's primary steps, every service healthy",
                 "  make test       # images, unit tests, then lab up + testinfra checks + lab down"]
    else:
        lines = ["Quick start (Docker Engine with Compose v2 needed):",
                 "  safeq-lab up       # PKI, images, the doc's primary steps, every service healthy",
                 "  safeq-lab verify   # the testinfra checks against the running lab"]
        if home is None:
            lines.append(f"  (both run the lab of a safeq-pki-lab checkout: run them inside one, or set "
                         f"{project.HOME_VAR} to one)")
    readme = f"{home / 'README.md'}" if home is not None else "README.md of the safeq-pki-lab checkout"
    lines += [f"README: {readme}", "All commands: safeq-lab --help"]
    return "\n".join(lines)


PKI_DIR_FOR = "SAFEQ_PKI_DIR_LAB"  # which lab the SAFEQ_PKI_DIR this command set is for


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(version(), "--version", prog_name="safeq-lab", message="%(prog)s %(version)s",
                      help="Print the version and exit.")
@click.option("--lab", "lab_name", metavar="NAME", envvar=labstate.NAME_VAR,
              help="Which lab: NAME runs beside the default one with its own containers, network, volumes and "
                   "port (one lab per student); `safeq-lab labs` lists them.")
@click.pass_context
def main(ctx: click.Context, lab_name: str | None) -> None:
    """SAFEQ Cloud trusted-certificates lab (an independent stand-in, not vendor software)."""
    if lab_name:
        os.environ[labstate.NAME_VAR] = lab_name  # the checks `verify` starts are about this lab too
        try:
            labstate.name()
        except LabError as exc:
            raise click.BadParameter(str(exc), param_hint="--lab") from None
        # `pki` commands act on this lab's PKI (build/labs/NAME/pki) unless SAFEQ_PKI_DIR says otherwise;
        # one this command set for another lab (a check `verify` started that runs a lab of its own) does not.
        if "SAFEQ_PKI_DIR" not in os.environ or os.environ.get(PKI_DIR_FOR, lab_name) != lab_name:
            os.environ["SAFEQ_PKI_DIR"] = str((project.lab_folder(lab_name) / "pki").resolve())
            os.environ[PKI_DIR_FOR] = lab_name
    if ctx.invoked_subcommand is None:
        click.echo(quick_start())


main.add_command(pki_group, name="pki")
main.add_command(admin.account, name="account")
main.add_command(admin.endpoints, name="endpoints")
main.add_command(scenario_cli.scenarios)
main.add_command(drills.drill)
main.add_command(scenario_cli.exercise)


@main.command()
@click.option("--policy", type=click.Choice(["trusted-ca", "built-in"]), default=None,
              help="Certificate policy for the whole lab: trusted-ca (the doc's end state; the default) or built-in "
                   "(the product default). With --spec, the spec's [account] policy unless given.")
@click.option("--build/--no-build", default=True, help="Build images before starting (fast when cached).")
@click.option("--timeout", default=600, show_default=True, type=click.IntRange(min=1), metavar="S",
              help="Seconds the whole run may take, builds included, until every service is healthy.")
@click.option("--java-security", metavar="FILE|=FILE",
              help="A java.security for the JREs of primary, gateway and client: FILE adds to / overrides "
                   "the JRE's own, =FILE replaces it whole.")
@click.option("--spec", "spec_file", metavar="FILE",
              help="Run on your own files (a spec: `safeq-lab spec template`), checked by the doctor first; "
                   "without it the lab's own PKI.")
@click.option("--force", is_flag=True, help="With --spec: start even when the doctor finds errors (to show the failure).")
@click.option("--port", type=click.IntRange(1, 65535), help="The primary's port on 127.0.0.1 (default: 2560 for the "
                                                            "default lab, a free one from 2561 up for --lab NAME).")
@click.option("--gateways", type=click.IntRange(1, lab_scale.MAX), metavar="N",
              help="Gateways: compose.yaml's one and N-1 more (gateway-host-2, ...), each its own host, certificate "
                   "from the lab CA and log. Default: as the lab's last `up` (1 at first).")
@click.option("--clients", type=click.IntRange(1, lab_scale.MAX), metavar="M",
              help="SAFEQ Cloud Clients, the same way (pcclient-host-2, ...).")
@click.option("--engine", "engine_name", type=click.Choice(["compose", "swarm"]), default="compose", show_default=True,
              help="swarm: deploy compose.yaml as a Docker Swarm stack (configs, secrets, overlay network).")
@click.option("-v", "--verbose", is_flag=True, help="Show compose's and the builds' own output as it comes.")
@reports_errors
def up(policy: str | None, build: bool, timeout: int, java_security: str | None, spec_file: str | None, force: bool,
       port: int | None, gateways: int | None, clients: int | None, engine_name: str, verbose: bool) -> None:
    """Start the lab: PKI if missing (or a spec's files), images, primary setup steps, all services healthy."""
    if force and spec_file is None:
        raise click.UsageError("--force goes with --spec FILE (the lab's own PKI needs no doctor)")
    if engine_name == "swarm":
        if policy == "built-in" or spec_file or java_security or port:
            raise click.UsageError("--engine swarm runs the lab's own PKI with the trusted CA policy, nothing "
                                   "published: leave out --policy built-in, --spec, --java-security and --port")
        swarmlab.run(build, timeout, verbose, counts={"gateway": gateways, "client": clients})
        return
    if swarmlab.is_swarm():
        raise LabError("this lab runs as a swarm stack: `safeq-lab down` it first, or give --engine swarm")
    lab_up.run(policy, build, timeout, java_security, verbose=verbose, spec_file=spec_file, force=force, port=port,
               counts={"gateway": gateways, "client": clients})


@main.command()
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(min=1), metavar="S",
              help="Seconds all builds may take.")
@click.option("-v", "--verbose", is_flag=True, help="Show the builds' own output as it comes.")
@reports_errors
def build(timeout: int, verbose: bool) -> None:
    """Build the images only (base OS, base, role images); `up` builds them too."""
    docker.preflight()
    images.build_all(Phases(verbose), Deadline(timeout, what="safeq-lab build", hint="raise --timeout"))


@main.command()
@click.option("--volumes", is_flag=True, help="Also remove the lab's volumes: account settings, endpoint records, "
                                               "built-in certificates (a fresh start for a student's lab).")
@reports_errors
def down(volumes: bool) -> None:
    """Stop and remove the lab's containers (the PKI stays)."""
    docker.preflight()
    if swarmlab.is_swarm():
        swarmlab.down(volumes)
        return
    docker.compose("down", "--timeout", "2", *(["--volumes"] if volumes else []))
    scenario_recycle.forget()  # the containers a reset would put back are gone: so is its copy of the PKI
    if volumes:
        drop_left_volumes()


def drop_left_volumes() -> None:
    """The lab's volumes that `compose down --volumes` does not know (extras dropped since they ran)."""
    engine.remove_volumes(engine.project_volumes())


@main.command(name="labs")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def labs_cmd(as_json: bool) -> None:
    """Every lab started on this checkout: name, files, the primary's and portal's ports, containers running,
    the exercise."""
    docker.preflight()
    rows = []
    for lab in labstate.names():
        state = labstate.current(lab)
        boxes = engine.containers(project_name=lab)
        rows.append({"name": lab, "spec": state.spec_file or "the lab's own PKI", "port": state.port,
                     "portal": state.portal_port,
                     "running": sum(b.running for b in boxes), "containers": len(boxes),
                     "exercise": scenario_runner.exercise_of(lab)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<20} 127.0.0.1:{row['port']:<6} portal :{row['portal']:<6} "
                   f"{row['running']}/{row['containers']} running  "
                   f"{row['spec']}" + (f"  exercise {row['exercise']}" if row["exercise"] else ""))


@main.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "list_all", is_flag=True, help=f"List every endpoint record (shown anyway up to {LIST_UP_TO}).")
@reports_errors
def status_cmd(as_json: bool, list_all: bool) -> None:
    """Services, their health, every endpoint the primary knows, the connections it refused (--json: and the
    account's settings and Trusted CA certificates)."""
    docker.preflight()
    result = status.collect()
    if as_json:
        click.echo(json.dumps({k: result[k] for k in ("services", "endpoints", "refused", "account")}, indent=2))
        return
    print_summary(result)
    click.echo(lab_portal.announce(labstate.current()))
    eps = result["endpoints"]
    if eps:
        print_endpoint_counts(eps)
        if list_all or len(eps) <= LIST_UP_TO:
            print_endpoints(eps)
        else:
            click.echo(f"{len(eps)} endpoint records: `safeq-lab status --all` lists them")
    if result["refused"]:
        print_refused(result["refused"])


@main.command(name="portal")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def portal_cmd(as_json: bool) -> None:
    """The web portal's address and login for this lab (a trainer's lookup, lab by lab)."""
    shown = lab_portal.lookup()
    click.echo(json.dumps(shown, indent=2) if as_json else
               f"web portal: {shown['url']}  user {shown['user']}  password {shown['password']}")


def infra_checks() -> Path:
    """tests/infra of the checkout: the checks are the lab's files, not the installed package's."""
    checks = project.root() / "tests" / "infra"
    if not (checks / "conftest.py").is_file():
        raise LabError(f"{checks} holds no testinfra checks: `safeq-lab verify` runs those of a complete "
                       f"safeq-pki-lab checkout (git checkout tests/infra, or point {project.HOME_VAR} at a clone)")
    missing = [name for name in ("pytest", "testinfra") if importlib.util.find_spec(name) is None]
    if missing:
        raise LabError(f"{sys.executable} lacks {' and '.join(missing)} (dependencies of {DISTRIBUTION}): "
                       f"install them with `{sys.executable} -m pip install pytest pytest-testinfra`")
    return checks


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--quick", is_flag=True, help="Only the checks that leave the lab as it is (no scenarios).")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@reports_errors
def verify(quick: bool, pytest_args) -> None:
    """Run the testinfra checks against the running lab (scenarios change it and put it back)."""
    checks = infra_checks()  # before Docker: outside a checkout there is nothing to run
    docker.preflight()
    root = project.root()
    named = any(not a.startswith("-") and (root / a.split("::")[0]).exists() for a in pytest_args)
    default = [] if named else [str(checks)]
    select = ["-m", "not scenario"] if quick else []
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *default, *select, *pytest_args]
    try:
        rc = subprocess.run(argv, cwd=root, timeout=VERIFY_TIMEOUT).returncode
    except subprocess.TimeoutExpired:
        raise LabError(f"the checks did not finish within {VERIFY_TIMEOUT} s: see `safeq-lab status` and "
                       "`safeq-lab logs`") from None
    sys.exit(rc)


@main.group("spec", context_settings={"help_option_names": ["-h", "--help"]})
def spec_group() -> None:
    """A lab spec: the files primary, gateways and clients use, and the account settings (TOML)."""


@spec_group.command("template")
def spec_template() -> None:
    """Print a commented spec to fill in: `safeq-lab spec template > corp.toml`."""
    click.echo(spec.template(), nl=False)


@spec_group.command("show")
@reports_errors
def spec_show() -> None:
    """Print the running lab's spec (its generated PKI, or the spec `up --spec` staged), paths absolute."""
    click.echo(spec.to_toml(labstate.current().spec()), nl=False)


@main.command()
@click.argument("spec_file", required=False, metavar="[SPEC]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--expiry-days", default=30, show_default=True, type=click.IntRange(min=0), metavar="N",
              help="Warn about certificates that expire within N days.")
@click.option("--java", "java_choice", type=click.Choice(["auto", "host", "docker"]), default="auto",
              show_default=True, help="Whose keytool and JRE judge: auto = the host's when it has them, else "
                                      "the lab image's; host; docker = the lab image's (safeq-lab/base:latest).")
@reports_errors
def doctor(spec_file: str | None, as_json: bool, expiry_days: int, java_choice: str) -> None:
    """Check a spec's files as the product's JREs would judge them (no argument: the running lab's).

    Exit 0: nothing above info; 1: warnings; 2: errors (or a spec that cannot be read)."""
    from .doctor import findings as report, runner, tools

    checked = spec.load(spec_file) if spec_file else labstate.current().spec()
    java = tools.detect(java_choice)
    result = runner.check(checked, java, expiry_days=expiry_days)
    found = result.findings
    if as_json:
        click.echo(report.to_json(found, java.describe(), checked.source, result.connections))
    else:
        click.echo(f"doctor: {checked.source}")
        for item in report.ordered(found):
            click.echo(report.line(item, checked.base))
        for connection in result.connections:
            click.echo(f"connection  {report.connection_line(connection)}")
        click.echo(f"checked with {java.summary()}")
        click.echo(report.summary(found))
    sys.exit(report.exit_code(found))


@main.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@reports_errors
def exec_cmd(service: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in SERVICE's container as at its console, e.g. `safeq-lab exec primary systemctl restart
    safeq-cloud-server`; exits with the command's status."""
    docker.preflight()
    services = topology.load().names
    if service not in services:
        raise LabError(f"no service {service!r} in compose.yaml: choose one of {', '.join(services)}")
    result = engine.execute(service, list(command), timeout=EXEC_TIMEOUT)
    click.echo(result.stdout, nl=False)
    click.echo(result.stderr, nl=False, err=True)
    sys.exit(result.returncode)


@main.command()
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True)
@reports_errors
def logs(service: str | None, follow: bool) -> None:
    """Logs of one service, or of all."""
    docker.preflight()
    # Following runs until the user stops it: the one compose call without a timeout.
    docker.compose("logs", *(["-f"] if follow else []), *([service] if service else []),
                   timeout=None if follow else docker.DEFAULT)


def check_removable_pki(pki_dir: Path) -> None:
    """Only a folder the lab made: --pki must not wipe a folder SAFEQ_PKI_DIR points at by mistake."""
    if pki_dir.exists() and not pki.exists(pki_dir):
        raise LabError(f"{pki_dir} is not a PKI made by safeq-lab (it lacks {DB_PATH.as_posix()}): "
                       "nothing was deleted; delete it yourself if you mean to, or point SAFEQ_PKI_DIR at the lab's PKI")


def remove_pki(pki_dir: Path) -> None:
    """Delete the PKI; what could not be deleted is the error, not a "removed" that is untrue."""
    failed: list[str] = []

    def note(func, path, exc) -> None:
        exc = exc[1] if isinstance(exc, tuple) else exc  # onerror passes exc_info, onexc the exception
        failed.append(f"{path} ({getattr(exc, 'strerror', None) or exc})")

    if sys.version_info >= (3, 12):
        shutil.rmtree(pki_dir, onexc=note)
    else:
        shutil.rmtree(pki_dir, onerror=note)
    if failed:
        shown = "; ".join(failed[:10]) + (f"; and {len(failed) - 10} more" if len(failed) > 10 else "")
        raise LabError(f"could not remove all of {pki_dir}: {shown}: fix the permissions (or unmount it) "
                       "and run `safeq-lab clean --pki` again")


@main.command()
@click.option("--pki", "remove_pki_too", is_flag=True, help="Also delete the generated PKI (CA keys included).")
@reports_errors
def clean(remove_pki_too: bool) -> None:
    """Remove containers, network, images and the lab's volumes (account settings, endpoints);
    the PKI only with --pki. The Debian OS image (safeq-lab/os) is kept; a named lab (--lab) keeps
    the images, which every lab uses."""
    pki_dir = project.pki_dir()
    if remove_pki_too:
        check_removable_pki(pki_dir)  # before anything is removed
    docker.preflight()
    if labstate.name() != labstate.DEFAULT:  # the images serve every lab: a student's lab goes, they stay
        docker.compose("down", "--timeout", "2", "--volumes", "--remove-orphans", timeout=120)
        drop_left_volumes()
        labstate.path().unlink(missing_ok=True)
        # its exercise, its baseline (a copy of the PKI), portal login, extra endpoints and stack go with it
        for name in (*scenario_runner.EXERCISE_FILES, lab_portal.LOGIN_FILE, lab_scale.FILE, swarm.FILE):
            (labstate.folder() / name).unlink(missing_ok=True)
        scenario_recycle.forget()
        say(f"removed lab {labstate.name()} (the images, shared by every lab, are kept)")
    else:
        docker.compose("down", "--timeout", "2", "--rmi", "all", "--volumes", "--remove-orphans", timeout=120)
        drop_left_volumes()
        docker.run_timed(["docker", "image", "rm", images.BASE_IMAGE], docker.DEFAULT, capture_output=True)
    if remove_pki_too:
        if not pki_dir.exists():
            say(f"no PKI in {pki_dir}: nothing to remove")
            return
        remove_pki(pki_dir)
        say(f"removed {pki_dir}")
    if labstate.name() != labstate.DEFAULT:
        with contextlib.suppress(OSError):  # its folder goes once nothing is left in it
            labstate.folder().rmdir()


if __name__ == "__main__":
    main()
