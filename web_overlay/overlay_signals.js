// The overlay's call signals: negotiation style, debtor stress and sentiment, hang-up risk; each drawn
// from its latest event, and drawn again in the reader's language when it changes.
import { el, sparkline } from "./common.js";
import { language, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const sentiment = []; // the debtor's scores, in order
const latest = { style: null, stress: null, sentiment: null, abandon: null };

/** Reasons in the page's language: each reason's text in it, else the event's own (the call's language). */
function reasonItems(event) {
  const details = event.reason_details || [];
  return event.reasons.map((text, i) => el("li", { text: details[i]?.text[language()] ?? text }));
}

/** A chip, meter and text for a signal with no reading yet. */
function waiting(chipId, meterId) {
  $(chipId).textContent = t("overlay.waiting");
  if (meterId) $(meterId).setAttribute("aria-valuetext", t("overlay.no_reading"));
}

export function style(event) {
  latest.style = event;
  if (!event) return waiting("style-band", "style-gauge");
  const label = t(`style.${event.band}`);
  const chip = $("style-band");
  chip.textContent = label;
  chip.dataset.band = event.band;
  const gauge = $("style-gauge");
  gauge.setAttribute("aria-valuenow", event.index.toFixed(2));
  gauge.setAttribute("aria-valuetext", t("overlay.gauge_text", { label, index: event.index.toFixed(2) }));
  const marker = $("style-marker");
  marker.hidden = false;
  marker.style.left = `${((event.index + 1) / 2) * 100}%`;
  $("style-reasons").replaceChildren(...reasonItems(event));
}

export function stress(event) {
  if (event && event.speaker !== "debtor") return;
  latest.stress = event;
  if (!event) return waiting("stress-value", "stress-bar");
  const level = Math.round(event.level);
  $("stress-value").textContent = `${level} / 100`;
  const bar = $("stress-bar");
  bar.setAttribute("aria-valuenow", String(level));
  bar.setAttribute("aria-valuetext", t("overlay.of_100", { level }));
  bar.dataset.level = level >= 70 ? "high" : level >= 40 ? "elevated" : "low";
  $("stress-fill").style.width = `${level}%`;
  const trend = event.trend;
  const n = Math.abs(trend).toFixed(0);
  $("stress-trend").textContent = Math.abs(trend) < 1 ? t("overlay.steady") : t(trend > 0 ? "overlay.rising" : "overlay.falling", { n });
}

export function sentimentScore(event) {
  if (event.speaker !== "debtor") return;
  sentiment.push(event.score);
  renderSentiment(event);
}

function renderSentiment(event) {
  latest.sentiment = event;
  if (!event) return waiting("sentiment-value");
  $("sentiment-value").textContent = `${t(`sentiment.${event.label}`)} (${event.score >= 0 ? "+" : ""}${event.score.toFixed(2)})`;
  $("sentiment-value").dataset.label = event.label;
  const recent = sentiment.slice(-30);
  const change = recent.length > 1 ? recent[recent.length - 1] - recent[0] : 0;
  const trend = t(change > 0.2 ? "trend.improving" : change < -0.2 ? "trend.worsening" : "trend.steady");
  $("sentiment-spark").replaceChildren(sparkline(recent, {
    min: -1, max: 1, width: 220, height: 36, label: t("overlay.sentiment_spark", { n: recent.length, trend }),
  }));
}

export function abandon(event) {
  latest.abandon = event;
  if (!event) return waiting("abandon-value", "abandon-bar");
  const pct = Math.round(event.risk * 100);
  const level = event.risk >= 0.5 ? "high" : event.risk >= 0.3 ? "elevated" : "low";
  $("abandon-signal").dataset.level = level;
  $("abandon-value").textContent = `${pct}%${level === "high" ? t("overlay.act_now") : ""}`;
  const bar = $("abandon-bar");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.setAttribute("aria-valuetext", t("overlay.risk_text", { pct, level: t(`level.${level}`) }));
  $("abandon-fill").style.width = `${pct}%`;
  $("abandon-reasons").replaceChildren(...reasonItems(event));
}

/** Draw every signal again from its latest event (or as waiting), e.g. in a new language. */
export function redrawSignals() {
  style(latest.style);
  stress(latest.stress);
  renderSentiment(latest.sentiment);
  abandon(latest.abandon);
}
