/// The live page served at `/`: one self-contained document (no external assets, since
/// sites are often offline) that polls `status` and `history` every second and plots
/// per-link throughput, RTT and loss.
enum LivePage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tunneld</title>
<style>
:root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #fff;
        --up: #15803d; --warn: #b45309; --down: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 18px; padding: 12px 20px; background: #111827; color: #e5e7eb; }
header h1 { margin: 0; font-size: 18px; color: #fff; }
header .info span { display: inline-block; margin-right: 14px; white-space: nowrap; }
header .info b { color: #fff; font-weight: 600; }
header #updated { margin-left: auto; color: #9ca3af; font-variant-numeric: tabular-nums; }
#banner { display: none; padding: 8px 20px; background: #fee2e2; color: var(--down); border-bottom: 1px solid #fca5a5; font-weight: 600; }
#banner.show { display: block; }
main { padding: 14px 20px 30px; max-width: 1500px; margin: 0 auto; }
.card, section.session { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
.card h2, section.session h2 { margin: 0 0 2px; font-size: 16px; }
.meta { color: var(--muted); }
.meta span { display: inline-block; margin-right: 16px; white-space: nowrap; }
.meta b { color: var(--fg); font-weight: 600; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); vertical-align: 2px; margin-left: 6px; }
.badge.up { background: var(--up); } .badge.handshaking { background: var(--warn); }
table { border-collapse: collapse; width: 100%; margin: 10px 0 4px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td.num, th.num { text-align: right; }
th:last-child, td:last-child { padding-right: 0; }
td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 130px; }
.addr { color: var(--muted); }
.scroll { overflow-x: auto; }
.st { font-weight: 700; }
.st-up { color: var(--up); } .st-lossy, .st-slow { color: var(--warn); } .st-down { color: var(--down); }
.tag { white-space: nowrap; font-size: 11px; color: var(--muted); border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; margin-left: 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: 0; }
.legend { margin: 8px 0 2px; color: var(--muted); }
.legend > span { display: inline-block; margin-right: 16px; white-space: nowrap; }
.legend .key { display: inline-block; width: 22px; border-top: 2px solid var(--muted); vertical-align: 4px; margin-right: 5px; }
.legend .key.dash { border-top-style: dashed; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 12px; margin-top: 6px; }
.chart h3 { margin: 0 0 2px; font-size: 13px; font-weight: 600; color: var(--muted); }
.chart canvas { display: block; width: 100%; height: 200px; }
.empty { color: var(--muted); padding: 20px 0; }
</style>
</head>
<body>
<header><h1>tunneld</h1><div class="info" id="daemon"></div><span id="updated">updated never</span></header>
<div id="banner" role="alert"></div>
<main>
<div id="sessions"><div class="empty">loading…</div></div>
<div class="card" id="links-card"><h2>UDP links</h2><table><thead><tr><th>name</th><th>local → remote</th>
<th class="num">tx</th><th class="num">rx</th></tr></thead><tbody id="links"></tbody></table></div>
</main>
<script>
"use strict";
const PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#ca8a04", "#4b5563"];
let curStatus = null, curHistory = null, rendered = false;
// The daemon's clock at the time of the status, so ages do not depend on this machine's clock.
const daemonNow = () => { const d = curStatus?.daemon; return d?.started != null ? d.started + d.uptime_seconds : Date.now() / 1000; };
const views = new Map();   // session name -> {section, ...}

// DOM helper: strings become text nodes, so JSON data never reaches innerHTML.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
}
const $ = id => document.getElementById(id);
const pad = n => String(n).padStart(2, "0");
function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; n = Number(n) || 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return i ? n.toFixed(1) + " " + u[i] : n + " B";
}
function duration(s) {
  s = Math.max(0, Math.floor(s)); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), d = Math.floor(h / 24);
  if (d > 0) return `${d}d ${h % 24}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s % 60}s` : `${s % 60}s`;
}
function age(s) {
  if (s == null) return "–";
  return s < 1 ? Math.round(s * 1000) + " ms" : s < 60 ? s.toFixed(1) + " s" : duration(s);
}
const num = (v, d) => v == null ? "–" : Number(v).toFixed(d);
function rate(bps, unit) {  // bits/s with a unit chosen from `unit` (the axis maximum) or from itself
  const ref = unit ?? bps;
  const [div, name] = ref >= 1e9 ? [1e9, "Gbit/s"] : ref >= 1e6 ? [1e6, "Mbit/s"] : ref >= 1e3 ? [1e3, "kbit/s"] : [1, "bit/s"];
  const v = bps / div;
  return (v === 0 ? "0" : Number.isInteger(+v.toFixed(2)) ? v.toFixed(0) : v.toFixed(1)) + " " + name;
}
function trimNum(v) { return Number.isInteger(v) ? String(v) : (+v.toFixed(2)).toString(); }

