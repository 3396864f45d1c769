// SPDX-License-Identifier: LGPL-2.1-or-later
// dashboard.js — the fleet dashboard's one script: reads vgpu-broker's JSON API (GET /v1/whoami,
// /v1/hosts, /v1/gpus, /v1/sessions, /v1/events; doc/fleet.md has their fields) every POLL_MS and redraws the view the URL's hash
// names (#/, #/host/NAME, #/sessions). Cordon, uncordon and drain are POSTs, offered only when the
// broker says this caller may change the fleet. No framework and no build step: the files are
// served as installed.
"use strict";

const POLL_MS = 1500;            // the issue asks for updates within 2 s
const TEMP_WARN = 75, TEMP_CRIT = 85;   // the guide's thresholds (degrees C)
let token = sessionStorage.getItem("vgpu-broker-token") || "";
let state = { hosts: [], gpus: [], sessions: [], events: [], canWrite: false };

function api(method, path) {
  const headers = { "Accept": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  return fetch(path, { method, headers }).then(r => {
    if (r.status === 401) { showTokenForm(); throw new Error("the broker wants an API token"); }
    if (!r.ok) return r.json().catch(() => ({})).then(b => { throw new Error(b.error || (path + ": HTTP " + r.status)); });
    return r.status === 204 ? {} : r.json();
  });
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function gib(bytes) {
  return (bytes / 1073741824).toFixed(1) + " GiB";
}

// The bar is what the broker's sessions hold on the GPU (vram_claimed_bytes: what placement
// fills); the host's own measure (vram_used_bytes, from its vgpud) is the line under it.
function vramCell(g) {
  const total = g.vram_total_bytes || 0, used = g.vram_claimed_bytes || 0;
  if (!total) return el("span", { class: "muted", text: "unknown" });
  const pct = Math.round(100 * used / total);
  return el("span", { class: "vram" },
    el("meter", { min: 0, max: total, value: used, low: total * 0.75, high: total * 0.9, optimum: 0,
                  "aria-label": "VRAM claimed on " + g.gpu, "data-used": used, "data-total": total }),
    " " + gib(used) + " / " + gib(total) + " (" + pct + "%)",
    el("small", { class: "muted", "data-host-used": g.vram_used_bytes || 0,
                  text: "in use on the host: " + gib(g.vram_used_bytes || 0) }));
}

function tempCell(t) {
  if (t === null || t === undefined) return el("span", { class: "muted", text: "—" });
  const cls = t >= TEMP_CRIT ? "crit" : t >= TEMP_WARN ? "warn" : "ok";
  const word = t >= TEMP_CRIT ? " critical" : t >= TEMP_WARN ? " hot" : "";
  return el("span", { class: cls, "data-celsius": t, text: t + " °C" + word });
}

function healthCell(g) {
  const ok = !g.degraded;
  const why = (g.health_reasons || []).join(", ");
  return el("span", { class: ok ? "ok" : "crit", text: ok ? "ok" : "degraded" + (why ? ": " + why : "") });
}

function sizeText(s) {
  if (s.type) return s.type;
  if (s.kind === "slice") return "slice " + gib(s.vram_bytes || 0) + ", " + (s.share_percent || 0) + "%";
  if (s.vram_bytes) return gib(s.vram_bytes);
  return "—";
}

function row(cells) {
  const tr = el("tr");
  for (const [label, content] of cells)
    tr.append(el("td", { "data-label": label }, typeof content === "object" ? content : String(content)));
  return tr;
}

function fill(tbodySel, rows, emptyText, cols) {
  const tb = document.querySelector(tbodySel);
  tb.replaceChildren(...rows);
  if (!rows.length) tb.append(el("tr", {}, el("td", { colspan: cols, class: "muted", text: emptyText })));
}

function hostState(h) {
  if (h.alive === false) return el("span", { class: "crit", text: "down" });
  if (h.draining) return el("span", { class: "warn", text: "draining" });
  if (h.cordoned) return el("span", { class: "warn", text: "cordoned" });
  return el("span", { class: "ok", text: "up" });
}

function hostActions(h) {
  if (!state.canWrite) return el("span", { class: "muted", text: "read-only" });
  const act = (verb) => el("button", { type: "button", "data-action": verb, "data-host": h.host,
    "data-key": "action:" + verb + ":" + h.host,
    "aria-label": verb + " " + h.host, text: verb,
    onclick: () => {
      if (verb === "drain" && !confirm("Drain " + h.host + "? Its sessions are released.")) return;
      api("POST", "/v1/hosts/" + encodeURIComponent(h.host) + "/" + verb)
        .then(refresh).catch(e => setStatus(e.message, true));
    } });
  const span = el("span");
  span.append(h.cordoned || h.draining ? act("uncordon") : act("cordon"));
  if (!h.draining) span.append(act("drain"));
  return span;
}

function renderOverview() {
  const gpus = state.gpus, hosts = state.hosts;
  const total = gpus.reduce((a, g) => a + (g.vram_total_bytes || 0), 0);
  const used = gpus.reduce((a, g) => a + (g.vram_claimed_bytes || 0), 0);
  const totals = document.getElementById("totals");
  const fact = (k, v, id) => el("div", {}, el("dt", { text: k }), el("dd", { id, text: v }));
  totals.replaceChildren(
    fact("Hosts up", hosts.filter(h => h.alive !== false).length + " / " + hosts.length, "total-hosts"),
    fact("GPUs", String(gpus.length), "total-gpus"),
    fact("VRAM claimed", total ? gib(used) + " / " + gib(total) : "—", "total-vram"),
    fact("Sessions", String(state.sessions.length), "total-sessions"));
  fill("#hosts tbody", hosts.map(h => {
    const tr = row([
      ["Host", el("a", { href: "#/host/" + encodeURIComponent(h.host), "data-key": "host:" + h.host, text: h.host })],
      ["State", hostState(h)],
      ["GPUs", h.gpus_total || 0],
      ["Sessions", h.sessions || 0],
      ["Actions", hostActions(h)]]);
    tr.dataset.host = h.host;
    return tr;
  }), "no hosts have joined", 5);
  fill("#gpus tbody", gpus.map(g => {
    const tr = row([
      ["Host", el("a", { href: "#/host/" + encodeURIComponent(g.host), text: g.host })],
      ["GPU", g.gpu], ["Model", g.model || "—"], ["VRAM", vramCell(g)],
      ["Temperature", tempCell(g.temperature_celsius)], ["Health", healthCell(g)],
      ["Sessions", g.sessions || 0]]);
    tr.dataset.gpu = g.gpu;
    return tr;
  }), "no GPUs", 7);
}

function renderHost(name) {
  const h = state.hosts.find(x => x.host === name);
  document.getElementById("h-host").textContent = "Host " + name;
  const facts = document.getElementById("host-facts");
  const fact = (k, v) => el("div", {}, el("dt", { text: k }), el("dd", {}, v));
  facts.replaceChildren(...(h ? [fact("State", hostState(h)), fact("Address", h.address || "—"),
                                 fact("Version", h.version || "—")]
                              : [fact("State", el("span", { class: "muted", text: "unknown host" }))]));
  document.getElementById("host-actions").replaceChildren(h ? hostActions(h) : "");
  fill("#host-gpus tbody", state.gpus.filter(g => g.host === name).map(g => row([
    ["GPU", g.gpu], ["Model", g.model || "—"], ["Mode", g.mode || "—"], ["VRAM", vramCell(g)],
    ["Temperature", tempCell(g.temperature_celsius)], ["Health", healthCell(g)]])), "no GPUs", 6);
  fill("#host-instances tbody", state.sessions.filter(s => s.host === name).map(s => row([
    ["Session", s.session], ["User", s.user || "—"], ["GPU", s.gpu || "—"], ["Kind", s.kind || "—"],
    ["Size", sizeText(s)], ["Instance", s.instance || "—"], ["State", s.state || "—"]])),
    "no vGPU instances or slices placed here", 7);
  const ev = state.events.filter(e => !e.host || e.host === name).slice(-20).reverse();
  const ol = document.getElementById("host-events");
  ol.replaceChildren(...ev.map(e => el("li", {},
    el("time", { datetime: new Date(e.time_ms).toISOString(), text: new Date(e.time_ms).toLocaleTimeString() }),
    " " + e.text)));
  if (!ev.length) ol.append(el("li", { class: "muted", text: "no recent events" }));
}

function renderSessions() {
  const q = document.getElementById("filter").value.trim().toLowerCase();
  const hit = s => !q || [s.session, s.user, s.tenant, s.host, s.gpu, s.state]
    .some(v => v && String(v).toLowerCase().includes(q));
  const shown = state.sessions.filter(hit);
  document.getElementById("sessions-count").textContent = "(" + shown.length + " of " + state.sessions.length + ")";
  fill("#sessions tbody", shown.map(s => {
    const tr = row([["Session", s.session], ["User", s.user || "—"], ["Tenant", s.tenant || "—"],
      ["Host", s.host ? el("a", { href: "#/host/" + encodeURIComponent(s.host), text: s.host }) : "—"],
      ["GPU", s.gpu || "—"], ["Size", sizeText(s)], ["State", s.state || "—"]]);
    tr.dataset.session = s.session;
    return tr;
  }), q ? "no session matches" : "no sessions", 7);
}

function route() {
  const m = location.hash.match(/^#\/(host)\/(.+)$/) || location.hash.match(/^#\/(sessions)$/);
  const view = m ? m[1] : "overview";
  for (const v of ["overview", "host", "sessions"])
    document.getElementById("view-" + v).hidden = v !== view;
  for (const [id, v] of [["nav-overview", "overview"], ["nav-sessions", "sessions"]]) {
    const a = document.getElementById(id);
    if (v === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (view === "host") renderHost(decodeURIComponent(m[2]));
  else if (view === "sessions") renderSessions();
  else renderOverview();
}

function setStatus(text, bad) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = bad ? "crit" : "";
}

function showTokenForm() {
  document.getElementById("token-form").hidden = false;
}

function refresh() {
  return Promise.all([
    api("GET", "/v1/whoami").catch(() => ({ can_write: false })),
    api("GET", "/v1/hosts"), api("GET", "/v1/gpus"), api("GET", "/v1/sessions"),
    api("GET", "/v1/events").catch(() => []),
  ]).then(([who, h, g, s, e]) => {
    if (who.token_required && !who.authenticated) showTokenForm();
    // the broker answers each list as a bare JSON array
    state = { canWrite: !!who.can_write, hosts: h, gpus: g, sessions: s, events: e };
    // Only the tables are redrawn, never the controls; a keyboard user's focus on a link or
    // button inside a table is put back on its redrawn twin (same data-key).
    const focused = document.activeElement && document.activeElement.dataset.key;
    route();
    if (focused) {
      const twin = document.querySelector('[data-key="' + CSS.escape(focused) + '"]');
      if (twin) twin.focus();
    }
    setStatus("Updated " + new Date().toLocaleTimeString());
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }).catch(e => setStatus(e.message, true));
}

document.getElementById("token-form").addEventListener("submit", ev => {
  ev.preventDefault();
  token = document.getElementById("token").value;
  sessionStorage.setItem("vgpu-broker-token", token);
  document.getElementById("token-form").hidden = true;
  refresh();
});
document.getElementById("filter").addEventListener("input", renderSessions);
window.addEventListener("hashchange", () => { route(); document.getElementById("main").focus(); });
refresh();
setInterval(refresh, POLL_MS);
