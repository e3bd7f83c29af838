// Supervisor dashboard: every live call from WS /calls/live (snapshot, then coalesced updates).
import { el, fmtDuration, pageUrl, setChildren, sparkline, wsUrl } from "./common.js";
import { browserLanguage, onLanguage, startLanguage, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const RECONNECT_MAX_MS = 5000;
const HIGH_RISK = 0.5;

const calls = new Map(); // call_id -> {call, receivedAt}
const agents = new Map(); // tenant/agent_id -> exposure
const rows = new Map(); // call_id -> <tr>
const sort = { key: "agent", direction: 1 };
const connection = { state: "connecting", key: "conn.connecting", params: {} };
let attempts = 0;
let renderQueued = false;

// ---- the feed ----

function connect() {
  const socket = new WebSocket(wsUrl("/calls/live"));
  socket.onopen = () => {
    attempts = 0;
    setConnection("live", "conn.live");
  };
  socket.onmessage = (message) => {
    const update = JSON.parse(message.data);
    const now = performance.now();
    if (update.type === "snapshot") {
      calls.clear();
      agents.clear();
      for (const call of update.calls) calls.set(call.call_id, { call, receivedAt: now });
      for (const agent of update.agents) agents.set(agentKey(agent), agent);
    } else if (update.type === "call.update") {
      calls.set(update.call.call_id, { call: update.call, receivedAt: now });
    } else if (update.type === "call.removed") {
      calls.delete(update.call_id);
    } else if (update.type === "agent.update") {
      agents.set(agentKey(update.agent), update.agent);
    }
    scheduleRender();
  };
  socket.onclose = () => {
    const delay = Math.min(RECONNECT_MAX_MS, 250 * 2 ** attempts);
    attempts += 1;
    setConnection("reconnecting", "conn.retrying", { why: t("conn.lost"), s: Math.ceil(delay / 1000) });
    setTimeout(connect, delay); // the snapshot on reconnect brings the state back whole
  };
}

function agentKey(agent) {
  return `${agent.tenant ?? ""}/${agent.agent_id}`;
}

/** The connection line: its state and the key and params of its words (kept to redraw them). */
function setConnection(state, key, params = {}) {
  Object.assign(connection, { state, key, params });
  renderConnection();
}

function renderConnection() {
  $("conn").dataset.state = connection.state;
  $("conn").textContent = t(connection.key, connection.params);
}

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderCalls();
    renderAgents();
  });
}

// ---- live calls ----

function duration({ call, receivedAt }) {
  return call.t + (performance.now() - receivedAt) / 1000;
}

function sortValue(entry) {
  const { call } = entry;
  switch (sort.key) {
    case "t": return duration(entry);
    case "critical": return call.critical.length;
    case "agent": return call.agent.toLowerCase();
    case "call_id": return call.call_id.toLowerCase();
    default: return call[sort.key] ?? -Infinity;
  }
}

function matches({ call }) {
  const text = $("filter-text").value.trim().toLowerCase();
  if (text && !`${call.agent} ${call.agent_id} ${call.call_id}`.toLowerCase().includes(text)) return false;
  switch ($("filter-kind").value) {
    case "critical": return call.critical.length > 0;
    case "risk": return (call.abandon_risk ?? 0) >= HIGH_RISK;
    case "too_aggressive":
    case "too_passive": return call.style_band === $("filter-kind").value;
    case "hard": return call.hard.length > 0;
    default: return true;
  }
}

