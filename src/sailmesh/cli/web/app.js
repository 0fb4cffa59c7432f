// sailmesh dashboard: the Graph (with Kiali's Security display), Namespaces and
// Certificates pages. Data comes from /api/*; layout and drawing are cytoscape.js's.
"use strict";

const state = { namespaces: null, window: 600, security: true, find: "", hide: "", graph: null,
                generation: 0, selected: null };
const REFRESH_MS = 5000;
// Glyphs every system font has (DejaVu, Liberation): no emoji font needed.
const BADGE = { "mtls": "\u2714 mTLS", "partial": "\u25D0 partly mTLS",
                "tls-originated": "\u2197 TLS originated", "passthrough": "\u21E2 TLS passed through",
                "plaintext": "\u2718 plaintext" };
const LOCK = '<svg width="10" height="12" viewBox="0 0 10 12" aria-hidden="true"><rect x="1" y="5" width="8" height="7" rx="1"/><path d="M3 5V3a2 2 0 0 1 4 0v2" fill="none" stroke="currentColor" stroke-width="1.5"/></svg> ';

const cy = cytoscape({
  container: document.getElementById("cy"),
  style: [
    { selector: "node", style: { "label": "data(label)", "font-size": 11, "text-valign": "bottom",
      "text-margin-y": 4, "background-color": "#fff", "border-width": 2, "border-color": "#3e8635",
      "width": 28, "height": 28 } },
    { selector: "node[kind = 'service']", style: { "shape": "triangle", "border-color": "#004080" } },
    { selector: "node[kind = 'gateway']", style: { "shape": "round-rectangle", "border-color": "#5752d1" } },
    { selector: "node[kind = 'external']", style: { "shape": "diamond", "border-color": "#8a8d90" } },
    { selector: "node[kind = 'unknown']", style: { "shape": "hexagon", "border-color": "#8a8d90" } },
    { selector: "edge", style: { "width": 2, "curve-style": "bezier", "target-arrow-shape": "triangle",
      "line-color": "#3e8635", "target-arrow-color": "#3e8635", "label": "data(text)",
      "font-size": 10, "text-background-color": "#fff", "text-background-opacity": 0.85,
      "text-rotation": "autorotate" } },
    { selector: "edge[protocol = 'tcp']", style: { "line-style": "dashed", "line-color": "#004080",
      "target-arrow-color": "#004080" } },
    { selector: "edge[errorRate > 0]", style: { "line-color": "#c9190b", "target-arrow-color": "#c9190b" } },
    { selector: "edge.found, node.found", style: { "overlay-color": "#f0ab00", "overlay-opacity": 0.35 } },
    { selector: ":selected", style: { "border-color": "#f0ab00", "line-color": "#f0ab00" } },
  ],
});

function edgeText(e) {
  const rate = e.protocol === "tcp" ? `${fmt(e.rate)} conn/s` : `${fmt(e.rate)} rps`;
  const errors = e.protocol === "tcp" ? "" : ` ${e.error_rate}% err`;
  let text = `${e.protocol} ${rate}${errors}`;
  if (state.security) {
    const pct = e.mtls_percent === null ? "" : ` ${e.mtls_percent}%`;
    text = `${BADGE[e.security]}${e.security === "partial" ? pct : ""}  ${text}`;
  }
  return text;
}

function fmt(x) { return x >= 10 ? x.toFixed(0) : x.toFixed(2); }

function matches(expr, e) {
  const terms = expr.split(",").map(t => t.trim().toLowerCase()).filter(Boolean);
  if (!terms.length) return false;
  return terms.every(term => {
    const neg = term.startsWith("!");
    const t = neg ? term.slice(1) : term;
    let hit;
    if (t === "mtls") hit = e.security === "mtls";
    else if (t === "secure" || t === "secured") hit = e.secured;
    else if (["tcp", "http", "grpc"].includes(t)) hit = e.protocol === t;
    else if (t === "error" || t === "errors") hit = e.error_rate > 0;
    else if (t.startsWith("name=")) {
      const n = t.slice(5);
      hit = [e.source.workload, e.service.name, e.destination.workload].some(x => x.toLowerCase().includes(n));
    } else hit = e.security === t;
    return neg ? !hit : hit;
  });
}

