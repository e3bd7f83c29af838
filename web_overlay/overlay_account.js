// The overlay's account panel: the creditor's facts in force (account.updated), the fields that just
// changed highlighted, and what changed in words; drawn again in the reader's language.
import { el } from "./common.js";
import { pick, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const FIELDS = ["balance", "amount_past_due", "last_payment", "payments_since_extract", "plan", "dispute_open",
  "litigation_authorised", "time_barred", "cease_contact_on_file", "attorney_on_file", "vulnerability",
  "allowed_offers", "creditor", "original_creditor"];
const STOP_FLAGS = new Set(["dispute_open", "cease_contact_on_file", "attorney_on_file"]);
let latest = null;

const money = (value, currency) => (value === undefined || value === null ? "–"
  : `${Number(value).toFixed(2)} ${currency || ""}`.trim());

function payment(p, currency) {
  return [money(p.amount, currency), p.date, p.channel].filter(Boolean).join(" · ");
}

/** A fact's value as the agent reads it. */
function shown(field, value, currency) {
  switch (field) {
    case "balance":
    case "amount_past_due": return money(value, currency);
    case "last_payment": return payment(value, currency);
    case "payments_since_extract": return value.map((p) => payment(p, currency)).join("; ");
    case "plan": return [t(`account.plan.${value.status}`),
      value.instalment !== undefined && money(value.instalment, currency), value.next_due].filter(Boolean).join(" · ");
    case "allowed_offers": return t("account.offers", { min: money(value.min_instalment, currency),
      months: value.max_term_months ?? "–", discount: value.max_discount_pct ?? "–" });
    case "vulnerability": return value.join(", ");
    default: return typeof value === "boolean" ? t(value ? "account.yes" : "account.no") : String(value);
  }
}

function row(field, facts, changed) {
  const stop = STOP_FLAGS.has(field) && facts[field] === true;
  return el("div", { class: ["fact", changed.has(field) && "changed", stop && "stop"].filter(Boolean).join(" "),
    "data-field": field },
  el("dt", { text: t(`account.${field}`) }), el("dd", { text: shown(field, facts[field], facts.currency) }));
}

/** An account.updated event: the panel shows its facts and changes. */
export function account(event) {
  latest = event;
  redrawAccount();
}

export function redrawAccount() {
  $("account-panel").hidden = latest === null;
  if (latest === null) return;
  const changed = new Set(latest.changed);
  const fields = FIELDS.filter((f) => f in latest.facts);
  $("account-facts").replaceChildren(...fields.map((f) => row(f, latest.facts, changed)));
  $("account-changes").replaceChildren(...latest.changes.map((c) => el("li", { text: pick(c.text) })));
}
