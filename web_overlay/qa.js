// QA review page: list scored calls, open one (transcript beside its scorecard), override an item.
// Talks to the QA REST API under ../api/ ; a `token` query parameter is sent as a Bearer token.
import { browserLanguage, onLanguage, pick, startLanguage, t, tn } from "./i18n.js";

const API = new URL("../api/", location.href);
const TOKEN = new URLSearchParams(location.search).get("token");
const PAGE_SIZE = 100;
const FILTERS = ["category", "band", "compliance_fail", "agent", "date_from", "date_to"];
const REVIEWER_KEY = "recobra.qa.reviewer";
const RESULTS = ["pass", "fail", "na"];
const resultLabel = (result) => (RESULTS.includes(result) ? t(`result.${result}`) : result);
const COLUMNS = [
  { key: "started_at", words: "qa.started", cell: (c) => fmtDateTime(c.started_at) },
  { key: "id", words: "qa.call", cell: (c) => h("a", { href: `#call=${encodeURIComponent(c.id)}` }, c.id) },
  { key: "agent_id", words: "qa.agent", cell: (c) => c.agent_id || "—" },
  { key: "duration", words: "qa.duration", cell: (c) => fmtClock(c.duration) },
  { key: "score", words: "qa.score", cell: (c) => fmtScore(c.score) },
  { key: "band", words: "qa.band_col", cell: (c) => bandBadge(c.band) },
  { key: "primary_category", words: "qa.category", cell: (c) => categoryCell(c) },
  { key: "compliance_fail", words: "qa.compliance", cell: (c) => gateText(c.compliance_fail) },
];

const state = { rows: [], offset: 0, more: false, sort: { key: "started_at", dir: "descending" }, detail: null, lastOpened: null, ticket: 0 };
const $ = (id) => document.getElementById(id);

// ---------- helpers ----------

/** A DOM element: h("a", {href: "#x", class: "y"}, "text", child...). Text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const pretty = (code) => (code ? code.charAt(0).toUpperCase() + code.slice(1).replaceAll("_", " ") : "—");
/** A code's words: from the page's words (`prefix.code`), else the service's titles, else the code made readable. */
function label(code, prefix, titles = {}) {
  if (!code) return "—";
  const key = `${prefix}.${code}`;
  const own = t(key);
  return own !== key ? own : pick(titles[code], pretty(code));
}

function fmtClock(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function fmtDateTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(document.documentElement.lang, { dateStyle: "medium", timeStyle: "short" });
}

const fmtScore = (score) => (score === null || score === undefined ? "—" : String(score));
const gateText = (failed) => (failed === null || failed === undefined ? "—" : t(failed ? "qa.failed" : "qa.passed"));

function bandBadge(band) {
  return h("span", { class: `badge band-${band || "none"}` }, label(band, "band"));
}

function resultBadge(result) {
  return h("span", { class: `badge result-${result}` }, resultLabel(result));
}

function categoryCell(c) {
  if (!c.contact && !c.primary_category) return "—";
  return [label(c.primary_category || c.contact, "code"), c.primary_category ? h("span", { class: "muted" }, ` · ${label(c.contact, "code")}`) : null];
}

function say(message) {
  $("status").textContent = message;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(detail) {
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

/** fetch() under the API with the page's token; JSON back, or an ApiError with the server's reason. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  if (TOKEN) headers.set("Authorization", `Bearer ${TOKEN}`);
  let resp;
  try {
    resp = await fetch(new URL(path, API), { ...init, headers });
  } catch (err) {
    throw new ApiError(0, t("qa.unreachable", { message: err.message }));
  }
  if (!resp.ok) {
    let reason = resp.statusText;
    try {
      reason = describe((await resp.json()).detail);
    } catch {
      /* not JSON: keep the status text */
    }
    if (resp.status === 401 || resp.status === 403) reason = t("qa.not_authorised", { reason });
    throw new ApiError(resp.status, reason);
  }
  return resp.json();
}

// ---------- filters, list and sorting ----------

function formFilters() {
  const data = new FormData($("filters"));
  return Object.fromEntries(FILTERS.map((k) => [k, String(data.get(k) || "").trim()]).filter(([, v]) => v));
}

function localMidnight(day, plusDays = 0) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays);
}

