// QA page helpers: DOM building, formatting, the status line and the QA REST API under ../api/
// (a `token` query parameter is sent as a Bearer token).
import { pick, t } from "./i18n.js";

export const API = new URL("../api/", location.href);
export const TOKEN = new URLSearchParams(location.search).get("token");
export const RESULTS = ["pass", "fail", "na"];
export const resultLabel = (result) => (RESULTS.includes(result) ? t(`result.${result}`) : result);
export const $ = (id) => document.getElementById(id);

// ---------- helpers ----------

/** A DOM element: h("a", {href: "#x", class: "y"}, "text", child...). Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const pretty = (code) => (code ? code.charAt(0).toUpperCase() + code.slice(1).replaceAll("_", " ") : "—");
/** A code's words: from the page's words (`prefix.code`), else the service's titles, else the code made readable. */
export function label(code, prefix, titles = {}) {
  if (!code) return "—";
  const key = `${prefix}.${code}`;
  const own = t(key);
  return own !== key ? own : pick(titles[code], pretty(code));
}

export function fmtClock(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function fmtDateTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(document.documentElement.lang, { dateStyle: "medium", timeStyle: "short" });
}

export const fmtScore = (score) => (score === null || score === undefined ? "—" : String(score));
export const gateText = (failed) => (failed === null || failed === undefined ? "—" : t(failed ? "qa.failed" : "qa.passed"));

export function bandBadge(band) {
  return h("span", { class: `badge band-${band || "none"}` }, label(band, "band"));
}

export function resultBadge(result) {
  return h("span", { class: `badge result-${result}` }, resultLabel(result));
}

export function say(message) {
  $("status").textContent = message;
}

export function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(detail) {
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

/** fetch() under the API with the page's token; JSON back, or an ApiError with the server's reason. */
export async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  if (TOKEN) headers.set("Authorization", `Bearer ${TOKEN}`);
  let resp;
  try {
    resp = await fetch(new URL(path, API), { ...init, headers });
  } catch (err) {
    throw new ApiError(0, t("qa.unreachable", { message: err.message }));
  }
  if (!resp.ok) {
    let reason = resp.statusText;
    try {
      reason = describe((await resp.json()).detail);
    } catch {
      /* not JSON: keep the status text */
    }
    if (resp.status === 401 || resp.status === 403) reason = t("qa.not_authorised", { reason });
    throw new ApiError(resp.status, reason);
  }
  return resp.json();
}