// One colour per (session, link), kept while the page is open.
const colours = new Map();
function colour(session, link) {
  let m = colours.get(session);
  if (!m) colours.set(session, m = new Map());
  if (!m.has(link)) m.set(link, PALETTE[m.size % PALETTE.length]);
  return m.get(link);
}

function renderDaemon(d, dev) {
  const box = $("daemon"); box.textContent = "";
  const item = (label, value) => box.append(el("span", null, label + " ", el("b", null, value)));
  item("site", d.site); item("profile", d.profile); item("version", d.version); item("pid", d.pid);
  item("up", duration(d.uptime_seconds));
  if (d.last_reload != null) item("last reload", duration(daemonNow() - d.last_reload) + " ago" + (d.reloads ? ` (${d.reloads}×)` : ""));
  if (dev) item("device", `${dev.name} (${dev.kind}, mtu ${dev.mtu})`);
}

function sessionView(name) {
  let v = views.get(name);
  if (v) return v;
  v = { title: el("h2"), meta: el("div", { class: "meta" }), reorder: el("div", { class: "meta" }),
        tbody: el("tbody"), legend: el("div", { class: "legend" }), charts: {} };
  const head = el("tr", null, ...["link", "state", "local link → remote", "srtt ± rttvar", "loss", "rate", "tx", "rx", "disconnects", "last packet"]
    .map((h, i) => el("th", { class: i >= 3 ? "num" : null }, h)));
  v.wrap = el("div", { class: "scroll" }, el("table", null, el("thead", null, head), v.tbody));
  const charts = el("div", { class: "charts" });
  for (const [key, title] of [["tput", "Throughput (tx solid, rx dashed)"], ["rtt", "Smoothed RTT"], ["loss", "Loss"]]) {
    v.charts[key] = el("canvas");
    charts.append(el("div", { class: "chart" }, el("h3", null, title), v.charts[key]));
  }
  v.section = el("section", { class: "session", "data-session": name }, v.title, v.meta, v.reorder, v.wrap, v.legend, charts);
  views.set(name, v);
  return v;
}

function renderSession(s, linksByName) {
  const v = sessionView(s.name);
  v.title.textContent = "";
  v.title.append("session " + s.name, el("span", { class: "badge " + (s.state === "up" ? "up" : "handshaking") }, s.state));
  const c = s.counters || {};
  v.meta.textContent = "";
  const item = (label, value) => v.meta.append(el("span", null, label + " ", el("b", null, value)));
  item("peer", s.peer ?? "not yet known"); item("data plane", s.data_plane);
  item("for", duration(daemonNow() - s.since));
  item("tx", `${bytes(c.tx_bytes)} (${c.tx_packets ?? 0} pkts)`); item("rx", `${bytes(c.rx_bytes)} (${c.rx_packets ?? 0} pkts)`);
  const drops = Object.entries(c.drops || {});
  if (drops.length) item("dropped", drops.map(([k, n]) => `${k}=${n}`).join(" "));
  const r = s.details?.reorder;
  v.reorder.textContent = r ? `reorder: ${r.in_order} in order, ${r.held} held (${r.holding} now, wait ${num(r.hold_ms, 1)} ms), ` +
    `released ${r.released_by_timeout} by timeout, ${r.released_as_lost} as lost, ${r.overflow} by overflow; ${r.late} late, ${r.duplicate} duplicate` : "";
  const paths = s.details?.paths || [];
  v.wrap.style.display = paths.length ? "" : "none";
  v.tbody.replaceChildren(...paths.map(p => {
    const local = linksByName.get(p.link)?.local;
    const where = [p.link, local ? el("span", { class: "addr" }, ` (${local})`) : null, " → " + (p.remote ?? "?")];
    return el("tr", { class: "link", "data-session": s.name, "data-link": p.name },
      el("td", { class: "wrap" }, el("span", { class: "swatch", style: "background:" + colour(s.name, p.name) }), p.name,
         p.fallback_only ? el("span", { class: "tag" }, "fallback") : null),
      el("td", { class: "st st-" + String(p.state).replace(/[^a-z]/g, "") }, p.state),
      el("td", { class: "wrap" }, ...where),
      el("td", { class: "num" }, p.srtt_ms == null ? "–" : `${num(p.srtt_ms, 1)} ± ${num(p.rttvar_ms ?? 0, 1)} ms`),
      el("td", { class: "num" }, num(p.loss_percent, 1) + " %"),
      el("td", { class: "num" }, num(p.rate_mbps, 1) + " Mbit/s"),
      el("td", { class: "num" }, bytes(p.tx_bytes)), el("td", { class: "num" }, bytes(p.rx_bytes)),
      el("td", { class: "num" }, p.disconnects ?? 0), el("td", { class: "num" }, age(p.last_packet_seconds)));
  }));
  return v;
}

