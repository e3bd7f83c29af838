// Agent overlay: one call's live events from WS /calls/{id}/events, resumed by sequence number.
import { STYLE_LABELS, apiFetch, el, fmtClock, fmtDuration, pageUrl, param, setChildren, sparkline, wsUrl } from "./common.js";

const $ = (id) => document.getElementById(id);
const SEVERITY_RANK = { critical: 3, warning: 2, info: 1 };
const SPEAKER = { agent: "Agent", debtor: "Debtor" };
const RECONNECT_MAX_MS = 5000;
const CALL_ENDED = 1000;
const NO_SUCH_CALL = 1008;

const callId = param("call");

// ---- persistent choices: dismissed cards and acknowledged critical warnings survive reloads ----

const storeKey = `recobra.overlay.${callId}`;
const saved = JSON.parse(localStorage.getItem(storeKey) || "{}");
const dismissed = { warnings: new Set(saved.warnings || []), prompts: new Set(saved.prompts || []) };
const acknowledged = new Set(saved.acknowledged || []);

function persist() {
  localStorage.setItem(storeKey, JSON.stringify({
    warnings: [...dismissed.warnings], prompts: [...dismissed.prompts], acknowledged: [...acknowledged],
  }));
}

// ---- call state ----

const utterances = new Map(); // "speaker:n" -> {li, final, start}
const warnings = new Map(); // rule_id -> {event shown, occurrences, last confirmed event}
const prompts = new Map(); // card_id -> event
const sentiment = [];
let clock = 0;

// ---- the event stream: resume from the last sequence number seen, never apply one twice ----

const stream = {
  socket: null,
  lastSeq: 0,
  seqs: [], // every applied seq in order (for checks; a gap or repeat would show here)
  ignoredRepeats: 0,
  provisionalShown: 0, // interim lines drawn (each later replaced by its final)
  connects: [], // the `since` of every (re)connect
  ended: false,
  endedText: "",
  attempts: 0,
  holdUntil: 0,
  timer: null,
};

function connect() {
  clearTimeout(stream.timer);
  stream.timer = null;
  const socket = new WebSocket(wsUrl(`/calls/${encodeURIComponent(callId)}/events`, { since: stream.lastSeq }));
  stream.connects.push(stream.lastSeq);
  stream.socket = socket;
  socket.onopen = () => {
    stream.attempts = 0;
    setConnection("live", stream.lastSeq ? `Live · resumed after event ${stream.lastSeq}` : "Live");
  };
  socket.onmessage = (message) => {
    if (socket !== stream.socket) return;
    const event = JSON.parse(message.data);
    if (event.seq <= stream.lastSeq) {
      stream.ignoredRepeats += 1;
      return;
    }
    if (event.seq !== stream.lastSeq + 1) {
      resume(4001, "Missed events"); // never skip one: reconnect from the last event applied
      return;
    }
    stream.lastSeq = event.seq;
    stream.seqs.push(event.seq);
    apply(event);
  };
  socket.onclose = (close) => {
    if (socket !== stream.socket) return;
    stream.socket = null;
    if (close.code === CALL_ENDED) {
      stream.ended = true;
      setConnection("ended", stream.endedText || "Call ended");
      return;
    }
    scheduleReconnect(close.code === NO_SUCH_CALL ? `Waiting for call ${callId}` : "Connection lost");
  };
}

function scheduleReconnect(why) {
  const backoff = Math.min(RECONNECT_MAX_MS, 250 * 2 ** stream.attempts);
  stream.attempts += 1;
  const delay = Math.max(backoff, stream.holdUntil - Date.now());
  setConnection("reconnecting", `${why} · retrying in ${Math.ceil(delay / 1000)} s`);
  stream.timer = setTimeout(connect, delay);
}

/** Test and support hook: drop the socket as a network failure would, optionally staying offline a
 * while; returns the last sequence number applied before the drop. */
function dropConnection(offlineMs = 0) {
  stream.holdUntil = Date.now() + offlineMs;
  if (stream.socket) resume(4000, "Connection dropped");
  return stream.lastSeq;
}

/** Close the current socket, apply nothing more from it, and reconnect from the last event applied. */
function resume(code, why) {
  const socket = stream.socket;
  stream.socket = null;
  socket.close(code, why);
  scheduleReconnect(why);
}

function setConnection(state, text) {
  const conn = $("conn");
  conn.dataset.state = state;
  conn.textContent = text;
}

// ---- applying events ----

