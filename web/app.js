// Squadron's dashboard: the fleet at a glance and one page per service, live from the control
// API (docs/control-api.md). No build step, no dependencies: plain DOM and canvas.
//   - the registry's watch stream (Server-Sent Events) triggers a re-read of /api/v1/fleet;
//   - /api/v1/metrics is read every second for the charts (the gateway's traffic);
//   - actions POST with the fleet's token, asked once and kept for the tab (sessionStorage);
//   - events, history and logs need the token too (the fleet's summary does not): they are
//     read once the tab has it, and until then a button offers to enter it.
"use strict";

const state = {
  fleet: null,       // GET /api/v1/fleet
  metrics: {},       // service -> [sample...] (oldest first)
  events: [],        // the last events, oldest first
  eventsRevision: 0,
  reachable: true,
  detail: null,      // the service page's GET /api/v1/services/{name}
  history: [],       // its revisions
  logs: "",
};

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ---- the control API --------------------------------------------------------------------

function setReachable(ok) {
  if (state.reachable === ok) return;
  state.reachable = ok;
  $("#banner").hidden = ok;
  $("#live").classList.toggle("off", !ok);
  $("#live").textContent = ok ? "live" : "offline";
}

function authHeaders() {
  const t = token();
  return t ? { "Authorization": "Bearer " + t } : {};
}

async function getJSON(path) {
  try {
    const r = await fetch(path, { cache: "no-store", headers: authHeaders() });
    setReachable(true);
    if (r.status === 401) sessionStorage.removeItem("squadron-token");
    if (!r.ok) return null;
    return await r.json();
  } catch (e) {
    setReachable(false);
    return null;
  }
}

function token() { return sessionStorage.getItem("squadron-token"); }

function askToken() {
  return new Promise((resolve) => {
    const dialog = $("#token-dialog");
    const input = $("#token-input");
    input.value = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "ok" && input.value.trim()) {
        sessionStorage.setItem("squadron-token", input.value.trim());
        resolve(true);
      } else {
        resolve(false);
      }
    };
    dialog.showModal();
    input.focus();
  });
}

// POSTs with the token (asked for when missing or refused); returns [ok, message].
async function act(path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (!token() && !(await askToken())) return [false, "no token: nothing was done"];
    let r;
    try {
      r = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token() },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      setReachable(false);
      return [false, "the control plane is unreachable"];
    }
    if (r.status === 401) {
      sessionStorage.removeItem("squadron-token");
      continue;  // ask again
    }
    let doc = {};
    try { doc = await r.json(); } catch (e) { /* an empty answer */ }
    if (!r.ok) return [false, doc.detail || ("answered " + r.status)];
    return [true, "done"];
  }
  return [false, "the token was refused"];
}

// ---- live updates -----------------------------------------------------------------------

let refreshQueued = false;
function scheduleRefresh() {
  if (refreshQueued) return;
  refreshQueued = true;
  setTimeout(async () => { refreshQueued = false; await refresh(); }, 100);
}

async function refresh() {
  const fleet = await getJSON("/api/v1/fleet");
  if (fleet) state.fleet = fleet;
  const name = serviceInView();
  if (name) {
    const [detail, history] = await Promise.all([
      getJSON("/api/v1/services/" + encodeURIComponent(name)),
      token() ? getJSON("/api/v1/services/" + encodeURIComponent(name) + "/history") : null,
    ]);
    state.detail = detail;
    state.history = token() ? history || [] : [];
  }
  render();
}

function watch() {
  const source = new EventSource("/api/v1/watch?since=0");
  source.addEventListener("snapshot", () => { setReachable(true); scheduleRefresh(); });
  source.onerror = () => {
    // The browser reconnects by itself; meanwhile say so (the fleet may be down).
    setReachable(false);
  };
}

