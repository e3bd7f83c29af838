// QA review page: list scored calls, open one (transcript beside its scorecard), override an item.
import { browserLanguage, onLanguage, startLanguage, t, tn } from "./i18n.js";
import { closeCall, openCall, openedCall, renderDetail } from "./qa_call.js";
import { $, API, TOKEN, api, bandBadge, fmtClock, fmtDateTime, fmtScore, gateText, h, label, say, showError } from "./qa_util.js";

const PAGE_SIZE = 100;
const FILTERS = ["category", "band", "compliance_fail", "agent", "date_from", "date_to"];
const COLUMNS = [
  { key: "started_at", words: "qa.started", cell: (c) => fmtDateTime(c.started_at) },
  { key: "id", words: "qa.call", cell: (c) => h("a", { href: `#call=${encodeURIComponent(c.id)}` }, c.id) },
  { key: "channel", words: "qa.channel", cell: (c) => t(`channel.${c.channel || "voice"}`) },
  { key: "agent_id", words: "qa.agent", cell: (c) => c.agent_id || "—" },
  { key: "duration", words: "qa.duration", cell: (c) => fmtClock(c.duration) },
  { key: "score", words: "qa.score", cell: (c) => fmtScore(c.score) },
  { key: "band", words: "qa.band_col", cell: (c) => bandBadge(c.band) },
  { key: "primary_category", words: "qa.category", cell: (c) => categoryCell(c) },
  { key: "compliance_fail", words: "qa.compliance", cell: (c) => gateText(c.compliance_fail) },
];


const state = { rows: [], offset: 0, more: false, sort: { key: "started_at", dir: "descending" }, lastOpened: null, ticket: 0 };

function categoryCell(c) {
  if (!c.contact && !c.primary_category) return "—";
  return [label(c.primary_category || c.contact, "code"), c.primary_category ? h("span", { class: "muted" }, ` · ${label(c.contact, "code")}`) : null];
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

const hashCallId = () => {
  const m = location.hash.match(/^#call=(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
};


// ---------- routing and start ----------

function showList() {
  $("detail-view").hidden = true;
  $("list-view").hidden = false;
  closeCall();
  document.title = t("qa.title");
}

async function route() {
  const id = hashCallId();
  if (id) {
    document.title = t("qa.title_call", { id });
    state.lastOpened = id;
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
  if (openedCall()) {
    $("call-title").textContent = t("qa.call_id", { id: openedCall().call.id });
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
  document.addEventListener("qa:call-changed", ({ detail: call }) => {
    state.rows = state.rows.map((r) => (r.id === call.id ? { ...r, ...call } : r));
  });
  renderHead();
  if (hashCallId()) {
    route();
  } else {
    showList();
    loadCalls();
  }
}

start();
