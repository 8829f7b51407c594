// The Lab page, live: polls /lab.json every 2 s and redraws the topology and the tables.
// Data goes in through textContent and setAttribute only (no innerHTML): the CSP allows no inline script.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const ICONS = {grey: "grey (connected)", yellow: "yellow (a network or certificate problem)"};
  const PERIOD = 2000;

  function el(tag, attrs, text, ns) {
    const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function when(stamp) {
    if (!stamp) return "";
    const d = new Date(stamp);
    if (isNaN(d.getTime())) return String(stamp);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function drawTopology(view) {
    const svg = document.getElementById("topology");
    if (!svg) return;
    svg.setAttribute("viewBox", "0 0 " + view.size.width + " " + view.size.height);
    const at = {};
    view.nodes.forEach(n => { at[n.host] = n; });
    const links = el("g", {class: "links"}, null, SVG);
    view.links.forEach(l => {
      const a = at[l.from], b = at[l.to];
      if (a && b) links.append(el("line", {x1: a.x, y1: a.y, x2: b.x, y2: b.y, "data-from": l.from, "data-colour": l.colour}, null, SVG));
    });
    const nodes = el("g", {class: "nodes"}, null, SVG);
    view.nodes.forEach(n => {
      const g = el("g", {"data-host": n.host, "data-role": n.role, "data-colour": n.colour, class: "node"}, null, SVG);
      g.append(el("circle", {cx: n.x, cy: n.y, r: n.role === "primary" ? 34 : 26}, null, SVG));
      g.append(el("text", {x: n.x, y: n.label_y[0], class: "host"}, n.host, SVG));
      g.append(el("text", {x: n.x, y: n.label_y[1], class: "role"}, n.role + " · " + n.state, SVG));
      nodes.append(g);
    });
    svg.replaceChildren(links, nodes);
  }

  function nodeRow(n, iconLabel) {
    const tr = el("tr", {"data-host": n.host, "data-colour": n.colour});
    tr.append(el("td", {}, n.host), el("td", {}, n.role));
    const state = el("td");
    state.append(el("span", {class: "dot", "aria-hidden": "true"}), document.createTextNode(n.state), el("br"),
                 el("span", {class: "small"}, n.detail || ""));
    const cert = el("td");
    if (n.certificate) {
      const c = n.certificate;
      cert.append(document.createTextNode(c.subject || ""), el("br"),
                  el("span", {class: "small"}, "issued by " + (c.issuer || "")), el("br"),
                  el("span", {class: "fingerprint", title: c.sha256 || ""}, c.sha256_short || ""));
    } else {
      cert.textContent = "—";
    }
    const icon = el("td");
    if (n.icon) icon.append(el("span", {class: "icon", "data-icon": n.icon, title: iconLabel}, ICONS[n.icon] || n.icon));
    tr.append(state, cert, icon);
    return tr;
  }

  function fillTable(id, rows, empty, columns) {
    const body = document.querySelector("#" + id + " tbody");
    if (!body) return;
    if (rows.length === 0) {
      const tr = el("tr", {class: "empty"});
      tr.append(el("td", {colspan: columns}, empty));
      rows = [tr];
    }
    body.replaceChildren(...rows);
  }

  function render(view) {
    drawTopology(view);
    fillTable("nodes", view.nodes.map(n => nodeRow(n, view.icon_label)), "No hosts.", 5);
    fillTable("refused", view.refused.map(r => {
      const tr = el("tr");
      tr.append(el("td", {}, when(r.time)), el("td", {}, r.address), el("td", {}, r.reason));
      return tr;
    }), "No refused connections.", 3);
    showError(view.admin_api.ok ? null : view.admin_api.error);
    const updated = document.getElementById("updated");
    if (updated) updated.textContent = view.updated;
  }

  function showError(message) {
    const banner = document.getElementById("lab-error");
    if (!banner) return;
    banner.textContent = message || "";
    banner.hidden = !message;
  }

  let timer = null;
  async function refresh() {
    try {
      const resp = await fetch("/lab.json", {credentials: "same-origin", cache: "no-store"});
      if (resp.status === 403) {
        showError("your session has ended: log in again");
        return;  // no more polling: nothing will answer until a new login
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      render(await resp.json());
    } catch (err) {
      showError("the portal does not answer (" + err.message + "); retrying");
    }
    timer = setTimeout(refresh, PERIOD);
  }

  document.addEventListener("DOMContentLoaded", () => { timer = setTimeout(refresh, PERIOD); });
})();