/** Query parameters for the API from the form's filters (dates: local days, "to" inclusive). */
function apiParams(filters) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) {
    if (k === "date_from") params.set(k, localMidnight(v).toISOString());
    else if (k === "date_to") params.set(k, localMidnight(v, 1).toISOString());
    else params.set(k, v);
  }
  return params;
}

function withToken(params) {
  if (TOKEN) params.set("token", TOKEN);
  return params;
}

/** Keep the filters in the page address (with the token) so a reload or a shared link shows the same list. */
function rememberFilters(filters) {
  const params = withToken(new URLSearchParams(filters));
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
}

function restoreFilters() {
  const params = new URLSearchParams(location.search);
  for (const k of FILTERS) {
    const field = $("filters").elements.namedItem(k);
    if (field && params.has(k)) field.value = params.get(k);
  }
}

function updateCsvLink(filters) {
  const url = new URL("calls.csv", API);
  url.search = withToken(apiParams(filters)).toString();
  $("csv-link").href = url.href;
}

async function loadCalls({ append = false } = {}) {
  const filters = formFilters();
  if (filters.date_from && filters.date_to && filters.date_from > filters.date_to) {
    showError(t("qa.dates_reversed"));
    return;
  }
  const params = apiParams(filters);
  params.set("limit", String(PAGE_SIZE));
  params.set("offset", String(append ? state.offset : 0));
  rememberFilters(filters);
  updateCsvLink(filters);
  say(t("qa.loading_calls"));
  const ticket = ++state.ticket;
  try {
    const page = await api(`calls?${params}`);
    if (ticket !== state.ticket) return; // a newer request answers for the current filters
    showError("");
    state.rows = append ? [...state.rows, ...page] : page;
    state.offset = (append ? state.offset : 0) + page.length;
    state.more = page.length === PAGE_SIZE;
    learnCodes(page);
    renderCalls();
    say(tn("qa.listed", state.rows.length));
  } catch (err) {
    showError(t("qa.load_failed", { message: err.message }));
    say("");
  }
}

function learnCodes(rows) {
  const add = (listId, values) => {
    const list = $(listId);
    const known = new Set([...list.options].map((o) => o.value));
    for (const v of values) if (v && !known.has(v)) list.append(h("option", { value: v }));
  };
  add("category-codes", rows.flatMap((r) => [r.contact, r.primary_category]));
  add("agent-ids", rows.map((r) => r.agent_id));
}

function compare(a, b, key) {
  const x = a[key];
  const y = b[key];
  if (x === y) return 0;
  if (x === null || x === undefined) return 1;
  if (y === null || y === undefined) return -1;
  if (typeof x === "number" || typeof x === "boolean") return Number(x) - Number(y);
  return String(x).localeCompare(String(y), undefined, { numeric: true });
}

function sortedRows() {
  const { key, dir } = state.sort;
  const sign = dir === "ascending" ? 1 : -1;
  return [...state.rows].sort((a, b) => {
    const c = compare(a, b, key);
    // missing values stay at the end in either direction
    return a[key] === null || a[key] === undefined || b[key] === null || b[key] === undefined ? c : sign * c;
  });
}

function renderHead() {
  $("calls-head").replaceChildren(
    ...COLUMNS.map((col) => {
      const active = state.sort.key === col.key;
      const next = active && state.sort.dir === "ascending" ? "descending" : "ascending";
      return h(
        "th",
        { scope: "col", "aria-sort": active ? state.sort.dir : null },
        h(
          "button",
          {
            type: "button",
            class: "sort",
            dataset: { key: col.key },
            onclick: () => {
              state.sort = { key: col.key, dir: next };
              renderCalls();
              document.querySelector(`#calls-head button[data-key="${col.key}"]`).focus();
              say(t("qa.sorted_by", { column: t(col.words), dir: t(`qa.${next}`) }));
            },
          },
          t(col.words),
          h("span", { class: "sort-mark", "aria-hidden": "true" }, active ? (state.sort.dir === "ascending" ? " ▲" : " ▼") : " ↕"),
        ),
      );
    }),
  );
}