function render(graph) {
  state.graph = graph;
  const elements = [];
  for (const n of graph.nodes) elements.push({ group: "nodes", data: { ...n } });
  for (const e of graph.edges) {
    elements.push({ group: "edges", data: { id: e.id, source: e.from, target: e.to,
      protocol: e.protocol, security: e.security, errorRate: e.error_rate, text: edgeText(e), edge: e } });
  }
  const before = new Set(cy.elements().map(x => x.id()));
  const after = new Set(elements.map(x => x.data.id));
  const same = before.size === after.size && [...after].every(id => before.has(id));
  if (same) {
    for (const el of elements) cy.getElementById(el.data.id).data(el.data);
  } else {
    cy.elements().remove();
    cy.add(elements);
    cy.layout({ name: "breadthfirst", directed: true, spacingFactor: 1.2, padding: 20,
                roots: cy.nodes().filter(n => n.indegree(false) === 0) }).run();
  }
  applyFindHide();
  renderTable(graph);
  const pct = graph.mtls_percent;
  document.getElementById("mtls-summary").textContent =
    pct === null ? "mTLS: no traffic reported by destinations" : `mTLS: ${pct}% of traffic`;
  state.generation += 1;
  document.getElementById("status").textContent =
    `updated ${new Date(graph.generated * 1000).toLocaleTimeString()}`;
}

function applyFindHide() {
  cy.elements().removeClass("found");
  cy.elements().style("display", "element");
  for (const edge of cy.edges()) {
    const e = edge.data("edge");
    if (state.find && matches(state.find, e)) edge.addClass("found");
    if (state.hide && matches(state.hide, e)) edge.style("display", "none");
  }
  if (state.hide) {
    for (const node of cy.nodes()) {
      if (node.connectedEdges().filter(x => x.style("display") !== "none").length === 0) node.style("display", "none");
    }
  }
}

function renderTable(graph) {
  const body = document.querySelector("#edges tbody");
  body.replaceChildren();
  // One row per traffic edge: source → service → destination workload.
  for (const e of graph.traffic) {
    const tr = document.createElement("tr");
    tr.dataset.source = e.source.workload === "unknown" ? "unknown" : `${e.source.namespace}/${e.source.workload}`;
    tr.dataset.service = e.service.host;
    tr.dataset.destination = e.destination.workload === "unknown" ? "unknown" : `${e.destination.namespace}/${e.destination.workload}`;
    tr.dataset.protocol = e.protocol;
    tr.dataset.security = e.security;
    tr.dataset.mtls = e.mtls_percent === null ? "" : String(e.mtls_percent);
    if (state.hide && matches(state.hide, e)) tr.classList.add("hidden-edge");
    if (state.find && matches(state.find, e)) tr.classList.add("found");
    const principals = [...e.source_principals, ...e.destination_principals.map(p => "→ " + p)].join("\n");
    const cells = [tr.dataset.source, `${e.service.host} → ${tr.dataset.destination}`, e.protocol,
                   e.protocol === "tcp" ? `${fmt(e.rate)} conn/s` : `${fmt(e.rate)} rps`,
                   e.protocol === "tcp" ? "" : `${e.error_rate}%`, null,
                   e.mtls_percent === null ? "" : `${e.mtls_percent}%`, principals];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 5) {
        td.append(badge(e.security));
      } else {
        td.textContent = text;
        if (i === 7) td.style.whiteSpace = "pre";
      }
      tr.append(td);
    });
    tr.addEventListener("click", () => showEdge(e));
    body.append(tr);
  }
}

function badge(security) {
  const b = document.createElement("b");
  b.className = `badge ${security}`;
  b.innerHTML = (security === "mtls" ? LOCK : "") + BADGE[security];
  return b;
}

function dl(pairs) {
  const d = document.createElement("dl");
  for (const [k, v] of pairs) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v === "" || v === null ? "—" : v;
    d.append(dt, dd);
  }
  return d;
}

async function showEdge(e) {
  const panel = document.getElementById("panel");
  const title = document.createElement("h3");
  title.textContent = `${e.source.workload} → ${e.service.name} → ${e.destination.workload}`;
  panel.replaceChildren(title, dl([
    ["Security", BADGE[e.security] + (e.mtls_percent === null ? "" : ` (${e.mtls_percent}% mTLS)`)],
    ["Protocol", e.protocol], ["Reported by", e.reporter],
    ["Source principal", e.source_principals.join("\n")],
    ["Destination principal", e.destination_principals.join("\n")],
    ["Upstream TLS", e.upstream_tls.join(", ")], ["SNI", e.sni.join(", ")],
  ]));
  const why = document.createElement("div");
  why.className = "hint";
  why.textContent = "Asking tls-check why…";
  panel.append(why);
  const q = new URLSearchParams({ namespace: e.source.namespace, workload: e.source.workload,
    gateway: String(e.source.gateway), host: e.service.host });
  if (e.ports.length === 1) q.set("port", String(e.ports[0]));
  const hop = await (await fetch(`/api/edge?${q}`)).json();
  why.replaceChildren();
  if (hop.error) { why.textContent = hop.error; return; }
  why.className = "";
  const server = hop.servers[0] || {};
  why.append(dl([
    ["Client side decided by", `${hop.client.policy} (${hop.client.mode})`],
    ["Server side decided by", server.policy ? `${server.policy} (${server.mode})` : ""],
    ["Sends / accepts", server.sends ? `${server.sends} / ${server.accepts}` : ""],
    ["Verdict", hop.verdict],
  ]));
  const pre = document.createElement("pre");
  pre.textContent = [...hop.client.reasons, ...hop.servers.flatMap(s => s.reasons)].join("\n");
  const cmd = document.createElement("pre");
  cmd.textContent = "$ " + hop.command;
  why.append(pre, cmd);
}

