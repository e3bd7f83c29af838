// QA page, one call: which transcript the score was computed from (live finals, or the recording transcribed
// again after the call), the post-call transcript's state, and a switch between the two transcripts.
import { t } from "./i18n.js";
import { $, h, label } from "./qa_util.js";

const shown = { callId: null, source: null }; // the transcript a reviewer chose for the open call

/** The transcript shown for call detail `d`: the one the score used unless the reviewer switched. */
function shownSource(d) {
  if (shown.callId !== d.call.id) Object.assign(shown, { callId: d.call.id, source: d.transcript });
  return shown.source;
}

/** The utterances to draw for call detail `d`. */
export function shownUtterances(d) {
  return shownSource(d) === "post_call" && d.post_call ? d.post_call.utterances : d.utterances;
}

function switchTo(source, redraw) {
  shown.source = source;
  redraw();
  $("transcript-switch")?.focus();
}

function stateText(pc) {
  if (!pc) return null;
  const reason = label(pc.reason, "pc.reason");
  const models = [...new Set(Object.values(pc.settings.models || {}))].join(", ");
  return t(`pc.state.${pc.status}`, { pct: Math.round(pc.progress * 100), reason, models, beam: pc.settings.beam });
}

/** Draw the source line (and the switch) for call detail `d`; `redraw` draws the transcript again. */
export function renderTranscriptSource(d, redraw) {
  const pc = d.post_call;
  const which = (source) => t(source === "post_call" ? "pc.post_call" : "pc.live");
  const other = shownSource(d) === "post_call" ? "live" : "post_call";
  const toggle =
    pc && pc.status === "done"
      ? h(
          "button",
          { type: "button", id: "transcript-switch", onclick: () => switchTo(other, redraw) },
          t(other === "post_call" ? "pc.show_post_call" : "pc.show_live"),
        )
      : null;
  $("transcript-source").replaceChildren(
    h("p", { id: "transcript-used", dataset: { transcript: d.transcript } }, h("strong", {}, t("pc.scored_from", { which: which(d.transcript) }))),
    pc ? h("p", { id: "post-call-state", class: "muted", dataset: { status: pc.status } }, stateText(pc)) : null,
    toggle ? h("p", {}, toggle, " ", h("span", { id: "transcript-showing", role: "status" }, t("pc.showing", { which: which(shown.source) }))) : null,
  );
}
