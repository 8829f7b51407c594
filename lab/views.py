"""How safeq-lab shows things: progress on stderr, tables on stdout."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import status

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def say(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {escape(message)}", soft_wrap=True)  # a path stays on one line


def cells(*values) -> list[Text]:
    """Plain text: a reason or a subject from the network is never read as rich markup."""
    return [Text(str(v or "")) for v in values]


def print_summary(result: dict) -> None:
    table = Table(title="safeq-lab")
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


def print_refused(refused: list[dict]) -> None:
    """Connections the primary refused before they showed an identity, newest first."""
    table = Table(title="connections the primary refused (newest first)")
    for col in ("time", "address", "reason"):
        table.add_column(col)
    for item in refused:
        table.add_row(*cells(item.get("time"), item.get("address"), item.get("reason")))
    out.print(table)