function showNode(n) {
  const panel = document.getElementById("panel");
  const title = document.createElement("h3");
  title.textContent = `${n.kind} ${n.label}`;
  panel.replaceChildren(title, dl([["Namespace", n.namespace], ["Host", n.host || ""]]));
}

cy.on("tap", "edge", evt => showEdge(evt.target.data("edge")));
cy.on("tap", "node", evt => showNode(evt.target.data()));

async function refreshGraph() {
  const q = new URLSearchParams({ window: String(state.window) });
  for (const ns of state.namespaces || []) q.append("namespace", ns);
  try {
    const resp = await fetch(`/api/graph?${q}`);
    const body = await resp.json();
    if (!resp.ok) { document.getElementById("status").textContent = body.error; return; }
    render(body);
  } catch (err) {
    document.getElementById("status").textContent = `dashboard server unreachable: ${err}`;
  }
}

async function loadNamespaces() {
  const body = await (await fetch("/api/namespaces")).json();
  if (body.error) return;
  document.getElementById("mesh-mtls").textContent = body.mesh;
  const rows = document.querySelector("#namespaces tbody");
  rows.replaceChildren();
  const list = document.getElementById("ns-list");
  list.replaceChildren();
  const wanted = new URLSearchParams(location.search).getAll("namespace");
  if (state.namespaces === null && wanted.length) state.namespaces = wanted;
  for (const ns of body.namespaces) {
    const tr = document.createElement("tr");
    tr.dataset.namespace = ns.namespace;
    tr.dataset.status = ns.effective;
    for (const v of [ns.namespace, ns.effective, ns.status, ns.peer_authentication, ns.destination_rule]) {
      const td = document.createElement("td"); td.textContent = v || "—"; tr.append(td);
    }
    rows.append(tr);
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = ns.namespace;
    box.checked = state.namespaces === null || state.namespaces.includes(ns.namespace);
    box.addEventListener("change", () => {
      state.namespaces = [...list.querySelectorAll("input:checked")].map(b => b.value);
      refreshGraph();
    });
    label.append(box, " " + ns.namespace);
    list.append(label);
  }
}

async function loadCertificates() {
  const body = await (await fetch("/api/certificates")).json();
  const root = document.getElementById("ca-root");
  if (body.error || !body.configured) { root.textContent = body.error || "no CA configured"; return; }
  const title = document.createElement("h2");
  title.textContent = "Certificate authority";
  root.replaceChildren(title, dl([
    ["Root source", body.source], ["Root", body.root.subject],
    ["Valid", `${body.root.notBefore} → ${body.root.notAfter}`], ["SHA-256", body.root.sha256],
    ["Signing (intermediate) certificate", body.signer], ["Key type", body.keyType],
    ["Workload certificate lifetime", `${body.workloadTTLSeconds / 3600} h`],
  ]));
  const rows = document.querySelector("#identities tbody");
  rows.replaceChildren();
  for (const id of body.identities) {
    const tr = document.createElement("tr");
    tr.dataset.identity = id.spiffeId;
    for (const v of [id.namespace, id.pod, id.spiffeId, id.serial, id.issued, id.notAfter, id.renewal]) {
      const td = document.createElement("td"); td.textContent = v || "—"; tr.append(td);
    }
    rows.append(tr);
  }
}

function showPage() {
  const page = (location.hash || "#graph").slice(1);
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== `page-${page}`;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  if (page === "graph") cy.resize();
  if (page === "namespaces") loadNamespaces();
  if (page === "certificates") loadCertificates();
}

document.getElementById("window").addEventListener("change", ev => { state.window = Number(ev.target.value); refreshGraph(); });
document.getElementById("security").addEventListener("change", ev => { state.security = ev.target.checked; render(state.graph); });
document.getElementById("find").addEventListener("input", ev => { state.find = ev.target.value; render(state.graph); });
document.getElementById("hide").addEventListener("input", ev => { state.hide = ev.target.value; render(state.graph); });
window.addEventListener("hashchange", showPage);

const params = new URLSearchParams(location.search);
if (params.get("window")) { state.window = Number(params.get("window")); document.getElementById("window").value = params.get("window"); }
window.sailmesh = { cy, state };
showPage();
loadNamespaces().then(refreshGraph);
setInterval(refreshGraph, REFRESH_MS);
