"""The `safeq-lab` command line: PKI -> images -> compose -> checks."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
import time

import click
from rich.console import Console
from rich.table import Table

import pki
from pki.cli import pki_group

from . import docker, images, project, status, steps
from .errors import LabError

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def reports_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (LabError, pki.PKIError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    return wrapper


def say(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {message}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SAFEQ Cloud trusted-certificates lab (an independent stand-in, not vendor software)."""


main.add_command(pki_group, name="pki")


def apply_primary_steps(manifest: dict) -> None:
    host_dir = project.pki_dir() / "hosts" / steps.primary_entity(manifest)["name"]
    for step in steps.primary_steps(manifest, host_dir):
        if step.unless and docker.exec_sh("primary", step.unless, check=False).returncode == 0:
            console.print(f"    [dim]{step.title}: already done[/]")
            continue
        console.print(f"    {step.title}\n    [dim]primary# {step.command}[/]")
        docker.exec_sh("primary", step.command, input=step.stdin)


@main.command()
@click.option("--build/--no-build", default=True, help="Build images before starting (fast when cached).")
@click.option("--timeout", default=180, show_default=True, help="Seconds to wait for every service to be healthy.")
@reports_errors
def up(build: bool, timeout: int) -> None:
    """Start the lab: PKI if missing, images, primary setup steps, all services healthy."""
    docker.preflight()
    pki_dir = project.pki_dir()
    if pki.exists(pki_dir):
        say(f"PKI: using {pki_dir}")
    else:
        say(f"PKI: creating {pki_dir}")
        pki.init_pki(pki_dir)
    manifest = pki.load_manifest(pki_dir)
    if build:
        images.build_all(say)
    say("starting primary")
    docker.compose("up", "-d", "--no-build", "primary")
    say("primary server setup (the doc's steps)")
    apply_primary_steps(manifest)
    say("starting gateway and client; waiting until all are healthy")
    started = time.monotonic()
    proc = docker.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", str(timeout), check=False)
    failing = status.wait_converged(max(5.0, timeout - (time.monotonic() - started))) if proc.returncode == 0 else {"compose": "up --wait failed"}
    result = status.collect()
    print_summary(result)
    if failing:
        detail = "; ".join(f"{svc}: {why}" for svc, why in failing.items())
        raise LabError(f"not every service became healthy ({detail}): see `safeq-lab status` and `safeq-lab logs SERVICE`")


def print_summary(result: dict) -> None:
    table = Table(title="safeq-lab")
    for col in ("service", "host", "port", "certificate subject", "issuer", "state"):
        table.add_column(col)
    for row in status.summary_rows(result):
        table.add_row(*row)
    out.print(table)


@main.command()
@reports_errors
def down() -> None:
    """Stop and remove the lab's containers (the PKI stays)."""
    docker.preflight()
    docker.compose("down", "--timeout", "2")


@main.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status_cmd(as_json: bool) -> None:
    """Services, their health, and every endpoint the primary knows."""
    docker.preflight()
    result = status.collect()
    if as_json:
        click.echo(json.dumps({"services": result["services"], "endpoints": result["endpoints"]}, indent=2))
        return
    print_summary(result)
    if result["endpoints"]:
        table = Table(title="endpoints known to the primary")
        for col in ("name", "role", "decision", "state", "reason", "last seen"):
            table.add_column(col)
        for ep in result["endpoints"]:
            table.add_row(ep["name"], ep["role"], ep["decision"], ep["state"], ep["reason"] or "", ep["last_seen"] or "")
        out.print(table)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@reports_errors
def verify(pytest_args) -> None:
    """Run the testinfra checks against the running lab."""
    docker.preflight()
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(project.root() / "tests" / "infra"), *pytest_args]
    sys.exit(subprocess.run(argv, cwd=project.root()).returncode)


@main.command()
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True)
@reports_errors
def logs(service: str | None, follow: bool) -> None:
    """Logs of one service, or of all."""
    docker.preflight()
    docker.compose("logs", *(["-f"] if follow else []), *([service] if service else []))


@main.command()
@click.option("--pki", "remove_pki", is_flag=True, help="Also delete the generated PKI (CA keys included).")
@reports_errors
def clean(remove_pki: bool) -> None:
    """Remove containers, network and images; the PKI only with --pki."""
    docker.preflight()
    docker.compose("down", "--timeout", "2", "--rmi", "all", "--remove-orphans")
    subprocess.run(["docker", "image", "rm", images.BASE_IMAGE], capture_output=True)
    if remove_pki:
        import shutil
        shutil.rmtree(project.pki_dir(), ignore_errors=True)
        say(f"removed {project.pki_dir()}")


if __name__ == "__main__":
    main()
