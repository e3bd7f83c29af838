// Insights page: trends and mixes over the filtered calls drawn as SVG, each with its table and CSV,
// and an agent's coaching card with notes. Numbers from GET ../api/insights (a `token` query parameter
// is sent as a Bearer token).
import { barChart, heatmap, lineChart } from "./insights_charts.js";
import { browserLanguage, onLanguage, pick, startLanguage, t } from "./i18n.js";
import { $, API, TOKEN, api, fmtClock, fmtDateTime, h, label, say, showError } from "./qa_util.js";

const FILTERS = ["date_from", "date_to", "agent", "team", "campaign", "language", "channel", "group"];
const VIEWS = [
  { name: "score_trend", kind: "line", value: "avg_score", max: 100 },
  { name: "humanisation_trend", kind: "line", value: "humanisation", max: 100 },
  { name: "humanisation_agents", kind: "bars", key: "agent", value: "humanisation", max: 100 },
  { name: "breaches_by_rule", kind: "bars", key: "rule", value: "breaches" },
  { name: "breach_heatmap", kind: "heatmap" },
  { name: "promise_trend", kind: "line", value: "promise_rate", max: 1 },
  { name: "outcome_mix", kind: "bars", key: "code", value: "calls", code: true },
  { name: "category_mix", kind: "bars", key: "category", value: "calls", code: true },
  { name: "stress_hangups", kind: "bars", key: "stress", value: "hangup_rate", max: 1, words: "ins.stress" },
  { name: "agent_exposure", kind: "bars", key: "agent", value: "hard_calls" },
];
const state = { data: null, card: null };

function localMidnight(day, plusDays = 0) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays);
}

/** API query parameters from the form (dates are local days, "to" inclusive), with the page's token. */
function params(extra = {}, withToken = false) {
  const data = new FormData($("filters"));
  const out = new URLSearchParams();
  for (const k of FILTERS) {
    const v = String(data.get(k) || "").trim();
    if (!v) continue;
    if (k === "date_from") out.set(k, localMidnight(v).toISOString());
    else if (k === "date_to") out.set(k, localMidnight(v, 1).toISOString());
    else out.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) out.set(k, v);
  if (withToken && TOKEN) out.set("token", TOKEN);
  return out;
}

/** A column's heading: the page's words, else a humanisation component's title, else the name. */
function heading(column) {
  const key = `ins.col.${column}`;
  if (t(key) !== key) return t(key);
  return pick(state.data?.humanisation?.components?.[column]?.title, column);
}

function cellText(view, column, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (column === view.key && view.code) return label(value, "code");
  if (column === "stress") return t(`ins.stress.${value}`);
  return typeof value === "number" ? String(Math.round(value * 1000) / 1000) : String(value);
}

function table(view, rows) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return h("table", {},
    h("caption", { class: "visually-hidden" }, t(`ins.view.${view.name}`)),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, heading(c))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", {}, cellText(view, c, r[c])))))));
}

function chart(view, rows) {
  const title = t(`ins.view.${view.name}`);
  const desc = rows.length ? t(`ins.desc.${view.name}`) : t("ins.no_data");
  if (view.kind === "line") return lineChart(rows.map((r) => [r.period, r[view.value]]), { title, desc, max: view.max });
  if (view.kind === "bars") {
    return barChart(rows.map((r) => [cellText(view, view.key, r[view.key]), r[view.value]]), { title, desc, max: view.max });
  }
  const agents = [...new Set(rows.map((r) => r.agent))];
  const rules = [...new Set(rows.map((r) => r.rule))];
  const counts = new Map(rows.map((r) => [`${r.agent}\u0000${r.rule}`, r.breaches]));
  return heatmap(agents, rules, (a, r) => counts.get(`${a}\u0000${r}`) || 0, { title, desc });
}

function renderView(view, rows) {
  const id = `view-${view.name}`;
  const csv = new URL("insights", API);
  csv.search = params({ format: "csv", view: view.name }, true).toString();
  return h("section", { class: "panel", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, t(`ins.view.${view.name}`)),
    chart(view, rows),
    h("div", { class: "panel-foot" },
      h("details", {}, h("summary", {}, t("ins.table")), h("div", { class: "table-wrap" }, table(view, rows))),
      h("a", { class: "button-link", href: csv.href, download: `insights-${view.name}.csv` }, t("qa.csv"))));
}

