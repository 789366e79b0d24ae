// SPDX-License-Identifier: MIT
// connscope live page: polls the JSON API once per tick and draws plain SVG
// charts. Every URL is relative, so the page works on any --listen address
// and behind a reverse proxy's path prefix. When connscope is unreachable it
// keeps the last picture, says so, and retries until connscope is back.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const RETRY_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const W = 520, H = 190, PAD_L = 52, PAD_R = 10, PAD_T = 8, PAD_B = 24;

const $ = (id) => document.getElementById(id);
let downSince = null;
// The history as the daemon holds it, kept up to date with only the newest
// points each tick (all 15 minutes are half a megabyte of JSON).
let history = [], historyMax = 900, sinceFull = 0, incrementalReads = 0;
const FULL_HISTORY_EVERY = 60; // ticks between full re-reads, to stay exact

// The newest points appended to history when they join up with it; otherwise
// (first tick, a gap, connscope restarted) the whole history again.
async function updateHistory(tickSeconds) {
  const last = history.length ? history[history.length - 1].time_unix_ms : null;
  if (last !== null && ++sinceFull < FULL_HISTORY_EVERY) {
    const recent = await getJSON("api/v1/history?seconds=" + Math.ceil(Math.max(5, 4 * tickSeconds)));
    if (recent.points.some((p) => p.time_unix_ms === last)) {
      history = history.concat(recent.points.filter((p) => p.time_unix_ms > last));
      incrementalReads++;
      historyMax = recent.points_max || historyMax;
      if (history.length > historyMax) history = history.slice(history.length - historyMax);
      return history;
    }
  }
  const all = await getJSON("api/v1/history");
  sinceFull = 0;
  historyMax = all.points_max || historyMax;
  history = all.points;
  return history;
}

function el(tag, attrs, text) {
  const ns = ["svg", "line", "polyline", "text", "g", "rect"].includes(tag) ? "http://www.w3.org/2000/svg" : null;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJSON(path) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(path, { signal: ctl.signal, cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return await r.json();
  } finally {
    clearTimeout(t);
  }
}

function fmtNum(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
  if (a >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(a >= 1 ? 1 : 2);
}

function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + (s % 60) + "s";
  return s + "s";
}

function fmtClock(ms) {
  return new Date(ms).toTimeString().slice(0, 8);
}

// A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least max.
function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

// One chart: series = [{name, values, dashed}], all as long as times.
function chart(id, title, unit, times, series) {
  const fig = el("figure", { class: "chart", "data-chart": id, "data-points": times.length });
  fig.appendChild(el("figcaption", {}, title));
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const pw = W - PAD_L - PAD_R, ph = H - PAD_T - PAD_B;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v > max) max = v;
  const ymax = niceMax(max);
  const t0 = times.length ? times[0] : 0, t1 = times.length ? times[times.length - 1] : 1;
  const span = Math.max(t1 - t0, 1);
  const x = (t) => PAD_L + (pw * (t - t0)) / span;
  const y = (v) => PAD_T + ph - (ph * v) / ymax;
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    svg.appendChild(el("line", { class: "grid", x1: PAD_L, x2: W - PAD_R, y1: y(v), y2: y(v) }));
    svg.appendChild(el("text", { x: PAD_L - 4, y: y(v) + 3, "text-anchor": "end" }, fmtNum(v)));
  }
  svg.appendChild(el("text", { x: 10, y: PAD_T + ph / 2, "text-anchor": "middle",
    transform: `rotate(-90 10 ${PAD_T + ph / 2})`, class: "unit" }, unit));
  svg.appendChild(el("line", { class: "axis", x1: PAD_L, x2: W - PAD_R, y1: PAD_T + ph, y2: PAD_T + ph }));
  for (let i = 0; i <= 4 && times.length; i++) {
    const t = t0 + (span * i) / 4;
    svg.appendChild(el("text", { x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" },
      fmtClock(t)));
  }
  const legend = el("div", { class: "legend" });
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    const pts = s.values.map((v, i) => x(times[i]).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
    svg.appendChild(el("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 1.6,
      "stroke-dasharray": s.dashed ? "5,3" : "none", "data-series": s.name, "data-points": s.values.length }));
    const item = el("span", {});
    item.appendChild(el("i", { style: `background:${color}` }));
    const last = s.values.length ? s.values[s.values.length - 1] : 0;
    item.appendChild(document.createTextNode(`${s.name} (now ${fmtNum(last)})`));
    legend.appendChild(item);
  });
  fig.appendChild(svg);
  fig.appendChild(legend);
  return fig;
}

// Listener labels seen in the history, newest point's first, at most four.
function listeners(points) {
  const seen = [];
  for (let i = points.length - 1; i >= 0 && seen.length < 4; i--)
    for (const l of points[i].listeners || []) if (!seen.includes(l.listener) && seen.length < 4) seen.push(l.listener);
  return seen;
}

function perListener(points, labels, fn, name, extra) {
  return labels.map((lab) => Object.assign({
    name: name + " " + lab,
    values: points.map((p) => {
      const l = (p.listeners || []).find((x) => x.listener === lab);
      return l ? fn(l, p) : 0;
    }),
  }, extra || {}));
}

const rate = (n, p) => (p.seconds > 0 ? n / p.seconds : 0);