async function pollMetrics() {
  const m = await getJSON("/api/v1/metrics?history=180");
  if (m && m.services) {
    for (const [name, s] of Object.entries(m.services)) state.metrics[name] = s.history || [];
  }
  drawCharts();
}

async function pollEvents() {
  for (;;) {
    if (!token()) {  // events need the token: wait for the tab to have it
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    const e = await getJSON("/api/v1/events?since=" + state.eventsRevision + "&wait=25s");
    if (e && Array.isArray(e.events)) {
      state.eventsRevision = e.revision;
      state.events.push(...e.events);
      if (state.events.length > 1000) state.events.splice(0, state.events.length - 1000);
      if (e.events.length) renderEvents();
    } else {
      await new Promise((r) => setTimeout(r, 1000));  // unreachable: try again in a second
    }
  }
}

async function pollLogs() {
  const name = serviceInView();
  if (name && token()) {
    try {
      const r = await fetch("/api/v1/logs?service=" + encodeURIComponent(name) + "&tail=40",
                            { cache: "no-store", headers: authHeaders() });
      if (r.ok) state.logs = await r.text();
      if (r.status === 401) sessionStorage.removeItem("squadron-token");
    } catch (e) { /* the banner says it */ }
    const pre = $("#logs");
    if (pre) {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = !token() ? "(the output needs the fleet's token: use Enter token above)"
                                 : state.logs || "(no output yet)";
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
  }
  setTimeout(pollLogs, 2000);
}

// ---- rendering --------------------------------------------------------------------------

function serviceInView() {
  const m = location.hash.match(/^#\/service\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

function latest(name) {
  const h = state.metrics[name];
  return h && h.length ? h[h.length - 1] : null;
}

// "31 MiB", "1.5 GiB" (as `squadron ps` writes them).
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 || n >= 10 || Number.isInteger(n) ? Math.round(n) : n.toFixed(1)) + " " + units[u];
}

// An instance's memory: what it holds, of its limit if it has one.
function memoryText(i) {
  if (i.rss_bytes == null) return "–";
  return bytes(i.rss_bytes) + (i.memory_limit_bytes != null ? " / " + bytes(i.memory_limit_bytes) : "");
}

function fmt(v, digits = 1) {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits);
}

function instancesPill(s) {
  const cls = s.ready >= s.desired && s.desired > 0 ? "ok" : s.ready === 0 && s.desired > 0 ? "bad" : "warn";
  return el("span", { class: "pill " + cls, "data-ready": s.ready, "data-desired": s.desired },
            `${s.ready}/${s.desired}`);
}

function autoscaleText(s) {
  if (!s.autoscale) return "fixed";
  const a = s.autoscale;
  return `${a.metric} ${fmt(a.value, 1)}/${a.target} · ${a.rule}${a.panicking ? " (panic)" : ""}`;
}

function scaleControl(s, messageEl) {
  const input = el("input", { type: "number", min: 0, max: 1000, value: s.desired,
                              "aria-label": "replicas of " + s.name, "data-scale": s.name });
  const button = el("button", {
    "data-action": "scale", "data-service": s.name,
    onclick: async () => {
      const n = parseInt(input.value, 10);
      if (!(n >= 0)) { show(messageEl, false, "replicas must be 0 or more"); return; }
      const [ok, message] = await act(`/api/v1/services/${encodeURIComponent(s.name)}/scale`,
                                      { replicas: n });
      show(messageEl, ok, ok ? `scaling to ${n}` : message);
      scheduleRefresh();
    },
  }, "Scale");
  return [input, button];
}

function actionButton(label, action, s, path, messageEl, body) {
  return el("button", {
    "data-action": action, "data-service": s.name,
    onclick: async () => {
      const [ok, message] = await act(path, body ? body() : {});
      show(messageEl, ok, ok ? `${label.toLowerCase()}: accepted` : message);
      scheduleRefresh();
    },
  }, label);
}

// The outcome of the last action per service, shown beside its buttons; kept across the
// re-renders that live updates cause, for 15 s.
const messages = new Map();

function messageFor(service) {
  const m = messages.get(service);
  const e = el("span", { class: "message", "data-message": service });
  if (m && Date.now() - m.at < 15000) {
    e.textContent = m.text;
    e.classList.toggle("bad", !m.ok);
  }
  return e;
}

function show(messageEl, ok, text) {
  const service = messageEl.getAttribute("data-message");
  if (service) messages.set(service, { ok, text, at: Date.now() });
  messageEl.textContent = text;
  messageEl.classList.toggle("bad", !ok);
}

function render() {
  const f = state.fleet;
  if (!f) return;
  $("#fleet-name").textContent = f.name;
  const ready = f.services.reduce((n, s) => n + s.ready, 0);
  const desired = f.services.reduce((n, s) => n + s.desired, 0);
  $("#summary").textContent = `${f.services.length} services · ${ready}/${desired} instances ready`;
  const name = serviceInView();
  if (name) renderService(name); else renderFleet();
  drawCharts();
}

function renderFleet() {
  const f = state.fleet;
  const rows = f.services.map((s) => {
    const t = s.traffic || latest(s.name) || {};
    const message = messageFor(s.name);
    return el("tr", { "data-service": s.name },
      el("td", {}, el("a", { href: "#/service/" + encodeURIComponent(s.name) }, s.name)),
      el("td", {}, instancesPill(s)),
      el("td", { class: "num" }, s.revision ?? "–", s.rolling_out ? el("span", { class: "pill warn" }, " rolling") : null),
      el("td", { class: "num" }, fmt(t.rps)),
      el("td", { class: "num" }, fmt(t.p50_ms, 2)),
      el("td", { class: "num" }, fmt(t.p99_ms, 2)),
      el("td", { class: "num" }, t.error_rate === undefined ? "–" : fmt(t.error_rate * 100, 2) + "%"),
      el("td", {}, el("canvas", { class: "spark", "data-spark": s.name, width: 140, height: 28 })),
      el("td", { class: "muted" }, autoscaleText(s)),
      el("td", {}, el("div", { class: "actions" }, ...(s.name === "gateway" ? [] : scaleControl(s, message)),
        actionButton("Restart", "restart", s, `/api/v1/services/${encodeURIComponent(s.name)}/restart`, message),
        message)));
  });
  const table = el("table", { id: "services" },
    el("thead", {}, el("tr", {},
      el("th", {}, "Service"), el("th", {}, "Ready"), el("th", { class: "num" }, "Revision"),
      el("th", { class: "num" }, "req/s"), el("th", { class: "num" }, "p50 ms"),
      el("th", { class: "num" }, "p99 ms"), el("th", { class: "num" }, "Errors"),
      el("th", {}, "Requests/s, last 3 min"), el("th", {}, "Autoscaler"), el("th", {}, "Actions"))),
    el("tbody", {}, rows));
  keepFocus(() => {
    $("#view").replaceChildren(table, ...(f.hosts ? [hostsSection(f.hosts)] : []),
      el("section", {}, el("h2", {}, "Recent events"), eventsTable(null)));
  });
}

// A cluster's hosts (the fleet's "hosts"; absent on one machine): up or lost, what runs there.
function hostsSection(hosts) {
  const rows = hosts.map((h) => {
    const lost = h.state !== "up";
    const since = lost && h.lost_at_ms ? ` ${Math.max(0, Math.round((Date.now() - h.lost_at_ms) / 1000))} s ago` : "";
    return el("tr", { "data-host": h.name, "data-state": h.state },
      el("td", {}, h.name),
      el("td", { class: "muted" }, h.address),
      el("td", {}, el("span", { class: "pill " + (lost ? "bad" : "ok") }, lost ? "lost" + since : "up")),
      el("td", { class: "num", "data-instances": h.instances }, String(h.instances)),
      el("td", { class: "num" }, h.memory_requested_bytes ? bytes(h.memory_requested_bytes) + " / " + bytes(h.memory_bytes) : bytes(h.memory_bytes)),
      el("td", { class: "num" }, String(h.cores)),
      el("td", { class: "muted" }, Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "–"));
  });
  return el("section", {}, el("h2", {}, "Hosts"),
    el("table", { id: "hosts" },
      el("thead", {}, el("tr", {}, el("th", {}, "Host"), el("th", {}, "Address"), el("th", {}, "State"),
        el("th", { class: "num" }, "Instances"), el("th", { class: "num" }, "Memory (requested / host)"),
        el("th", { class: "num" }, "Cores"), el("th", {}, "Labels"))),
      el("tbody", {}, rows)));
}

function renderService(name) {
  const d = state.detail;
  if (!d || d.name !== name) {
    $("#view").replaceChildren(el("p", { class: "muted" }, `Loading ${name}…`));
    return;
  }
  const message = messageFor(name);
  const envInput = el("input", { placeholder: "NAME=value", "aria-label": "environment change", id: "deploy-env" });
  const base = `/api/v1/services/${encodeURIComponent(name)}`;
  const clustered = (d.instance_list || []).some((i) => i.node);  // a cluster: where each runs
  const instances = (d.instance_list || []).map((i) => el("tr", { "data-instance": i.id },
    el("td", {}, i.id), el("td", { class: "state-" + i.state }, i.state),
    ...(clustered ? [el("td", { "data-node": i.node || "" }, i.node || "–")] : []),
    el("td", { class: "num" }, i.pid), el("td", { class: "num" }, i.port),
    el("td", { class: "num" }, i.restarts), el("td", { class: "num" }, i.uptime_s + " s"),
    el("td", { class: "num", title: i.oom_kills ? `${i.oom_kills} OOM kills` : "" }, memoryText(i)),
    el("td", { class: "num", title: i.cpu_limit != null ? `limit ${i.cpu_limit} cores` + (i.cpus != null ? `, on CPU ${i.cpus}` : "") : "" },
      i.cpu_percent != null ? i.cpu_percent.toFixed(1) + " %" : "–"),
    el("td", { class: "num" }, i.revision), el("td", { class: "muted" }, i.last_exit || "")));
  const history = state.history.slice().reverse().map((r) => el("tr", {},
    el("td", { class: "num" }, r.revision), el("td", {}, r.hash),
    el("td", {}, new Date(r.at_ms).toLocaleString()),
    el("td", {}, r.current ? el("span", { class: "pill ok" }, "current") : r.failed ? el("span", { class: "pill bad" }, "failed") : ""),
    el("td", { class: "muted" }, r.cause)));
  keepFocus(() => {
    $("#view").replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "← the fleet")),
      el("h1", {}, name, " ", instancesPill(d), " ",
         el("span", { class: "muted" }, `revision ${d.revision ?? "–"}`),
         d.rolling_out ? el("span", { class: "pill warn" }, " rolling out") : null,
         d.restarting ? el("span", { class: "pill warn" }, " restarting") : null),
      el("div", { class: "actions" }, ...(d.name === "gateway" ? [] : scaleControl(d, message)),
        actionButton("Restart", "restart", d, base + "/restart", message),
        envInput,
        actionButton("Deploy", "deploy", d, base + "/deploy", message, () => {
          const kv = envInput.value.trim();
          const eq = kv.indexOf("=");
          return eq > 0 ? { env: { [kv.slice(0, eq)]: kv.slice(eq + 1) || null } } : {};
        }),
        actionButton("Roll back", "rollback", d, base + "/rollback", message), message),
      el("div", { class: "muted" }, "Autoscaler: ", autoscaleText(d),
         d.autoscale && d.autoscale.reason ? " — " + d.autoscale.reason : ""),
      el("div", { class: "charts" },
        el("div", {}, el("h3", {}, "Requests/s"), el("canvas", { class: "chart", "data-chart": "rps", width: 400, height: 120 })),
        el("div", {}, el("h3", {}, "p99 latency, ms"), el("canvas", { class: "chart", "data-chart": "p99_ms", width: 400, height: 120 })),
        el("div", {}, el("h3", {}, "Errors, %"), el("canvas", { class: "chart", "data-chart": "error_rate", width: 400, height: 120 }))),
      el("section", {}, el("h2", {}, "Instances"), el("table", { id: "instances" },
        el("thead", {}, el("tr", {}, ...["Instance", "State", ...(clustered ? ["Host"] : []), "PID", "Port", "Restarts", "Uptime", "Memory", "CPU", "Revision", "Last exit"]
          .map((h) => el("th", {}, h)))), el("tbody", {}, instances))),
      el("section", {}, el("h2", {}, "Revisions"), el("table", { id: "history" }, el("tbody", {}, history))),
      el("section", {}, el("h2", {}, "Events"), eventsTable(name)),
      el("section", {}, el("h2", {}, "Logs (live tail)"), el("pre", { class: "logs", id: "logs" }, state.logs || "")));
  });
}