function renderCalls() {
  renderHead();
  const rows = sortedRows();
  $("calls-body").replaceChildren(
    ...rows.map((c) =>
      h(
        "tr",
        { dataset: { call: c.id }, class: c.compliance_fail ? "row-fail" : null },
        COLUMNS.map((col) => h(col.key === "id" ? "th" : "td", { "data-label": t(col.words), scope: col.key === "id" ? "row" : null }, h("span", {}, col.cell(c)))),
      ),
    ),
  );
  const n = rows.length;
  const column = t(COLUMNS.find((c) => c.key === state.sort.key).words).toLowerCase();
  $("calls-caption").textContent = n
    ? tn("qa.caption", n, { more: state.more ? t("qa.more_available") : "", column, dir: t(`qa.${state.sort.dir}`) })
    : t("qa.no_match");
  $("more").hidden = !state.more;
}

// ---------- call detail ----------

const hashCallId = () => {
  const m = location.hash.match(/^#call=(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
};

async function openCall(id) {
  state.lastOpened = id;
  $("list-view").hidden = true;
  $("detail-view").hidden = false;
  $("call-title").textContent = t("qa.call_id", { id });
  for (const part of ["call-summary", "category", "warnings", "scorecard", "audit", "events", "transcript"]) $(part).replaceChildren();
  say(t("qa.loading_call", { id }));
  try {
    state.detail = await api(`calls/${encodeURIComponent(id)}`);
    showError("");
  } catch (err) {
    showError(err.status === 404 ? t("qa.no_such_call", { id }) : t("qa.call_failed", { id, message: err.message }));
    say("");
    return;
  }
  renderDetail();
  say(t("qa.call_loaded", { id }));
  $("call-title").focus();
}

function renderDetail() {
  const d = state.detail;
  renderSummary(d);
  renderCategory(d.category);
  renderWarnings(d);
  renderScorecard(d);
  renderAudit(d.overrides);
  renderEvents(d.events);
  renderTranscript(d.utterances);
}

function fact(term, ...value) {
  return h("div", {}, h("dt", {}, term), h("dd", {}, ...value));
}

function renderSummary(d) {
  const c = d.call;
  const card = d.scorecard;
  $("call-summary").replaceChildren(
    h(
      "div",
      { class: "score-box", id: "score-box" },
      h("span", { class: "score-label" }, t("qa.score")),
      h("span", { class: "score-value", id: "call-score" }, card && card.score !== null ? `${card.score}` : "—"),
      h("span", { class: "score-of" }, card && card.score !== null ? "/ 100" : ""),
      bandBadge(card ? card.band : c.band),
    ),
    h(
      "dl",
      { class: "facts" },
      fact(t("qa.started"), fmtDateTime(c.started_at)),
      fact(t("qa.agent"), c.agent_id || "—"),
      fact(t("qa.duration"), fmtClock(c.duration)),
      fact(t("qa.language"), (c.language || "—").toUpperCase()),
      fact(t("qa.status"), label(c.status, "call_status")),
      fact(t("qa.gate"), gateText(card ? card.compliance_fail : c.compliance_fail)),
    ),
  );
}

/** A button that jumps to the transcript where a quote was said. */
function quoteButton(q) {
  return h(
    "button",
    { type: "button", class: "quote", onclick: () => jumpTo(q) },
    h("span", { class: "visually-hidden" }, t("qa.jump")),
    h("time", {}, fmtClock(q.start)),
    " ",
    h("span", { class: `who who-${q.speaker}` }, label(q.speaker, "speaker")),
    h("q", {}, q.quote),
  );
}

function detailsText(details, titles) {
  const parts = [];
  if (details.amount !== undefined && details.amount !== null) parts.push(`${details.amount}${details.currency ? ` ${details.currency}` : ""}`);
  if (details.date || details.date_text) parts.push(t("qa.on", { date: details.date || details.date_text }));
  if (details.time) parts.push(t("qa.at", { time: details.time }));
  if (details.method) parts.push(t("qa.by", { method: label(details.method, "code", titles).toLowerCase() }));
  if (details.kind) parts.push(label(details.kind, "code", titles).toLowerCase());
  return parts.join(" ");
}

function renderCategory(cat) {
  const titles = cat?.titles || {};
  if (!cat) {
    $("category").replaceChildren(h("p", { class: "muted" }, t("qa.not_categorised")));
    return;
  }
  $("category").replaceChildren(
    h(
      "dl",
      { class: "facts" },
      fact(t("qa.contact"), h("span", { id: "category-contact" }, label(cat.contact, "code", titles))),
      fact(t("qa.primary"), h("span", { id: "category-primary" }, label(cat.primary, "code", titles))),
      fact(t("qa.language"), (cat.language || "—").toUpperCase()),
    ),
    cat.contact_cue ? h("p", { class: "cue" }, t("qa.contact_evidence"), quoteButton(cat.contact_cue)) : null,
    cat.outcomes.length
      ? h(
          "ul",
          { class: "outcomes", "aria-label": t("qa.outcomes") },
          cat.outcomes.map((o) =>
            h(
              "li",
              { dataset: { code: o.code } },
              h("strong", {}, label(o.code, "code", titles)),
              detailsText(o.details || {}, titles) ? h("span", { class: "details" }, ` — ${detailsText(o.details, titles)}`) : null,
              o.cue ? h("div", {}, quoteButton(o.cue)) : null,
            ),
          ),
        )
      : h("p", { class: "muted" }, t("qa.no_outcome")),
  );
}

function renderWarnings(d) {
  const warnings = d.warnings; // those standing at the end of the call (the server applies status changes)
  if (!warnings.length) {
    $("warnings").replaceChildren(h("p", { class: "muted" }, t("qa.no_warnings")));
    return;
  }
  $("warnings").replaceChildren(
    h(
      "ul",
      { class: "warnings" },
      warnings.map(({ payload: w, t: at }) =>
        h(
          "li",
          { class: `warning severity-${w.severity}` },
          h("span", { class: `badge severity-${w.severity}` }, label(w.severity, "severity")),
          " ",
          h("strong", {}, w.title || w.rule_id),
          h("span", { class: "muted" }, ` ${w.rule_id}${w.citation ? ` · ${w.citation}` : ""} · ${fmtClock(at)}`),
          w.evidence ? h("div", {}, quoteButton(w.evidence)) : null,
        ),
      ),
    ),
  );
}

function latestOverrides(overrides) {
  const last = {};
  for (const o of overrides) last[o.item_id] = o;
  return last;
}

function renderScorecard(d) {
  const card = d.scorecard;
  if (!card) {
    $("scorecard").replaceChildren(h("p", { class: "muted" }, t("qa.not_scored")));
    return;
  }
  const reviewed = latestOverrides(d.overrides);
  const sections = [];
  for (const item of card.items) {
    let section = sections.find((s) => s.id === item.section);
    if (!section) sections.push((section = { id: item.section, items: [] }));
    section.items.push(item);
  }
  $("scorecard").replaceChildren(
    h(
      "section",
      { class: "card-section", "aria-labelledby": "section-gate" },
      h("h4", { id: "section-gate" }, t("qa.gate"), h("span", { class: "section-score" }, gateText(card.compliance_fail))),
      card.gate.length
        ? h("ul", { class: "items" }, card.gate.map((g) => itemView(g, reviewed[g.id])))
        : h("p", { class: "muted" }, t("qa.gate_passed")),
    ),
    ...sections.map((s) => {
      const totals = card.sections[s.id] || { earned: 0, applicable: 0 };
      return h(
        "section",
        { class: "card-section", "aria-labelledby": `section-${s.id}` },
        h(
          "h4",
          { id: `section-${s.id}` },
          pick((card.section_titles || {})[s.id], pretty(s.id)),
          h("span", { class: "section-score" }, totals.applicable ? t("qa.section_points", totals) : t("qa.not_applicable")),
        ),
        h("ul", { class: "items" }, s.items.map((i) => itemView(i, reviewed[i.id]))),
      );
    }),
  );
}

function itemView(item, override) {
  const formId = `override-${item.id}`;
  const titleId = `item-${item.id}-title`;
  return h(
    "li",
    { class: `item result-${item.result}`, id: `item-${item.id}`, dataset: { item: item.id, result: item.result }, "aria-labelledby": titleId },
    h(
      "div",
      { class: "item-head" },
      h("span", { class: "item-title", id: titleId }, h("span", { class: "item-id" }, item.id), ` ${pick(item.titles, item.title)}`),
      item.points ? h("span", { class: "points" }, t("qa.points", { n: item.points })) : null,
      resultBadge(item.result),
    ),
    h("p", { class: "why" }, item.why),
    item.evidence.length ? h("ul", { class: "evidence", "aria-label": t("qa.evidence_for", { id: item.id }) }, item.evidence.map((q) => h("li", {}, quoteButton(q)))) : null,
    override
      ? h(
          "p",
          { class: "overridden" },
          h("strong", {}, t("qa.reviewed")),
          t("qa.reviewed_by", { old: resultLabel(override.old_result), new: resultLabel(override.new_result), reviewer: override.reviewer, at: fmtDateTime(override.at) }),
          h("q", { class: "comment" }, override.comment),
        )
      : null,
    h(
      "button",
      { type: "button", class: "override-toggle", "aria-expanded": "false", "aria-controls": formId, onclick: (e) => toggleForm(e.currentTarget, true) },
      t("qa.override"),
      h("span", { class: "visually-hidden" }, ` ${item.id}`),
    ),
    overrideForm(item, formId),
  );
}

function overrideForm(item, formId) {
  const name = `result-${item.id}`;
  const form = h(
    "form",
    { id: formId, class: "override-form", hidden: true, onsubmit: (e) => submitOverride(e, item) },
    h(
      "fieldset",
      {},
      h("legend", {}, t("qa.new_result", { id: item.id })),
      RESULTS.map((value) =>
        h("label", { class: "radio" }, h("input", { type: "radio", name, value, checked: value === item.result, required: true }), ` ${resultLabel(value)}`),
      ),
    ),
    h("label", { for: `${formId}-reviewer` }, t("qa.reviewer")),
    h("input", { id: `${formId}-reviewer`, name: "reviewer", required: true, maxlength: 128, autocomplete: "username" }),
    h("label", { for: `${formId}-comment` }, t("qa.reason")),
    h("textarea", { id: `${formId}-comment`, name: "comment", required: true, maxlength: 4000, rows: 3 }),
    h("p", { class: "form-error", role: "alert" }),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("qa.save")),
      h("button", { type: "button", onclick: () => toggleForm(form.parentElement.querySelector(".override-toggle"), false) }, t("qa.cancel")),
    ),
  );
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") toggleForm(form.parentElement.querySelector(".override-toggle"), false);
  });
  return form;
}