function render() {
  if (!state.data) return;
  $("views").replaceChildren(...VIEWS.map((v) => renderView(v, state.data.views[v.name] || [])));
  if (state.card) renderCard(state.card);
}

async function load() {
  showError("");
  say(t("ins.loading"));
  try {
    state.data = await api(`insights?${params()}`);
    render();
    say(t("ins.loaded"));
  } catch (err) {
    showError(err.message);
    say("");
  }
}

// ---------- coaching card ----------

function quoteLine(q) {
  const when = q.recording
    ? h("a", { href: `${q.recording.url}${TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : ""}#t=${q.recording.start}` },
        t("ins.listen", { at: fmtClock(q.recording.start) }))
    : h("span", { class: "muted" }, fmtClock(q.start));
  return h("blockquote", { class: "quote" }, `“${q.quote}” `, h("a", { href: `qa.html#call=${encodeURIComponent(q.call_id)}` }, q.call_id),
    " · ", when);
}

function failures(kind, rows) {
  return h("section", { "aria-labelledby": `card-${kind}` },
    h("h3", { id: `card-${kind}` }, t(`ins.card.${kind}`)),
    rows.length ? h("ul", {}, rows.map((r) => h("li", {},
      h("strong", {}, r.code), r.title ? ` ${pick(r.title, "")}` : "", " · ", t("ins.fails", { n: r.fails, calls: r.calls }),
      r.quotes.map(quoteLine)))) : h("p", { class: "muted" }, t("ins.none")));
}

function windowFacts(w) {
  return h("dl", {}, ["calls", "avg_score", "humanisation", "fails_per_call"].flatMap((k) =>
    [h("dt", {}, heading(k)), h("dd", {}, w[k] === null || w[k] === undefined ? "—" : String(w[k]))]));
}

function renderCard(card) {
  const trend = card.since_last_note;
  $("card").replaceChildren(
    h("h3", {}, t("ins.card.period", { agent: card.agent })), windowFacts(card.period),
    failures("items", card.items), failures("rules", card.rules),
    h("h3", {}, t("ins.card.trend")),
    trend ? h("div", { class: "trend" },
      h("div", {}, h("h4", {}, t("ins.card.before", { at: fmtDateTime(trend.note_at) })), windowFacts(trend.before)),
      h("div", {}, h("h4", {}, t("ins.card.since")), windowFacts(trend.since)))
      : h("p", { class: "muted" }, t("ins.card.no_notes")),
    h("h3", {}, t("ins.card.notes")),
    card.notes.length ? h("ul", {}, card.notes.map((n) => h("li", {}, h("strong", {}, n.author), ` · ${fmtDateTime(n.at)}: `, n.text)))
      : h("p", { class: "muted" }, t("ins.none")));
  $("note-form").hidden = false;
}

async function showCard(agent) {
  showError("");
  try {
    state.card = await api(`insights/agents/${encodeURIComponent(agent)}/coaching?${params()}`);
    renderCard(state.card);
    say(t("ins.card.loaded", { agent }));
  } catch (err) {
    showError(err.message);
  }
}

async function saveNote(event) {
  event.preventDefault();
  const agent = state.card?.agent;
  const text = $("note-text").value.trim();
  if (!agent || !text) return;
  try {
    await api(`insights/agents/${encodeURIComponent(agent)}/coaching/notes`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    });
    $("note-text").value = "";
    await showCard(agent);
    say(t("ins.note_saved"));
  } catch (err) {
    showError(err.message);
  }
}

startLanguage(browserLanguage());
onLanguage(render);
$("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
$("filters").addEventListener("reset", () => setTimeout(load));
$("coach-form").addEventListener("submit", (e) => { e.preventDefault(); showCard($("c-agent").value.trim()); });
$("note-form").addEventListener("submit", saveNote);
load();
