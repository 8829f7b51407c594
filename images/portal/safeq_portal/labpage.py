"""The Lab page: the topology (inline SVG), a table per node, the last refused connections.
/static/lab.js redraws the same elements from /lab.json every 2 s; keep both in step."""
from __future__ import annotations

from .layout import attrs, esc, page, table, when

ICONS = {"grey": "grey (connected)", "yellow": "yellow (a network or certificate problem)"}


def svg(view: dict) -> str:
    size = view["size"]
    at = {n["host"]: n for n in view["nodes"]}
    lines = "".join(
        f'<line{attrs(x1=at[l["from"]]["x"], y1=at[l["from"]]["y"], x2=at[l["to"]]["x"], y2=at[l["to"]]["y"], data_from=l["from"], data_colour=l["colour"])}/>'
        for l in view["links"] if l["from"] in at and l["to"] in at)
    nodes = "".join(
        f'<g{attrs(data_host=n["host"], data_role=n["role"], data_colour=n["colour"], class_="node")}>'
        f'<circle{attrs(cx=n["x"], cy=n["y"], r=34 if n["role"] == "primary" else 26)}/>'
        f'<text{attrs(x=n["x"], y=n["label_y"][0], class_="host")}>{esc(n["host"])}</text>'
        f'<text{attrs(x=n["x"], y=n["label_y"][1], class_="role")}>{esc(n["role"])} · {esc(n["state"])}</text></g>'
        for n in view["nodes"])
    return (f'<svg id="topology" role="img" aria-label="Lab topology" viewBox="0 0 {size["width"]} {size["height"]}">'
            f'<g class="links">{lines}</g><g class="nodes">{nodes}</g></svg>')


def node_row(n: dict, icon_label: str) -> str:
    cert = n.get("certificate") or {}
    shown = (f'{esc(cert.get("subject"))}<br><span class="small">issued by {esc(cert.get("issuer"))}</span><br>'
             f'<span class="fingerprint" title="{esc(cert.get("sha256"))}">{esc(cert.get("sha256_short"))}</span>'
             if cert else "—")
    icon = n.get("icon")
    icon_cell = (f'<span{attrs(class_="icon", data_icon=icon, title=icon_label)}>{esc(ICONS.get(icon, icon))}</span>'
                 if icon else "")
    return (f'<tr{attrs(data_host=n["host"], data_colour=n["colour"])}><td>{esc(n["host"])}</td><td>{esc(n["role"])}</td>'
            f'<td><span class="dot" aria-hidden="true"></span>{esc(n["state"])}<br><span class="small">{esc(n.get("detail"))}</span></td>'
            f'<td>{shown}</td><td>{icon_cell}</td></tr>')


def refused_row(r: dict) -> str:
    return f'<tr><td>{esc(when(r.get("time")))}</td><td>{esc(r.get("address"))}</td><td>{esc(r.get("reason"))}</td></tr>'


def lab(view: dict, updated: str, csrf: str) -> str:
    error = view["admin_api"]["error"]
    banner = f'<p id="lab-error" class="error" role="alert"{attrs(hidden=not error)}>{esc(error)}</p>'
    nodes = table("nodes", ["Host", "Role", "State", "Certificate presented", view["icon_label"]],
                  [node_row(n, view["icon_label"]) for n in view["nodes"]], "No hosts.")
    refused = table("refused", ["Time", "Address", "Reason"], [refused_row(r) for r in view["refused"]],
                    "No refused connections.")
    body = (f'<p class="help">Updated <span id="updated">{esc(updated)}</span>; the view refreshes every 2 s.</p>'
            f'{banner}{svg(view)}<h2>Hosts</h2>{nodes}<h2>Last refused connections</h2>{refused}')
    return page("Lab", body, current="/lab", csrf=csrf, scripts=["/static/lab.js"])
