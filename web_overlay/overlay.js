// Agent overlay: one call's live events from WS /calls/{id}/events, resumed by sequence number.
import { apiFetch, el, fmtClock, fmtDuration, pageUrl, param, setChildren, wsUrl } from "./common.js";
import { browserLanguage, language, onLanguage, startLanguage, suggestLanguage, t } from "./i18n.js";
import { account, redrawAccount } from "./overlay_account.js";
import { redrawDraft, startDraft } from "./overlay_draft.js";
import { loadSummary, redrawSummary } from "./overlay_summary.js";
import { abandon, redrawSignals, sentimentScore, stress, style } from "./overlay_signals.js";

const $ = (id) => document.getElementById(id);
const SEVERITY_RANK = { critical: 3, warning: 2, info: 1 };
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
const factCards = new Set(); // card_ids the account facts have called for (account.updated `cards`)
const connection = { state: "connecting", key: "conn.connecting", params: {} };
let qaReady = false;
let callLanguageKnown = false; // from the call's metadata or a call.language event; else from its finals
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
  endedWords: null, // [key, params] of the call.ended line
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
    if (stream.lastSeq) setConnection("live", "overlay.live_resumed", { seq: stream.lastSeq });
    else setConnection("live", "conn.live");
  };
  socket.onmessage = (message) => {
    if (socket !== stream.socket) return;
    const event = JSON.parse(message.data);
    if (event.seq <= stream.lastSeq) {
      stream.ignoredRepeats += 1;
      return;
    }
    if (event.seq !== stream.lastSeq + 1) {
      resume(4001, "overlay.missed"); // never skip one: reconnect from the last event applied
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
      setConnection("ended", ...(stream.endedWords || ["overlay.ended"]));
      return;
    }
    scheduleReconnect(close.code === NO_SUCH_CALL ? "overlay.waiting_call" : "conn.lost");
  };
}

/** Reconnect after a backoff; `why` is the key of the words saying why. */
function scheduleReconnect(why) {
  const backoff = Math.min(RECONNECT_MAX_MS, 250 * 2 ** stream.attempts);
  stream.attempts += 1;
  const delay = Math.max(backoff, stream.holdUntil - Date.now());
  setConnection("reconnecting", "conn.retrying", { why, s: Math.ceil(delay / 1000) });
  stream.timer = setTimeout(connect, delay);
}

/** Test and support hook: drop the socket as a network failure would, optionally staying offline a
 * while; returns the last sequence number applied before the drop. */
function dropConnection(offlineMs = 0) {
  stream.holdUntil = Date.now() + offlineMs;
  if (stream.socket) resume(4000, "overlay.dropped");
  return stream.lastSeq;
}

/** Close the current socket, apply nothing more from it, and reconnect from the last event applied. */
function resume(code, why) {
  const socket = stream.socket;
  stream.socket = null;
  socket.close(code, t(why));
  scheduleReconnect(why);
}

/** The connection line: its state and the key and params of its words (kept to redraw them). */
function setConnection(state, key, params = {}) {
  Object.assign(connection, { state, key, params });
  renderConnection();
}

function renderConnection() {
  const conn = $("conn");
  conn.dataset.state = connection.state;
  const params = { call: callId, ...connection.params };
  if (params.why) params.why = t(params.why, params);
  conn.textContent = t(connection.key, params);
}

// ---- applying events ----

function apply(event) {
  if (typeof event.t === "number") clock = Math.max(clock, event.t);
  $("clock").textContent = fmtDuration(clock);
  switch (event.type) {
    case "call.started": return callStarted(event);
    case "call.language":
      callLanguageKnown = true;
      return suggestLanguage(event.language);
    case "transcript.partial": return transcript(event);
    case "transcript.final":
      if (!callLanguageKnown) suggestLanguage(event.language);
      return transcript(event);
    case "compliance.warning": return warning(event);
    case "prompt": return prompt(event);
    case "style": return style(event);
    case "stress": return stress(event);
    case "sentiment": return sentimentScore(event);
    case "abandon_risk": return abandon(event);
    case "account.updated":
      withdrawFactCards(event);
      return account(event);
    case "call.ended":
      stream.endedWords = [event.reason === "end" ? "overlay.ended_after" : "overlay.ended_reason_after",
        { reason: event.reason, duration: fmtDuration(event.duration) }];
      return setConnection("ended", ...stream.endedWords);
    case "qa.score":
      qaReady = true;
      loadSummary(callId);
      return renderQaLine();
    case "call.error": return setConnection("error", "overlay.call_error", { message: event.message });
    default: return undefined;
  }
}

function callStarted(event) {
  const meta = { ...(event.metadata.custom_config || {}), ...event.metadata }; // Genesys: customConfig
  const agent = meta.agent || meta.agent_id;
  $("call-label").textContent = agent ? `${callId} · ${agent}` : callId;
  if (event.channel && event.channel !== "voice") startDraft(callId, event.channel);
  if (meta.language) {
    callLanguageKnown = true;
    suggestLanguage(meta.language);
  }
}