// Lines for one session's history: label, colour and [t, tx, rx, srtt, loss] samples.
function sessionLines(s) {
  const series = (curHistory?.series || []).filter(x => x.session === s.name);
  return series.map(x => {
    const label = x.link === "" || x.link == null ? s.name : x.link;
    return { label, colour: colour(s.name, label), samples: x.samples || [] };
  });
}

function niceStep(max, ticks) {
  const raw = max / ticks, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

// Draws one chart. series: [{colour, dash, points: [[t, v|null]]}]; fmt(v, axisMax) labels the Y axis.
function drawChart(canvas, series, fmt, floorMax, now, span) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, h);
  g.font = "11px system-ui, sans-serif";
  let max = 0, any = false;
  for (const s of series) for (const [, v] of s.points) if (v != null && isFinite(v)) { any = true; max = Math.max(max, v); }
  const step = niceStep(Math.max(max, floorMax), 4), top = Math.max(step, Math.ceil(Math.max(max, floorMax) / step - 1e-9) * step);
  let labelW = 0;
  for (let y = 0; y <= top + step / 2; y += step) labelW = Math.max(labelW, g.measureText(fmt(y, top)).width);
  const L = labelW + 10, R = 8, T = 8, B = 20, pw = w - L - R, ph = h - T - B;
  const X = t => L + pw * (1 - (now - t) / span), Y = v => T + ph * (1 - v / top);
  g.textBaseline = "middle"; g.textAlign = "right"; g.lineWidth = 1;
  for (let y = 0; y <= top + step / 2; y += step) {
    g.strokeStyle = y === 0 ? "#9ca3af" : "#eceef1"; g.beginPath();
    g.moveTo(L, Math.round(Y(y)) + 0.5); g.lineTo(L + pw, Math.round(Y(y)) + 0.5); g.stroke();
    g.fillStyle = "#6b7280"; g.fillText(fmt(y, top), L - 6, Y(y));
  }
  const xstep = [10, 15, 30, 60, 120, 300, 600, 1800, 3600].find(s => span / s <= Math.min(6, pw / 60)) || 3600;
  g.textBaseline = "top";
  for (let a = 0; a <= span + 1e-6; a += xstep) {
    const x = X(now - a);
    g.strokeStyle = "#eceef1"; g.beginPath(); g.moveTo(Math.round(x) + 0.5, T); g.lineTo(Math.round(x) + 0.5, T + ph); g.stroke();
    g.fillStyle = "#6b7280"; g.textAlign = a === 0 ? "right" : a >= span - 1e-6 ? "left" : "center";
    g.fillText(a === 0 ? "now" : xstep >= 60 ? `-${trimNum(a / 60)} min` : `-${a} s`, x, T + ph + 5);
  }
  if (!any) {
    g.fillStyle = "#9ca3af"; g.font = "13px system-ui, sans-serif"; g.textAlign = "center"; g.textBaseline = "middle";
    g.fillText("no data", L + pw / 2, T + ph / 2); return;
  }
  g.save(); g.beginPath(); g.rect(L, T - 1, pw, ph + 2); g.clip();
  g.lineWidth = 1.6; g.lineJoin = "round";
  for (const s of series) {
    g.strokeStyle = s.colour; g.setLineDash(s.dash ? [5, 3] : []); g.beginPath();
    let pen = false;
    for (const [t, v] of s.points) {
      if (v == null || !isFinite(v)) { pen = false; continue; }
      if (pen) g.lineTo(X(t), Y(v)); else g.moveTo(X(t), Y(v));
      pen = true;
    }
    g.stroke();
  }
  g.restore();
}