function apply(event) {
  if (typeof event.t === "number") clock = Math.max(clock, event.t);
  $("clock").textContent = fmtDuration(clock);
  switch (event.type) {
    case "call.started": return callStarted(event);
    case "transcript.partial":
    case "transcript.final": return transcript(event);
    case "compliance.warning": return warning(event);
    case "prompt": return prompt(event);
    case "style": return style(event);
    case "stress": return stress(event);
    case "sentiment": return sentimentScore(event);
    case "abandon_risk": return abandon(event);
    case "call.ended":
      stream.endedText = `Call ended${event.reason === "end" ? "" : ` (${event.reason})`} after ${fmtDuration(event.duration)}`;
      return setConnection("ended", stream.endedText);
    case "qa.score": return qaScore();
    case "call.error": return setConnection("error", `Problem on this call: ${event.message}`);
    default: return undefined;
  }
}

function callStarted(event) {
  const meta = { ...(event.metadata.custom_config || {}), ...event.metadata }; // Genesys: customConfig
  const agent = meta.agent || meta.agent_id;
  $("call-label").textContent = agent ? `${callId} · ${agent}` : callId;
}

function transcript(event) {
  const key = `${event.speaker}:${event.utterance}`;
  let entry = utterances.get(key);
  const final = event.type === "transcript.final";
  if (entry && entry.final) return; // a late interim never overwrites the final
  if (!entry) {
    entry = { li: el("li", { class: `utt ${event.speaker}`, "data-key": key }), final: false, start: event.start };
    utterances.set(key, entry);
    placeByStart(entry);
  }
  entry.final = final;
  if (!final) stream.provisionalShown += 1;
  const label = el("span", { class: `who ${event.speaker}`, text: SPEAKER[event.speaker] || event.speaker });
  const time = el("span", { class: "utt-time", text: fmtClock(event.start) });
  let text;
  if (final) {
    text = el("span", { class: "text", text: event.text });
  } else {
    const stable = event.stable_text && event.text.startsWith(event.stable_text) ? event.stable_text : "";
    text = el("span", { class: "text" },
      el("span", { class: "stable", text: stable }),
      el("span", { class: "unstable", text: event.text.slice(stable.length) }),
      el("span", { class: "sr-only", text: " (provisional)" }));
  }
  entry.li.className = `utt ${event.speaker} ${final ? "final" : "provisional"}`;
  entry.li.dataset.seq = String(event.seq);
  entry.li.replaceChildren(label, time, text);
  scrollTranscript();
}

function placeByStart(entry) {
  const list = $("transcript");
  const after = [...utterances.values()].find((other) => other !== entry && other.li.isConnected && other.start > entry.start);
  list.insertBefore(entry.li, after ? after.li : null);
}

function scrollTranscript() {
  const list = $("transcript");
  if (list.scrollHeight - list.scrollTop - list.clientHeight < 120) list.scrollTop = list.scrollHeight;
}

// ---- compliance warnings ----

function warning(event) {
  // one card per rule: a partial's provisional warning becomes confirmed or retracted on the final
  const previous = warnings.get(event.rule_id) || { event: null, occurrences: 0, confirmed: null };
  let { occurrences, confirmed } = previous;
  if (event.status === "retracted") occurrences = Math.max(0, occurrences - 1);
  else if (!(previous.event && previous.event.status === "provisional" && event.status === "confirmed")) occurrences += 1;
  if (event.status === "confirmed") confirmed = event;
  const shown = event.status === "retracted" && occurrences > 0 && confirmed ? confirmed : event;
  warnings.set(event.rule_id, { event: shown, occurrences, confirmed });
  renderWarnings();
}

function renderWarnings() {
  const visible = [...warnings.values()]
    .filter(({ event }) => !dismissed.warnings.has(event.rule_id))
    .sort((a, b) => (SEVERITY_RANK[b.event.severity] - SEVERITY_RANK[a.event.severity]) || (b.event.seq - a.event.seq));
  setChildren($("warnings"), ...visible.map(warningCard));
  $("warnings-empty").hidden = visible.length > 0;
  $("warnings-count").textContent = visible.length ? `(${visible.length})` : "";
  renderCriticalBanner();
}