function renderCharts(pts) {
  const times = pts.map((p) => p.time_unix_ms), labs = listeners(pts);
  const box = $("charts");
  const charts = [
    chart("accepts", "Accepts and listen drops per listener", "connections/s", times,
      perListener(pts, labs, (l, p) => rate(l.accepts, p), "accepts/s")
        .concat(perListener(pts, labs, (l, p) => rate(l.listen_drops, p), "drops/s"))),
    chart("queue", "Accept queue length vs its limit", "connections", times,
      perListener(pts, labs, (l) => l.accept_queue_length, "length")
        .concat(perListener(pts, labs, (l) => l.accept_queue_limit, "limit", { dashed: true }))),
    chart("fds", "Open fds vs the soft limit", "file descriptors", times, [
      { name: "open fds", values: pts.map((p) => p.open_fds) },
      { name: "soft limit", values: pts.map((p) => p.fd_soft_limit || 0), dashed: true },
    ]),
    chart("resets", "TCP resets per second by reason", "resets/s", times, [
      ["abort on close/data/linger", "abort"], ["no socket", "no_socket"], ["memory", "memory"], ["other", "other"],
    ].map(([name, k]) => ({ name: "sent: " + name,
      values: pts.map((p) => rate((p.resets_sent_by_reason || {})[k] || 0, p)) }))
      .concat([{ name: "received", values: pts.map((p) => rate(p.resets_received, p)), dashed: true }])),
    chart("open", "Connections open per listener", "connections", times,
      perListener(pts, labs, (l) => l.connections_open, "open")),
    chart("wait", "Accept wait (handshake done to accept())", "milliseconds", times,
      perListener(pts, labs, (l) => l.accept_wait_p50_seconds * 1e3, "p50")
        .concat(perListener(pts, labs, (l) => l.accept_wait_p99_seconds * 1e3, "p99", { dashed: true }))),
  ];
  box.replaceChildren(...charts);
  box.setAttribute("data-points", pts.length);
  box.setAttribute("data-incremental-reads", incrementalReads);
  box.setAttribute("data-last-ms", pts.length ? pts[pts.length - 1].time_unix_ms : 0);
  $("range").textContent = pts.length ? `${pts.length} points, ${fmtClock(times[0])} to ${fmtClock(times[times.length - 1])}` : "no points yet";
}

function firstSentence(text) {
  const m = /^(.*?[.!?])(\s|$)/.exec(text || "");
  return m ? m[1] : text || "";
}

function renderDiagnosis(d) {
  $("verdict").textContent = d.verdict;
  $("verdict").setAttribute("data-verdict", d.verdict);
  const top = d.causes[0];
  // the diagnosis' own one-sentence summary, else its top cause's first sentence
  $("verdict-sentence").textContent = d.summary || (top ? firstSentence(top.explanation) : "");
  $("verdict-box").setAttribute("data-severity", top ? top.severity : "");
  const ol = $("causes");
  ol.replaceChildren(...d.causes.slice(0, 3).map((c) => {
    const li = el("li", { "data-cause": c.cause });
    li.appendChild(el("strong", {}, c.cause));
    li.appendChild(el("span", { class: "sev" }, `${c.severity}, score ${c.score}`));
    const ev = Object.entries(c.evidence || {}).map(([k, v]) => `${k}=${v}`).join("  ");
    li.appendChild(el("div", { class: "ev" }, "evidence: " + ev));
    li.appendChild(el("div", {}, c.explanation));
    li.appendChild(el("div", { class: "fix" }, "fix: " + c.fix));
    return li;
  }));
}

function renderTarget(s) {
  const t = s.target;
  $("target").textContent = `PID ${t.pid} (${t.comm}) · ${t.processes} process${t.processes === 1 ? "" : "es"}` +
    ` · up ${fmtDuration(t.uptime_seconds || 0)} · kernel ${t.kernel || "?"} · watched for ${fmtDuration(s.uptime_seconds)}`;
}

function renderEvents(e) {
  const skip = new Set(["time_unix_ms", "kind", "pid"]);
  $("events").tBodies[0].replaceChildren(...e.events.map((ev) => {
    const tr = el("tr", { "data-kind": ev.kind });
    tr.appendChild(el("td", {}, fmtClock(ev.time_unix_ms)));
    tr.appendChild(el("td", {}, ev.kind));
    tr.appendChild(el("td", {}, ev.pid === undefined ? "—" : String(ev.pid)));
    tr.appendChild(el("td", { class: "details" },
      Object.entries(ev).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${v}`).join(" ")));
    return tr;
  }));
}

function setStatus(state, text) {
  const s = $("status");
  s.setAttribute("data-state", state);
  s.textContent = text;
  document.body.classList.toggle("stale", state === "down");
}

async function tick() {
  let next = RETRY_MS;
  try {
    const tickSeconds = history.length ? history[history.length - 1].seconds || 1 : 1;
    const [snap, diag, pts, evs] = await Promise.all([
      getJSON("api/v1/snapshot"), getJSON("api/v1/diagnosis"), updateHistory(tickSeconds),
      getJSON("api/v1/events?limit=50"),
    ]);
    renderTarget(snap);
    renderDiagnosis(diag);
    renderCharts(pts);
    renderEvents(evs);
    downSince = null;
    if (snap.target.up)
      setStatus("live", "live · updated " + fmtClock(snap.time_unix_ms));
    else
      setStatus("exited", `target PID ${snap.target.pid} (${snap.target.comm}) exited: showing its last numbers`);
    const last = pts.length ? pts[pts.length - 1].seconds : 1;
    next = Math.min(5000, Math.max(500, (last || 1) * 1000));
  } catch (err) {
    if (!downSince) downSince = Date.now();
    setStatus("down", `connscope not reachable since ${fmtClock(downSince)} (${err.message || err}): retrying every ${RETRY_MS / 1000} s`);
  }
  setTimeout(tick, next);
}

tick();