/** A speaker label that follows the page's language. */
function who(speaker) {
  return el("span", { class: `who ${speaker}`, "data-i18n": `speaker.${speaker}`, text: t(`speaker.${speaker}`) });
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
  const label = who(event.speaker);
  const time = el("span", { class: "utt-time", text: fmtClock(event.start) });
  let text;
  if (final) {
    text = el("span", { class: "text", text: event.text });
  } else {
    const stable = event.stable_text && event.text.startsWith(event.stable_text) ? event.stable_text : "";
    text = el("span", { class: "text" },
      el("span", { class: "stable", text: stable }),
      el("span", { class: "unstable", text: event.text.slice(stable.length) }),
      el("span", { class: "sr-only", "data-i18n": "overlay.provisional", text: t("overlay.provisional") }));
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
    el("span", { class: `severity sev-${event.severity}`, text: t(`severity.${event.severity}`).toUpperCase() }),
    el("h3", { id: `${id}-title`, class: "card-title", text: event.title }),
    event.status !== "confirmed" ? el("span", { class: "chip status", text: t(`status.${event.status}`) }) : null,
    occurrences > 1 ? el("span", { class: "chip", text: `×${occurrences}` }) : null),
  el("p", { class: "rule" },
    el("span", { class: "rule-id", text: event.rule_id }), " · ",
    el("cite", { class: "citation", text: event.citation }), ` · ${event.jurisdiction.toUpperCase()}`),
  evidence ? el("blockquote", { class: "evidence" }, who(evidence.speaker),
    ` “${evidence.quote}” `, el("span", { class: "utt-time", text: t("overlay.at", { time: fmtClock(evidence.start) }) })) : null,
  el("button", {
    type: "button", class: "dismiss", "aria-label": t("overlay.dismiss_warning", { rule: event.rule_id, title: event.title }),
    onclick: () => { dismissed.warnings.add(event.rule_id); acknowledged.add(event.rule_id); persist(); renderWarnings(); },
  }, t("overlay.dismiss")));
}

const announced = new Set(); // critical rules the banner has already flashed for

function openCritical() {
  return [...warnings.values()].map(({ event }) => event).filter((e) => e.severity === "critical"
    && e.status !== "retracted" && !dismissed.warnings.has(e.rule_id) && !acknowledged.has(e.rule_id));
}

function renderCriticalBanner() {
  const open = openCritical();
  const banner = $("critical");
  document.title = open.length ? t("overlay.title_critical", { n: open.length }) : t("overlay.title");
  if (!open.length) {
    banner.hidden = true;
    banner.replaceChildren();
    banner.dataset.shown = "";
    return;
  }
  const latest = open.reduce((a, b) => (b.seq > a.seq ? b : a));
  const more = open.length > 1 ? t("overlay.more", { n: open.length - 1 }) : "";
  const text = `${latest.title} — ${latest.rule_id}${more}`;
  const shown = `${language()}:${text}`;
  if (banner.dataset.shown !== shown) { // unchanged text is not re-announced
    banner.dataset.shown = shown;
    banner.replaceChildren(
      el("strong", { text: t("overlay.critical_banner") }),
      el("span", { text }),
      el("button", {
        type: "button", class: "ack",
        onclick: () => { for (const e of openCritical()) acknowledged.add(e.rule_id); persist(); renderCriticalBanner(); },
      }, t("overlay.acknowledge")));
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

/** Newer account facts: the fact cards they no longer call for leave (withdrawn or empty facts: all of
 * them); those they still call for stay until their own newer prompt event replaces them. */
function withdrawFactCards(event) {
  if (!Array.isArray(event.cards)) return; // a log from before account.updated listed its cards
  const inForce = new Set(event.cards);
  for (const id of factCards) if (!inForce.has(id)) prompts.delete(id);
  for (const id of inForce) factCards.add(id);
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
    event.evidence ? el("blockquote", { class: "evidence" }, who(event.evidence.speaker), ` “${event.evidence.quote}”`) : null,
    el("p", { class: "say-label", text: t("overlay.say") }),
    el("ul", { class: "say" }, event.say.map((line) => el("li", { text: line }))),
    event.avoid.length ? el("p", { class: "avoid-label", text: t("overlay.avoid") }) : null,
    event.avoid.length ? el("ul", { class: "avoid" }, event.avoid.map((line) => el("li", { text: line }))) : null,
    el("button", {
      type: "button", class: "dismiss", "aria-label": t("overlay.dismiss_prompt", { title: event.title }),
      onclick: () => { dismissed.prompts.add(event.card_id); persist(); renderPrompts(); },
    }, t("overlay.dismiss")));
}

// ---- the QA line and redrawing ----

function renderQaLine() {
  const line = $("qa-line");
  line.replaceChildren(t("overlay.qa_ready"),
    el("a", { href: `${pageUrl("qa.html")}#call=${encodeURIComponent(callId)}`, text: t("overlay.qa_open") }));
  line.hidden = !qaReady;
}

/** Redraw everything built from events in the page's (new) language. */
function redraw() {
  renderConnection();
  redrawSignals();
  redrawAccount();
  redrawDraft();
  redrawSummary();
  renderWarnings();
  renderPrompts();
  renderQaLine();
}

// ---- no call chosen: list the live calls ----

async function showPicker() {
  $("picker").hidden = false;
  $("picker-dashboard").href = pageUrl("dashboard.html");
  setConnection("idle", "overlay.no_call");
  const refresh = async () => {
    try {
      const calls = await (await apiFetch("/calls")).json();
      $("picker-list").replaceChildren(...calls.map((c) => el("li", {},
        el("a", { href: pageUrl("overlay.html", { call: c.call_id }), text: c.call_id }),
        ` · ${c.protocol} · ${fmtDuration(c.t)}`)));
      $("picker-empty").hidden = calls.length > 0;
    } catch (error) {
      setConnection("error", "overlay.cannot_list", { message: error.message });
    }
  };
  await refresh();
  setInterval(refresh, 3000);
}

startLanguage(browserLanguage());
onLanguage(redraw);
if (callId) {
  $("overlay").hidden = false;
  $("call-label").textContent = callId;
  redraw();
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
