// QA page, one call: its after-call summary (GET /calls/{id}/summary). The lines as generated, in the call's
// language, each with where it came from (a moment of the transcript, jumped to on click, or an event); and
// when the agent or a reviewer rewrote it, the rewrite in force with who and when. Section names follow the
// reader's language.
import { t } from "./i18n.js";
import { $, api, fmtClock, fmtDateTime, h } from "./qa_util.js";

const cache = { id: null, data: null };

function source(line, jump) {
  const s = line.source;
  if (!s) return null;
  if (s.kind === "utterance") {
    return h("button", { type: "button", class: "quote", onclick: () => jump(s) },
      t("summary.heard", { who: t(`speaker.${s.speaker}`), at: fmtClock(s.start) }));
  }
  return h("span", { class: "muted" }, t(s.kind === "fact" ? "summary.from_facts" : "summary.from_event", { seq: s.seq }));
}

function list(lines, language, jump) {
  return h("ul", { class: "acs-lines" }, lines.map((line) => h("li", { "data-section": line.section },
    h("span", { class: "badge" }, t(`summary.${line.section}`)), " ",
    h("span", { class: "acs-text", lang: language }, line.text), " ",
    jump ? source(line, jump) : null)));
}

function draw(data, jump) {
  const parts = [];
  if (data.edited) {
    parts.push(h("p", { class: "acs-edited" }, t("qa.summary_edited", { by: data.edited.by, at: fmtDateTime(data.edited.at) })),
      list(data.edited.lines, data.language, null),
      h("h4", {}, t("qa.summary_generated")));
  }
  parts.push(data.lines.length ? list(data.lines, data.language, jump) : h("p", { class: "muted" }, t("qa.summary_empty")));
  $("acsummary").replaceChildren(...parts);
}

/** Show the after-call summary of call `id` under #acsummary (fetched once per call); `jump(quote)` shows
 * where a line's words were said in the transcript. */
export async function renderAfterCallSummary(id, jump) {
  if (cache.id === id && cache.data) return draw(cache.data, jump);
  $("acsummary").replaceChildren(h("p", { class: "muted" }, t("qa.summary_loading")));
  try {
    cache.data = await api(`../calls/${encodeURIComponent(id)}/summary`);
    cache.id = id;
    draw(cache.data, jump);
  } catch (err) {
    $("acsummary").replaceChildren(h("p", { class: "muted" }, err.status === 409 ? t("qa.summary_not_scored") : err.message));
  }
}
