"""How safeq-lab shows things: progress on stderr, tables on stdout."""
from __future__ import annotations

import re
import sys
import time
from collections import Counter
from contextlib import contextmanager, nullcontext

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from safeqlab.records import current_record

from . import labstate, status
from .swarm import ENGINE_VAR

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def say(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {escape(message)}", soft_wrap=True)  # a path stays on one line


def cells(*values) -> list[Text]:
    """Plain text: a reason or a subject from the network is never read as rich markup."""
    return [Text(str(v or "")) for v in values]


def print_summary(result: dict) -> None:
    state = labstate.current()
    where = (f"primary on 127.0.0.1:{state.port}, web portal on 127.0.0.1:{state.portal_port}"
             if state.env.get(ENGINE_VAR) != "swarm" else "a swarm stack (nothing published)")
    table = Table(title=f"lab {labstate.name()}, {where}")
    for col in ("service", "host", "port", "certificate subject", "issuer", "state"):
        table.add_column(col)
    for row in status.summary_rows(result):
        table.add_row(*cells(*row))
    out.print(table)


def print_endpoints(eps: list[dict]) -> None:
    table = Table(title="endpoints known to the primary")
    for col in ("id", "name", "role", "decision", "state", "reason", "last seen"):
        table.add_column(col)
    for ep in eps:
        table.add_row(*cells(*(ep.get(k) for k in ("id", "name", "role", "decision", "state", "reason", "last_seen"))))
    out.print(table)


def endpoint_counts(eps: list[dict]) -> list[tuple[int, str, str, str]]:
    """(how many, roles, decision, reason) over the record standing for each host name, most first."""
    current = [current_record(eps, name) for name in dict.fromkeys(ep.get("name") for ep in eps)]
    keyed = [((ep.get("decision") or "", ep.get("reason") or ""), ep.get("role") or "?") for ep in current if ep]
    counts = Counter(key for key, _ in keyed)
    roles = {key: sorted({role for k, role in keyed if k == key}) for key in counts}
    return [(n, ", ".join(roles[key]), *key) for key, n in counts.most_common()]


def print_endpoint_counts(eps: list[dict]) -> None:
    table = Table(title="endpoints by decision and reason (one per host name)")
    for col in ("endpoints", "roles", "decision", "reason"):
        table.add_column(col)
    for n, roles, decision, reason in endpoint_counts(eps):
        table.add_row(*cells(str(n), roles, decision, reason))
    out.print(table)


def print_refused(refused: list[dict]) -> None:
    """Connections the primary refused before they showed an identity, newest first."""
    table = Table(title="connections the primary refused (newest first)")
    for col in ("time", "address", "reason"):
        table.add_column(col)
    for item in refused:
        table.add_row(*cells(item.get("time"), item.get("address"), item.get("reason")))
    out.print(table)


# --- progress of `up` and `build` -------------------------------------------------------------------

TAIL = 25  # lines of a failed command's kept output shown above the error
# compose's progress per object ("Container safeq-lab-primary-1  Started", "Network safeq-lab  Created"),
# in its plain (piped) form or its terminal one ("✔ Container ..."), and its "[+] Running 4/4" headers
CHATTER = re.compile(r"^\s*(?:[✔✘⠿]\s+)?(Container|Network|Volume|Image)\s+(\S+)\s+(\S.*?)\s*$")
HEADER = re.compile(r"^\s*\[\+\]")


def elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def fold(output: str) -> list[str]:
    """compose's chatter as one line (each object's last state); anything else (a warning) as it is."""
    last: dict[str, str] = {}
    kept, folded = [], 0
    for line in output.splitlines():
        match = CHATTER.match(line)
        if match:
            kind, name, state = match.groups()
            last[name if kind == "Container" else f"{kind.lower()} {name}"] = state
            folded += 1
        elif HEADER.match(line):
            folded += 1
        elif line.strip():
            kept.append(line.rstrip())
    if last:
        states = ", ".join(f"{name} {state}" for name, state in last.items())
        kept.insert(0, f"compose: {states} ({folded} lines folded; --verbose shows them)")
    return kept


def output_of(exc: BaseException | None) -> str:
    """The kept output of the command behind an error (also when another error took its place)."""
    while exc is not None:
        out = getattr(exc, "output", None)
        if out:
            return out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        exc = exc.__cause__ or exc.__context__
    return ""


class Phases:
    """One line per phase with its elapsed time, on stderr, its notes (a step as typed, compose's folded
    chatter) below it. On a terminal a spinner shows the running phase, its seconds and latest note.
    Commands keep their output (folded, or its tail on failure) unless verbose: then it goes to the
    terminal as it comes, a spinner would cut into it, and each phase is also announced as it starts."""

    def __init__(self, verbose: bool = False, console: Console = console, clock=time.monotonic):
        self.verbose, self.console, self.clock = verbose, console, clock
        self.detail, self.notes, self.bar, self.title = "", [], None, ""

    @property
    def quiet(self) -> bool:
        return not self.verbose

    def _spinner(self, title: str):
        if self.verbose or not self.console.is_terminal:
            return nullcontext()
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                            console=self.console, transient=True)
        self.bar.add_task(escape(title), total=None)
        return self.bar

    def _print(self, markup: str) -> None:
        self.console.print(markup, soft_wrap=True, highlight=False)

    @contextmanager
    def phase(self, title: str):
        """``detail`` set inside the phase is added to its line (e.g. what a script found)."""
        start, self.detail, self.notes, self.title = self.clock(), "", [], title
        if self.verbose:
            self._print(f"[bold cyan]==>[/] {escape(title)} ...")
        try:
            with self._spinner(title):
                yield self
        except BaseException as exc:
            self._print(f"[bold red]==> failed:[/] {escape(title)} [dim](after {elapsed(self.clock() - start)})[/]")
            self._flush()
            lines = output_of(exc).rstrip().splitlines()[-TAIL:]
            if lines:
                self._print(f"    [dim]its output, last {len(lines)} lines:[/]")
                for line in lines:
                    self._print(f"      {escape(line)}")
            raise
        finally:
            self.bar = None
        shown = f"{title}: {self.detail}" if self.detail else title
        self._print(f"[bold cyan]==>[/] {escape(shown)} [dim]({elapsed(self.clock() - start)})[/]")
        self._flush()

    def _flush(self) -> None:
        for text in self.notes:
            self._print(f"    [dim]{escape(text)}[/]")
        self.notes = []

    def note(self, text: str) -> None:
        """A line of the running phase: shown under its line (at once when verbose)."""
        if self.verbose:
            self._print(f"    [dim]{escape(text)}[/]")
            return
        self.notes.append(text)
        if self.bar is not None:
            latest = text if len(text) <= 60 else text[:59] + "…"
            self.bar.update(self.bar.task_ids[0], description=escape(f"{self.title}: {latest}"))

    def show(self, proc) -> None:
        """What a command printed, folded; nothing when it went to the terminal already."""
        if self.quiet:
            for line in fold(proc.stdout or ""):
                self.note(line)


def validation_commands(topo) -> list[str]:
    """The doc's check (`openssl s_client -servername primary-host -connect localhost:2560`), with the
    lab's host name and ports: from this host through the published port, and inside the primary."""
    primary = topo.service("primary")
    name, commands = primary.host or "localhost", []
    for port in primary.ports:
        if port.host_port:
            host = "localhost" if port.host_ip in ("", "0.0.0.0", "::") else port.host_ip
            commands.append(f"openssl s_client -servername {name} -connect {host}:{port.host_port}")
    inside = primary.port.split(", ")[0]
    if inside:
        commands.append(f"docker compose -p {topo.project} exec primary "
                        f"openssl s_client -servername {name} -connect localhost:{inside}")
    return commands


def print_validation(topo) -> None:
    commands = validation_commands(topo)
    if not commands:
        return
    # The doc: it dumps the primary's certificate; CN=localhost is the fallback of a wrong keystore setting.
    out.print("Validate as the doc says (CN=localhost means a wrong keystore setting):", soft_wrap=True)
    for command in commands:
        out.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