function toggleForm(toggle, open) {
  const form = $(toggle.getAttribute("aria-controls"));
  form.hidden = !open;
  toggle.setAttribute("aria-expanded", String(open));
  if (open) {
    form.elements.reviewer.value ||= localStorage.getItem(REVIEWER_KEY) || "";
    (form.querySelector("input[type=radio]:checked") || form.querySelector("input[type=radio]")).focus();
  } else {
    toggle.focus();
  }
}

async function submitOverride(event, item) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    result: new FormData(form).get(`result-${item.id}`),
    reviewer: form.elements.reviewer.value.trim(),
    comment: form.elements.comment.value.trim(),
  };
  const error = form.querySelector(".form-error");
  if (!body.reviewer || !body.comment) {
    error.textContent = t("qa.both_required");
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  const callId = state.detail.call.id;
  try {
    const out = await api(`calls/${encodeURIComponent(callId)}/scorecard/items/${encodeURIComponent(item.id)}/override`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    localStorage.setItem(REVIEWER_KEY, body.reviewer);
    const d = state.detail;
    d.scorecard = out.scorecard;
    d.overrides = [...d.overrides, out.override];
    Object.assign(d.call, { score: out.scorecard.score, band: out.scorecard.band, compliance_fail: out.scorecard.compliance_fail });
    state.rows = state.rows.map((r) => (r.id === callId ? { ...r, ...d.call } : r));
    renderSummary(d);
    renderScorecard(d);
    renderAudit(d.overrides);
    const o = out.override;
    say(t("qa.saved", { id: item.id, result: resultLabel(o.new_result), reviewer: o.reviewer, old: fmtScore(o.old_score), new: fmtScore(o.new_score) }));
    document.querySelector(`#item-${CSS.escape(item.id)} .override-toggle`).focus();
  } catch (err) {
    error.textContent = t("qa.not_saved", { message: err.message });
    submit.disabled = false;
  }
}

function renderAudit(overrides) {
  if (!overrides.length) {
    $("audit").replaceChildren(h("p", { class: "muted" }, t("qa.no_overrides")));
    return;
  }
  $("audit").replaceChildren(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "audit" },
        h("caption", { class: "visually-hidden" }, t("qa.audit_caption")),
        h("thead", {}, h("tr", {}, ["qa.when", "qa.reviewer", "qa.item", "qa.result", "qa.score", "qa.reason"].map((k) => h("th", { scope: "col" }, t(k))))),
        h(
          "tbody",
          {},
          overrides.map((o) =>
            h(
              "tr",
              {},
              h("td", { "data-label": t("qa.when") }, fmtDateTime(o.at)),
              h("td", { "data-label": t("qa.reviewer") }, o.reviewer),
              h("td", { "data-label": t("qa.item") }, o.item_id),
              h("td", { "data-label": t("qa.result") }, `${resultLabel(o.old_result)} → ${resultLabel(o.new_result)}`),
              h("td", { "data-label": t("qa.score") }, `${fmtScore(o.old_score)} → ${fmtScore(o.new_score)}`),
              h("td", { "data-label": t("qa.reason") }, o.comment),
            ),
          ),
        ),
      ),
    ),
  );
}