function warningCard({ event, occurrences }) {
  const id = `warning-${event.rule_id}`;
  const evidence = event.evidence;
  return el("article", {
    class: `card warning sev-${event.severity} status-${event.status}`, id, "data-rule": event.rule_id,
    "data-severity": event.severity, "aria-labelledby": `${id}-title`,
  },
  el("header", { class: "card-head" },
    el("span", { class: `severity sev-${event.severity}`, text: event.severity.toUpperCase() }),
    el("h3", { id: `${id}-title`, class: "card-title", text: event.title }),
    event.status !== "confirmed" ? el("span", { class: "chip status", text: event.status }) : null,
    occurrences > 1 ? el("span", { class: "chip", text: `×${occurrences}` }) : null),
  el("p", { class: "rule" },
    el("span", { class: "rule-id", text: event.rule_id }), " · ",
    el("cite", { class: "citation", text: event.citation }), ` · ${event.jurisdiction.toUpperCase()}`),
  evidence ? el("blockquote", { class: "evidence" },
    el("span", { class: `who ${evidence.speaker}`, text: SPEAKER[evidence.speaker] }),
    ` “${evidence.quote}” `, el("span", { class: "utt-time", text: `at ${fmtClock(evidence.start)}` })) : null,
  el("button", {
    type: "button", class: "dismiss", "aria-label": `Dismiss warning ${event.rule_id}: ${event.title}`,
    onclick: () => { dismissed.warnings.add(event.rule_id); acknowledged.add(event.rule_id); persist(); renderWarnings(); },
  }, "Dismiss"));
}

const announced = new Set(); // critical rules the banner has already flashed for

function openCritical() {
  return [...warnings.values()].map(({ event }) => event).filter((e) => e.severity === "critical"
    && e.status !== "retracted" && !dismissed.warnings.has(e.rule_id) && !acknowledged.has(e.rule_id));
}

function renderCriticalBanner() {
  const open = openCritical();
  const banner = $("critical");
  document.title = open.length ? `(!) ${open.length} critical · Recobra` : "Recobra · agent assist";
  if (!open.length) {
    banner.hidden = true;
    banner.replaceChildren();
    banner.dataset.shown = "";
    return;
  }
  const latest = open.reduce((a, b) => (b.seq > a.seq ? b : a));
  const more = open.length > 1 ? ` (+${open.length - 1} more)` : "";
  const text = `${latest.title} — ${latest.rule_id}${more}`;
  if (banner.dataset.shown !== text) { // unchanged text is not re-announced
    banner.dataset.shown = text;
    banner.replaceChildren(
      el("strong", { text: "Critical compliance warning: " }),
      el("span", { text }),
      el("button", {
        type: "button", class: "ack",
        onclick: () => { for (const e of openCritical()) acknowledged.add(e.rule_id); persist(); renderCriticalBanner(); },
      }, "Acknowledge"));
  }
  banner.hidden = false;
  const fresh = open.filter((e) => !announced.has(e.rule_id));
  for (const e of open) announced.add(e.rule_id);
  if (fresh.length) {
    banner.classList.remove("flash");
    void banner.offsetWidth; // restart the flash animation for each new critical warning
    banner.classList.add("flash");
  }
}

// ---- prompt cards ----

function prompt(event) {
  prompts.set(event.card_id, event);
  renderPrompts();
}

function renderPrompts() {
  const visible = [...prompts.values()].filter((p) => !dismissed.prompts.has(p.card_id)).sort((a, b) => b.seq - a.seq);
  setChildren($("prompts"), ...visible.map(promptCard));
  $("prompts-empty").hidden = visible.length > 0;
  $("prompts-count").textContent = visible.length ? `(${visible.length})` : "";
}

function promptCard(event) {
  const id = `prompt-${event.card_id}`;
  return el("article", { class: "card prompt", id, "data-card": event.card_id, "aria-labelledby": `${id}-title` },
    el("header", { class: "card-head" }, el("h3", { id: `${id}-title`, class: "card-title", text: event.title })),
    event.evidence ? el("blockquote", { class: "evidence" },
      el("span", { class: `who ${event.evidence.speaker}`, text: SPEAKER[event.evidence.speaker] }),
      ` “${event.evidence.quote}”`) : null,
    el("p", { class: "say-label", text: "Say" }),
    el("ul", { class: "say" }, event.say.map((line) => el("li", { text: line }))),
    event.avoid.length ? el("p", { class: "avoid-label", text: "Avoid" }) : null,
    event.avoid.length ? el("ul", { class: "avoid" }, event.avoid.map((line) => el("li", { text: line }))) : null,
    el("button", {
      type: "button", class: "dismiss", "aria-label": `Dismiss prompt: ${event.title}`,
      onclick: () => { dismissed.prompts.add(event.card_id); persist(); renderPrompts(); },
    }, "Dismiss"));
}