// Re-rendering replaces the DOM; keep the user's typing where it was.
function keepFocus(renderFn) {
  const active = document.activeElement;
  const key = active && (active.getAttribute("data-scale") || active.id);
  const value = active && active.value;
  renderFn();
  if (!key) return;
  const again = document.querySelector(`[data-scale="${CSS.escape(key)}"]`) || document.getElementById(key);
  if (again) { again.value = value; again.focus(); }
}

function eventsTable(service) {
  if (!token()) {
    return el("div", { class: "events", id: "events" },
      el("p", { class: "muted" }, "Events, history and output need the fleet's token (in .squadron/token beside the manifest). "),
      el("button", { "data-action": "token", onclick: async () => { if (await askToken()) scheduleRefresh(); } }, "Enter token"));
  }
  const list = state.events.filter((e) => !service || e.service === service).slice(-50).reverse();
  return el("table", { class: "events", id: "events" }, el("tbody", {}, list.map((e) => el("tr", {},
    el("td", {}, new Date(e.at_ms).toLocaleTimeString()),
    el("td", {}, e.instance || e.service || "fleet"),
    el("td", {}, e.message)))));
}

function renderEvents() {
  const table = $("#events");
  if (table) table.replaceWith(eventsTable(serviceInView()));
}

// ---- charts -----------------------------------------------------------------------------

