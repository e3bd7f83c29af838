// QA page, one call: its humanisation index, each component with its weight and the evidence that set it
// (GET ../api/insights/calls/{id}/humanisation).
import { pick, t } from "./i18n.js";
import { $, api, fmtClock, h } from "./qa_util.js";

const cache = { id: null, data: null };

function evidence(e) {
  const what = e.source === "item" ? t("hum.item", { id: e.id }) : e.source === "rule"
    ? (e.id === "none" ? t("hum.no_rule") : t("hum.rule", { id: e.id })) : t("hum.style");
  const quote = e.quote?.quote ? [" · “", e.quote.quote, "” ", h("span", { class: "muted" }, fmtClock(e.quote.start))] : [];
  return h("li", {}, `${what}: ${Math.round(e.value * 100)} %`, ...quote);
}

function draw(data) {
  const rows = Object.entries(data.components).map(([name, c]) => h("li", {},
    h("strong", {}, pick(c.title, name)), ` · ${c.value === null ? t("hum.na") : c.value} · ${t("hum.weight", { w: c.weight })}`,
    c.evidence.length ? h("ul", {}, c.evidence.map(evidence)) : null));
  $("humanisation").replaceChildren(
    h("p", {}, h("strong", {}, t("hum.index")), ` ${data.index === null ? t("hum.na") : data.index} / 100`),
    h("ul", {}, rows));
}

/** Show the humanisation of call `id` under #humanisation (fetched once per call). */
export async function renderHumanisation(id) {
  if (cache.id === id && cache.data) return draw(cache.data);
  $("humanisation").replaceChildren(h("p", { class: "muted" }, t("hum.loading")));
  try {
    cache.data = await api(`insights/calls/${encodeURIComponent(id)}/humanisation`);
    cache.id = id;
    draw(cache.data);
  } catch (err) {
    $("humanisation").replaceChildren(h("p", { class: "muted" }, err.status === 404 ? t("hum.not_scored") : err.message));
  }
}