function renderCalls() {
  const visible = [...calls.values()].filter(matches).sort((a, b) => {
    const va = sortValue(a);
    const vb = sortValue(b);
    return (va < vb ? -1 : va > vb ? 1 : 0) * sort.direction || a.call.call_id.localeCompare(b.call.call_id);
  });
  const body = $("calls");
  const wanted = new Set(visible.map((entry) => entry.call.call_id));
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      row.remove();
      rows.delete(id);
    }
  }
  visible.forEach((entry, i) => {
    const row = rows.get(entry.call.call_id) || createRow(entry.call);
    fillRow(row, entry);
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  $("calls-empty").hidden = visible.length > 0;
  $("calls-empty").textContent = t(calls.size ? "dash.no_match" : "dash.no_calls");
  const count = visible.length === calls.size ? calls.size : t("dash.count_of", { shown: visible.length, total: calls.size });
  $("calls-count").textContent = `(${count})`;
}

function createRow(call) {
  // the call cell (the focusable link) is built once so updates never steal keyboard focus
  const link = el("a", { href: overlayUrl(call.call_id), text: call.call_id, class: "call-link" });
  const row = el("tr", { "data-call": call.call_id },
    el("td", { class: "agent-cell" }),
    el("td", {}, link, el("span", { class: "muted small", text: ` ${call.protocol}` })),
    el("td", { class: "duration num" }),
    el("td", { class: "stress-cell" }),
    el("td", { class: "style-cell" }),
    el("td", { class: "num critical-cell" }),
    el("td", { class: "num risk-cell" }));
  row.addEventListener("click", (event) => {
    if (!event.target.closest("a")) location.href = overlayUrl(call.call_id);
  });
  rows.set(call.call_id, row);
  return row;
}

function overlayUrl(callId) {
  return pageUrl("overlay.html", { call: callId });
}

function fillRow(row, entry) {
  const { call } = entry;
  const [agentCell, , durationCell, stressCell, styleCell, criticalCell, riskCell] = row.children;
  const stress = call.stress === null ? "–" : Math.round(call.stress);
  const risk = call.abandon_risk === null ? null : Math.round(call.abandon_risk * 100);
  const riskLevel = risk === null ? "none" : call.abandon_risk >= HIGH_RISK ? "high" : call.abandon_risk >= 0.3 ? "elevated" : "low";
  const criticalTitles = call.critical.map((w) => `${w.rule_id}: ${w.title}`).join("; ");
  row.dataset.band = call.style_band || "";
  row.querySelector(".call-link").setAttribute("aria-label", t("dash.open_call", { call: call.call_id, agent: call.agent }));
  setChildren(agentCell, el("span", { class: "agent-name", text: call.agent }),
    call.agent_id !== call.agent ? el("span", { class: "muted small", text: ` ${call.agent_id}` }) : null,
    call.hard.length ? el("span", { class: "chip hard", title: call.hard.join("; "), text: t("dash.hard_call") }) : null);
  durationCell.textContent = fmtDuration(duration(entry));
  setChildren(stressCell, call.stress_history.length ? sparkline(call.stress_history, { label: t("dash.stress_trend", { stress }) }) : null,
    el("span", { class: "num", text: ` ${stress}` }));
  styleCell.replaceChildren(el("span", { class: "chip", "data-band": call.style_band || "", text: call.style_band ? t(`style.${call.style_band}`) : "–" }));
  criticalCell.replaceChildren(call.critical.length
    ? el("span", { class: "badge critical", title: criticalTitles, "data-count": call.critical.length, text: String(call.critical.length) },
      el("span", { class: "sr-only", text: t("dash.open_critical", { titles: criticalTitles }) }))
    : el("span", { class: "muted", text: "0" }));
  riskCell.replaceChildren(el("span", { class: "risk", "data-level": riskLevel, text: risk === null ? "–" : `${risk}%` }));
}

// ---- agents ----

function renderAgents() {
  const list = [...agents.values()].sort((a, b) => b.attention.length - a.attention.length || a.agent.localeCompare(b.agent));
  $("agents").replaceChildren(...list.map((a) => el("tr", { "data-agent": a.agent_id },
    el("th", { scope: "row" }, a.agent, a.agent_id !== a.agent ? el("span", { class: "muted small", text: ` ${a.agent_id}` }) : null),
    el("td", { class: "num" }, t(a.live_calls ? "dash.yes" : "dash.no")),
    el("td", { class: "num" }, String(a.calls)),
    el("td", { class: "num" }, fmtDuration(a.handle_time_s)),
    el("td", { class: "num" }, String(a.hard_calls)),
    el("td", { class: "num" }, String(a.consecutive_hard_calls)),
    el("td", { class: "num" }, String(a.abusive_calls)),
    el("td", { class: "num" }, String(a.calls_without_break)),
    el("td", {}, a.attention.length ? el("span", { class: "chip attention", text: a.attention.join(", ") }) : el("span", { class: "muted", text: "–" })),
  )));
  $("agents-empty").hidden = list.length > 0;
}

// ---- controls ----

for (const th of document.querySelectorAll("#calls-table th[data-sort]")) {
  th.querySelector("button").addEventListener("click", () => {
    sort.direction = sort.key === th.dataset.sort ? -sort.direction : 1;
    sort.key = th.dataset.sort;
    for (const other of document.querySelectorAll("#calls-table th[data-sort]")) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", sort.direction > 0 ? "ascending" : "descending");
    renderCalls();
  });
}
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("filter-text").addEventListener("input", renderCalls);
$("filter-kind").addEventListener("change", renderCalls);
setInterval(() => {
  for (const [id, row] of rows) {
    const entry = calls.get(id);
    if (entry) row.querySelector(".duration").textContent = fmtDuration(duration(entry));
  }
}, 1000);

startLanguage(browserLanguage());
onLanguage(() => {
  renderConnection();
  renderCalls();
  renderAgents();
});
renderConnection();
renderCalls();
renderAgents();
connect();