function series(name, key) {
  return (state.metrics[name] || []).map((s) => (key === "error_rate" ? s[key] * 100 : s[key]) || 0);
}

function plot(canvas, values, color) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const max = Math.max(...values, 1e-9);
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (w - 2) + 1;
    const y = h - 2 - (v / max) * (h - 6);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#8a909c";
  ctx.font = "10px system-ui";
  ctx.fillText(max >= 100 ? max.toFixed(0) : max.toFixed(2), 2, 10);
}

function drawCharts() {
  document.querySelectorAll("canvas[data-spark]").forEach((c) =>
    plot(c, series(c.getAttribute("data-spark"), "rps"), "#58a6ff"));
  const name = serviceInView();
  if (!name) return;
  const colors = { rps: "#58a6ff", p99_ms: "#d29922", error_rate: "#f85149" };
  document.querySelectorAll("canvas[data-chart]").forEach((c) => {
    const key = c.getAttribute("data-chart");
    plot(c, series(name, key), colors[key]);
  });
}

// ---- start ------------------------------------------------------------------------------

window.addEventListener("hashchange", () => { state.detail = null; state.logs = ""; refresh(); });
refresh();
watch();
pollMetrics();
setInterval(pollMetrics, 1000);
setInterval(scheduleRefresh, 5000);  // uptimes and traffic columns move without registry changes
pollEvents();
pollLogs();