// ---- signals ----

function style(event) {
  const label = STYLE_LABELS[event.band] || event.band;
  const chip = $("style-band");
  chip.textContent = label;
  chip.dataset.band = event.band;
  const gauge = $("style-gauge");
  gauge.setAttribute("aria-valuenow", event.index.toFixed(2));
  gauge.setAttribute("aria-valuetext", `${label} (${event.index.toFixed(2)} on -1 passive to +1 aggressive)`);
  const marker = $("style-marker");
  marker.hidden = false;
  marker.style.left = `${((event.index + 1) / 2) * 100}%`;
  $("style-reasons").replaceChildren(...event.reasons.map((r) => el("li", { text: r })));
}

function stress(event) {
  if (event.speaker !== "debtor") return;
  const level = Math.round(event.level);
  $("stress-value").textContent = `${level} / 100`;
  const bar = $("stress-bar");
  bar.setAttribute("aria-valuenow", String(level));
  bar.setAttribute("aria-valuetext", `${level} of 100`);
  bar.dataset.level = level >= 70 ? "high" : level >= 40 ? "elevated" : "low";
  $("stress-fill").style.width = `${level}%`;
  const trend = event.trend;
  $("stress-trend").textContent = Math.abs(trend) < 1 ? "Steady"
    : `${trend > 0 ? "Rising" : "Falling"} ${Math.abs(trend).toFixed(0)} points a minute`;
}

function sentimentScore(event) {
  if (event.speaker !== "debtor") return;
  sentiment.push(event.score);
  $("sentiment-value").textContent = `${event.label} (${event.score >= 0 ? "+" : ""}${event.score.toFixed(2)})`;
  $("sentiment-value").dataset.label = event.label;
  const recent = sentiment.slice(-30);
  const trend = recent.length > 1 ? recent[recent.length - 1] - recent[0] : 0;
  const words = trend > 0.2 ? "improving" : trend < -0.2 ? "worsening" : "steady";
  $("sentiment-spark").replaceChildren(sparkline(recent, {
    min: -1, max: 1, width: 220, height: 36, label: `Debtor sentiment over the last ${recent.length} utterances: ${words}`,
  }));
}

function abandon(event) {
  const pct = Math.round(event.risk * 100);
  const level = event.risk >= 0.5 ? "high" : event.risk >= 0.3 ? "elevated" : "low";
  $("abandon-signal").dataset.level = level;
  $("abandon-value").textContent = `${pct}%${level === "high" ? " · act now" : ""}`;
  const bar = $("abandon-bar");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.setAttribute("aria-valuetext", `${pct} percent, ${level}`);
  $("abandon-fill").style.width = `${pct}%`;
  $("abandon-reasons").replaceChildren(...event.reasons.map((r) => el("li", { text: r })));
}

function qaScore() {
  const line = $("qa-line");
  line.replaceChildren("QA scorecard ready: ", el("a", { href: `${pageUrl("qa.html")}#call=${encodeURIComponent(callId)}`, text: "open the review" }));
  line.hidden = false;
}

// ---- no call chosen: list the live calls ----

async function showPicker() {
  $("picker").hidden = false;
  $("picker-dashboard").href = pageUrl("dashboard.html");
  setConnection("idle", "No call selected");
  const refresh = async () => {
    try {
      const calls = await (await apiFetch("/calls")).json();
      $("picker-list").replaceChildren(...calls.map((c) => el("li", {},
        el("a", { href: pageUrl("overlay.html", { call: c.call_id }), text: c.call_id }),
        ` · ${c.protocol} · ${fmtDuration(c.t)}`)));
      $("picker-empty").hidden = calls.length > 0;
    } catch (error) {
      setConnection("error", `Cannot list calls: ${error.message}`);
    }
  };
  await refresh();
  setInterval(refresh, 3000);
}

if (callId) {
  $("overlay").hidden = false;
  $("call-label").textContent = callId;
  renderWarnings();
  renderPrompts();
  connect();
} else {
  showPicker();
}

window.recobraOverlay = {
  dropConnection,
  get lastSeq() { return stream.lastSeq; },
  get seqs() { return [...stream.seqs]; },
  get ignoredRepeats() { return stream.ignoredRepeats; },
  get provisionalShown() { return stream.provisionalShown; },
  get connects() { return [...stream.connects]; },
  get ended() { return stream.ended; },
};
