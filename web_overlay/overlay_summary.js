// The overlay's after-call summary: fetched once the call is scored, one line per finding in the call's
// language, each with where it came from (the moment it was heard, or the event); section names follow
// the reader's language.
import { apiFetch, el, fmtDuration } from "./common.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let summary = null;

function source(line) {
  const s = line.source;
  if (s.kind === "utterance") return t("summary.heard", { who: t(`speaker.${s.speaker}`), at: fmtDuration(s.start) });
  return t(s.kind === "fact" ? "summary.from_facts" : "summary.from_event", { seq: s.seq });
}

/** Fetch the ended call's summary and show it. */
export async function loadSummary(callId) {
  try {
    summary = await (await apiFetch(`/calls/${encodeURIComponent(callId)}/summary`)).json();
  } catch {
    summary = null; // not scored here (e.g. an agent without access): the panel stays hidden
  }
  redrawSummary();
}

export function redrawSummary() {
  $("summary-panel").hidden = !summary || summary.lines.length === 0;
  if (!summary) return;
  $("summary").replaceChildren(...summary.lines.map((line) => el("li",
    { "data-section": line.section, "data-seq": line.source.seq },
    el("span", { class: "chip", text: t(`summary.${line.section}`) }), " ",
    el("span", { class: "summary-text", lang: summary.language, text: line.text }), " ",
    el("span", { class: "muted small", text: source(line) }))));
}