function renderEvents(events) {
  const counts = {};
  for (const e of events) counts[e.type] = (counts[e.type] || 0) + 1;
  $("events").replaceChildren(
    h(
      "ul",
      { class: "event-counts" },
      Object.entries(counts).map(([type, n]) => h("li", {}, h("code", {}, type), ` × ${n}`)),
    ),
  );
}

function renderTranscript(utterances) {
  if (!utterances.length) {
    $("transcript").replaceChildren(h("li", { class: "muted" }, t("qa.nobody_spoke")));
    return;
  }
  $("transcript").replaceChildren(
    ...utterances.map((u) =>
      h(
        "li",
        { id: `utt-${u.seq}`, class: `utt speaker-${u.speaker}`, tabindex: "-1", dataset: { start: u.start, end: u.end, speaker: u.speaker } },
        h("span", { class: `who who-${u.speaker}` }, label(u.speaker, "speaker")),
        " ",
        h("time", {}, fmtClock(u.start)),
        h("p", { lang: u.language || null }, u.text),
      ),
    ),
  );
}

/** Scroll the transcript to the utterance a quote comes from, highlight and focus it. */
function jumpTo(q) {
  const utts = [...document.querySelectorAll("#transcript .utt")];
  const at = (u) => ({ start: Number(u.dataset.start), end: Number(u.dataset.end) });
  const same = utts.filter((u) => !q.speaker || u.dataset.speaker === q.speaker);
  const target =
    same.find((u) => at(u).start - 0.05 <= q.start && q.start < at(u).end + 0.05) ||
    same.reduce((best, u) => (!best || Math.abs(at(u).start - q.start) < Math.abs(at(best).start - q.start) ? u : best), null);
  if (!target) return;
  for (const u of utts) u.classList.toggle("hit", u === target);
  const behavior = matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
  const panel = target.closest(".transcript-panel");
  if (panel.scrollHeight > panel.clientHeight && getComputedStyle(panel).overflowY === "auto") {
    // wide layout: the transcript scrolls on its own beside the scorecard, the page stays put
    const top = target.getBoundingClientRect().top - panel.getBoundingClientRect().top + panel.scrollTop;
    panel.scrollTo({ top: top - (panel.clientHeight - target.offsetHeight) / 2, behavior });
  } else {
    const box = target.getBoundingClientRect();
    if (box.top < 0 || box.bottom > innerHeight) target.scrollIntoView({ block: "center", behavior });
  }
  target.focus({ preventScroll: true });
}

