// QA page, one call: its transcript beside its category, warnings and scorecard; a reviewer overrides an item.
import { pick, t } from "./i18n.js";
import {
  $, api, bandBadge, fmtClock, fmtDateTime, fmtScore, gateText, h, label, pretty, resultBadge, resultLabel, RESULTS, say, showError,
} from "./qa_util.js";
import { renderHumanisation } from "./qa_humanisation.js";
import { renderAfterCallSummary } from "./qa_summary.js";
import { renderTranscriptSource, shownUtterances } from "./qa_transcript.js";

const REVIEWER_KEY = "recobra.qa.reviewer";
const current = { detail: null }; // the open call as the API gave it, with overrides applied

/** The open call's record (null when none is open). */
export const openedCall = () => current.detail;

/** Forget the open call (the list is shown). */
export function closeCall() {
  current.detail = null;
}

/** Show the call `id`: fetch it, draw it, focus its title. */
export async function openCall(id) {
  $("list-view").hidden = true;
  $("detail-view").hidden = false;
  $("call-title").textContent = t("qa.call_id", { id });
  for (const part of ["call-summary", "category", "warnings", "scorecard", "audit", "events", "transcript", "transcript-source"]) $(part).replaceChildren();
  say(t("qa.loading_call", { id }));
  try {
    current.detail = await api(`calls/${encodeURIComponent(id)}`);
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

export function renderDetail() {
  const d = current.detail;
  renderSummary(d);
  renderCategory(d.category);
  renderWarnings(d);
  renderScorecard(d);
  renderHumanisation(d.call.id);
  renderAfterCallSummary(d.call.id, jumpTo);
  renderAudit(d.overrides);
  renderEvents(d.events);
  drawTranscript(d);
}

function drawTranscript(d) {
  renderTranscriptSource(d, () => drawTranscript(d));
  renderTranscript(shownUtterances(d));
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
    h("p", { class: "why" }, pick(item.whys, item.why)),
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
  const callId = current.detail.call.id;
  try {
    const out = await api(`calls/${encodeURIComponent(callId)}/scorecard/items/${encodeURIComponent(item.id)}/override`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    localStorage.setItem(REVIEWER_KEY, body.reviewer);
    const d = current.detail;
    d.scorecard = out.scorecard;
    d.overrides = [...d.overrides, out.override];
    Object.assign(d.call, { score: out.scorecard.score, band: out.scorecard.band, compliance_fail: out.scorecard.compliance_fail });
    document.dispatchEvent(new CustomEvent("qa:call-changed", { detail: d.call }));
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
