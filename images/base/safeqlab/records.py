"""Which endpoint record stands for a host name.

Several records may share a name (a reissued or re-registered certificate gets a new
one); the host is the connected one, else the one seen last.
"""
from __future__ import annotations


def current_record(records: list[dict], name: str) -> dict | None:
    named = [r for r in records if r.get("name") == name]
    if not named:
        return None
    # ISO 8601 UTC stamps of one format sort as text; a record never seen sorts first;
    # on a tie the later record in the list wins.
    return sorted(named, key=lambda r: (r.get("state") == "connected", r.get("last_seen") or ""))[-1]