// ---------- routing and start ----------

function showList() {
  $("detail-view").hidden = true;
  $("list-view").hidden = false;
  state.detail = null;
  document.title = t("qa.title");
}

async function route() {
  const id = hashCallId();
  if (id) {
    document.title = t("qa.title_call", { id });
    await openCall(id);
    return;
  }
  showList();
  await loadCalls();
  const opened = state.lastOpened && document.querySelector(`#calls-body tr[data-call="${CSS.escape(state.lastOpened)}"] a`);
  (opened || $("list-title")).focus();
}

/** Redraw what the page built in the (new) language; the open call keeps its place. */
function redraw() {
  renderCalls();
  const id = hashCallId();
  document.title = id ? t("qa.title_call", { id }) : t("qa.title");
  if (state.detail) {
    $("call-title").textContent = t("qa.call_id", { id: state.detail.call.id });
    renderDetail();
  }
}

function start() {
  startLanguage(browserLanguage());
  onLanguage(redraw);
  restoreFilters();
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    loadCalls();
  });
  $("filters").addEventListener("reset", () => setTimeout(loadCalls));
  $("more").addEventListener("click", () => loadCalls({ append: true }));
  window.addEventListener("hashchange", route);
  renderHead();
  if (hashCallId()) {
    route();
  } else {
    showList();
    loadCalls();
  }
}

start();
