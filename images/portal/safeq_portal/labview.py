"""The lab view: what the topology drawing and its table show, as one pure function of what the
primary's admin API said (no sockets here: the server gathers, this decides)."""
from __future__ import annotations

from safeqlab.client import icon
from safeqlab.records import current_record

GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"
REFUSALS = ("refused", "not-trusted")
MAX_REFUSED = 10
WIDTH, HEIGHT = 760, 420
CENTRE = (WIDTH // 2, 250)
ICON_LABEL = "notification icon (as the client shows it)"


def parse_hosts(text: str | None) -> list[tuple[str, str]]:
    """'primary=primary-host gateway=gw-1 gateway=gw-2' -> [(role, host), ...] in that order."""
    pairs = []
    for word in (text or "").split():
        role, sep, host = word.partition("=")
        pair = (role.strip().lower(), host.strip())
        if sep and all(pair) and pair not in pairs:
            pairs.append(pair)
    return pairs


def short(sha256: str | None) -> str | None:
    return sha256[:23] + "…" if sha256 and len(sha256) > 24 else sha256


def certificate(info: dict | None) -> dict | None:
    if not info or not info.get("subject"):
        return None
    return {"subject": info.get("subject"), "issuer": info.get("issuer"),
            "sha256": info.get("sha256"), "sha256_short": short(info.get("sha256"))}


def primary_node(host: str, server: dict | None, api_error: str | None, down: bool = False) -> dict:
    if server is None:
        return {"host": host, "role": "primary", "colour": RED, "state": "no answer" if down else "no status",
                "detail": api_error or "the admin API gave no status", "certificate": None}
    state = server.get("state")
    colour = {"serving": GREEN, "built-in": GREEN, "degraded": AMBER, "fallback": RED}.get(state, AMBER)
    check = server.get("self_check") or {}
    detail = f"certificate policy {server.get('policy')}"
    if check and not check.get("ok"):
        detail += f"; self-check failed: {check.get('reason')}"
    return {"host": host, "role": "primary", "colour": colour, "state": state or "unknown",
            "detail": detail, "certificate": certificate(server.get("serving"))}


def ocsp_node(host: str, ocsp_up: bool | None, account: dict | None) -> dict:
    checks = ((account or {}).get("ocsp") or {}).get("enabled") if account else None
    said = {True: "OCSP checks are on in the account settings",
            False: "OCSP checks are off in the account settings", None: "OCSP checks: unknown"}[checks]
    if ocsp_up is None:
        colour, state = GREY, "not probed"
    else:
        colour, state = (GREEN, "reachable") if ocsp_up else (RED, "not reachable")
    return {"host": host, "role": "ocsp", "colour": colour, "state": state, "detail": said,
            "certificate": None, "checks": checks}


def endpoint_colour(record: dict | None) -> str:
    if record is None:
        return GREY
    if record.get("decision") in REFUSALS:
        return RED
    if record.get("kind") == "built-in" and record.get("trusted") is False:
        return RED  # a built-in certificate nobody trusted cannot connect
    if record.get("decision") == "accepted":
        return GREEN if record.get("state") == "connected" else AMBER
    return AMBER  # no decision yet


def endpoint_node(role: str, host: str, record: dict | None, known: bool, listing: bool = True) -> dict:
    """``listing`` False: the admin API gave no endpoint list, so "never seen" would be a guess."""
    node = {"host": host, "role": role, "colour": endpoint_colour(record),
            "certificate": certificate(record), "listed": known}
    if record is None and not listing:
        node.update(state="unknown", detail="the admin API gave no endpoint list", id=None)
    elif record is None:
        node.update(state="never seen", detail="the primary has never seen it", id=None)
    else:
        node.update(state=record.get("state") or "unknown", id=record.get("id"),
                    detail=f"{record.get('decision') or 'no decision'}: {record.get('reason') or ''}".rstrip(": "))
    if node["role"] == "client":
        node["icon"] = icon(record.get("state") or "") if record else "yellow"
    return node


def _layout(nodes: list[dict]) -> None:
    """Primary in the middle, OCSP above it, gateways on the left, clients (and others) on the right."""
    columns = {"gateway": [], "other": []}
    for node in nodes:
        if node["role"] == "primary":
            node["x"], node["y"] = CENTRE
        elif node["role"] == "ocsp":
            node["x"], node["y"] = CENTRE[0], 84
        else:
            columns["gateway" if node["role"] == "gateway" else "other"].append(node)
    for x, column in ((120, columns["gateway"]), (WIDTH - 120, columns["other"])):
        step = (HEIGHT - 120) / max(len(column), 1)
        for i, node in enumerate(column):
            node["x"], node["y"] = x, int(100 + step * (i + 0.5))
    for node in nodes:  # label lines: above the OCSP node (its link to the primary runs below it), else below
        above = node["role"] == "ocsp"
        node["label_y"] = [node["y"] - 48, node["y"] - 34] if above else [node["y"] + 50, node["y"] + 66]


def model(server: dict | None, account: dict | None, endpoints: list | None, refused: list | None,
          ocsp_up: bool | None, hosts: list[tuple[str, str]], api_error: str | None = None) -> dict:
    """The lab view as JSON-ready data. ``None`` inputs: the admin API did not give them."""
    records = endpoints or []
    primary_host = next((h for r, h in hosts if r == "primary"), "primary")
    down = all(x is None for x in (server, account, endpoints, refused))
    nodes = [primary_node(primary_host, server, api_error, down)]
    nodes += [ocsp_node(h, ocsp_up, account) for r, h in hosts if r == "ocsp"]
    named = set()
    for role, host in hosts:
        if role not in ("primary", "ocsp"):
            named.add(host)
            nodes.append(endpoint_node(role, host, current_record(records, host), True, endpoints is not None))
    for name in dict.fromkeys(r.get("name") for r in records if r.get("name") not in named):
        if name:  # endpoints the primary knows beyond the lab's own hosts
            record = current_record(records, name)
            nodes.append(endpoint_node(record.get("role") or "endpoint", name, record, False))
    _layout(nodes)
    links = [{"from": n["host"], "to": primary_host, "colour": n["colour"]} for n in nodes if n["role"] != "primary"]
    return {
        "admin_api": {"ok": api_error is None, "error": api_error},
        "policy": (account or {}).get("certificate_policy") or (server or {}).get("policy"),
        "nodes": nodes, "links": links, "size": {"width": WIDTH, "height": HEIGHT},
        "refused": [{k: r.get(k) for k in ("time", "address", "reason")} for r in (refused or [])[:MAX_REFUSED]],
        "icon_label": ICON_LABEL,
    }
