// The overlay's after-call summary: fetched once the call is scored, one line per finding in the call's
// language, each with where it came from (the moment it was heard, or the event); the agent may rewrite
// it (the service keeps every edit with who and when). Section names follow the reader's language.
import { apiFetch, el, fmtDuration } from "./common.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let url = null;
let summary = null;
let editing = false;

function source(line) {
  const s = line.source;
  if (!s) return "";
  if (s.kind === "utterance") return t("summary.heard", { who: t(`speaker.${s.speaker}`), at: fmtDuration(s.start) });
  return t(s.kind === "fact" ? "summary.from_facts" : "summary.from_event", { seq: s.seq });
}

const shownLines = () => summary.edited?.lines ?? summary.lines;

/** Fetch the ended call's summary and show it. */
export async function loadSummary(callId) {
  url = `/calls/${encodeURIComponent(callId)}/summary`;
  $("summary-edit").onclick = () => { editing = true; redrawSummary(); };
  $("summary-save").onclick = save;
  try {
    summary = await (await apiFetch(url)).json();
  } catch {
    summary = null; // not scored here: the panel stays hidden
  }
  redrawSummary();
}

async function save() {
  const lines = shownLines().map((line, i) => ({ section: line.section,
    text: $("summary").querySelectorAll(".summary-edit")[i].value.trim() })).filter((line) => line.text);
  summary = await (await apiFetch(url, { method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ lines }) })).json();
  editing = false;
  redrawSummary();
}

function item(line) {
  const text = editing
    ? el("textarea", { class: "summary-edit", rows: 2, "aria-label": t(`summary.${line.section}`) }, line.text)
    : el("span", { class: "summary-text", lang: summary.language, text: line.text });
  return el("li", { "data-section": line.section, "data-seq": line.source?.seq },
    el("span", { class: "chip", text: t(`summary.${line.section}`) }), " ", text, " ",
    el("span", { class: "muted small", text: source(line) }));
}

export function redrawSummary() {
  $("summary-panel").hidden = !summary || (summary.lines.length === 0 && !summary.edited);
  if (!summary) return;
  $("summary").replaceChildren(...shownLines().map(item));
  $("summary-note").textContent = summary.edited ? t("summary.edited", { by: summary.edited.by }) : "";
  $("summary-edit").hidden = editing;
  $("summary-save").hidden = !editing;
}
