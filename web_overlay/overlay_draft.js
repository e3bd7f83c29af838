// The overlay's reply box for a written conversation (chat, WhatsApp, SMS, e-mail): as the agent types, the
// unsent text goes to POST /conversations/{id}/draft and the warnings it would raise show under the box,
// with what the prompt cards suggest for the debtor's last message. Nothing is stored.
import { apiFetch, el } from "./common.js";
import { t, tn } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const PAUSE_MS = 200;
let conversation = null;
let channel = null;
let timer = null;
let asked = 0;
let answer = null;
let failure = null;

/** Show the reply box for conversation `id` on `kind` (chat, whatsapp, sms, email). */
export function startDraft(id, kind) {
  if (conversation) return;
  conversation = id;
  channel = kind;
  $("draft-panel").hidden = false;
  for (const audioOnly of ["style-signal", "stress-signal", "abandon-signal"]) $(audioOnly).hidden = true;
  $("draft").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(check, PAUSE_MS);
  });
  redrawDraft();
}

async function check() {
  const n = ++asked;
  try {
    const response = await apiFetch(`/conversations/${encodeURIComponent(conversation)}/draft`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: $("draft").value }),
    });
    const body = await response.json();
    if (n !== asked) return; // a later keystroke's answer supersedes this one
    answer = body;
    failure = null;
  } catch (error) {
    failure = error.message;
  }
  redrawDraft();
}

/** Redraw the reply box in the page's (new) language. */
export function redrawDraft() {
  if (!conversation) return;
  $("draft-channel").textContent = t(`channel.${channel}`);
  const warnings = answer?.warnings ?? [];
  const suggestions = answer?.suggestions ?? [];
  $("draft-state").textContent = failure ? t("draft.failed", { message: failure })
    : !answer || !$("draft").value.trim() ? "" : warnings.length ? tn("draft.warnings", warnings.length) : t("draft.clean");
  $("draft-warnings").replaceChildren(...warnings.map((w) => el("li", { class: `draft-warning ${w.severity}` },
    el("strong", { text: `${w.rule_id} ` }), w.title, w.evidence ? ` · “${w.evidence.quote}”` : "")));
  $("draft-suggestions-h").hidden = suggestions.length === 0;
  $("draft-suggestions").replaceChildren(...suggestions.map((c) => el("li", {},
    el("strong", { text: `${c.title}: ` }), c.say.join(" · "))));
}