function drawSession(v, s) {
  const lines = sessionLines(s), now = curHistory?.taken_at ?? daemonNow();
  const span = Math.max(60, 300 * (curHistory?.interval_seconds || 1));
  const pts = (l, i) => l.samples.map(x => [x[0], x[i]]);
  drawChart(v.charts.tput, lines.flatMap(l => [{ colour: l.colour, points: pts(l, 1) }, { colour: l.colour, dash: true, points: pts(l, 2) }]),
            (y, top) => rate(y, top), 1e6, now, span);
  drawChart(v.charts.rtt, lines.map(l => ({ colour: l.colour, points: pts(l, 3) })), y => trimNum(y) + " ms", 10, now, span);
  drawChart(v.charts.loss, lines.map(l => ({ colour: l.colour, points: pts(l, 4) })), y => trimNum(y) + " %", 5, now, span);
}

function renderLegend(v, s) {
  const names = [...new Set([...(s.details?.paths || []).map(p => p.name), ...sessionLines(s).map(l => l.label)])];
  v.legend.replaceChildren(...names.map(n => el("span", null, el("span", { class: "swatch", style: "background:" + colour(s.name, n) }), n)),
    el("span", null, el("span", { class: "key" }), "tx"), el("span", null, el("span", { class: "key dash" }), "rx"));
}

function render() {
  if (!curStatus) return;
  renderDaemon(curStatus.daemon || {}, curStatus.device);
  const links = curStatus.links || [], byName = new Map(links.map(l => [l.name, l]));
  const box = $("sessions"), seen = new Set(), order = [];
  for (const s of curStatus.sessions || []) {
    seen.add(s.name);
    const v = renderSession(s, byName);
    renderLegend(v, s);
    order.push([v, s]);
  }
  for (const name of [...views.keys()]) if (!seen.has(name)) views.delete(name);
  box.replaceChildren(...(order.length ? order.map(([v]) => v.section) : [el("div", { class: "empty" }, "no sessions")]));
  for (const [v, s] of order) drawSession(v, s);
  $("links").replaceChildren(...links.map(l => {
    const c = l.counters || {};
    return el("tr", null, el("td", null, l.name), el("td", null, `${l.local ?? "?"} → ${l.remote ?? "?"}`),
      el("td", { class: "num" }, bytes(c.tx_bytes)), el("td", { class: "num" }, bytes(c.rx_bytes)));
  }));
  $("links-card").style.display = links.length ? "" : "none";
  if (!rendered) { rendered = true; document.body.dataset.rendered = "1"; }
}

async function get(url) {
  const ctl = new AbortController(), timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const r = await fetch(url, { cache: "no-store", signal: ctl.signal });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return await r.json();
  } catch (e) {
    throw new Error(e.name === "AbortError" ? `${url}: timed out` : e.message || String(e));
  } finally { clearTimeout(timer); }
}

async function poll() {
  try {
    const [s, h] = await Promise.all([get("status"), get("history")]);
    curStatus = s; curHistory = h;
    $("banner").classList.remove("show");
    const d = new Date();
    $("updated").textContent = `updated ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    render();
  } catch (e) {
    const b = $("banner");
    b.textContent = "cannot reach tunneld: " + e.message;
    b.classList.add("show");
  }
  setTimeout(poll, 1000);
}

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (curStatus) for (const s of curStatus.sessions || []) { const v = views.get(s.name); if (v) drawSession(v, s); } }, 100);
});
poll();
</script>
</body>
</html>
"""#
}
