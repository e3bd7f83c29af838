// The pages' words in the reader's language: English or Spanish from words.js, the reader's choice
// remembered in localStorage; until they choose, the call's language (overlay) or the browser's.
import WORDS from "./words.js";

const STORE_KEY = "recobra.language";
const listeners = new Set();
let current = null;

/** "es-MX" -> "es" when the pages have that language, else null. */
function supported(code) {
  const base = String(code || "").toLowerCase().split(/[-_]/)[0];
  return Object.hasOwn(WORDS, base) ? base : null;
}

/** The first of the browser's languages the pages have, else English. */
export function browserLanguage() {
  for (const code of navigator.languages || [navigator.language]) {
    const lang = supported(code);
    if (lang) return lang;
  }
  return "en";
}

/** The page's current language code. */
export const language = () => current;

/** The text of `key` in the current language with `{name}` filled from `params`. */
export function t(key, params = {}) {
  const text = WORDS[current]?.[key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** `key.one` or `key.other` by the count `n` (also passed as {n}). */
export function tn(key, n, params = {}) {
  return t(`${key}.${n === 1 ? "one" : "other"}`, { n, ...params });
}

/** A {language: text} object (from the service) in the current language, else English, else `fallback`. */
export function pick(texts, fallback = "") {
  return texts?.[current] ?? texts?.en ?? fallback;
}

/** Put the words on every [data-i18n] element (its text) and [data-i18n-attr] ("attr:key,attr:key"). */
export function translate(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      node.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

function apply(lang) {
  if (lang === current) return;
  current = lang;
  document.documentElement.lang = lang;
  translate();
  const select = document.getElementById("language");
  if (select) select.value = lang;
  for (const listener of listeners) listener(lang);
}

/** Start in the reader's remembered choice, else `fallback`; wire the #language switch. */
export function startLanguage(fallback) {
  apply(supported(localStorage.getItem(STORE_KEY)) || supported(fallback) || "en");
  const select = document.getElementById("language");
  if (select) select.addEventListener("change", () => {
    localStorage.setItem(STORE_KEY, select.value);
    apply(select.value);
  });
}

/** The language the page would use before the reader chooses (e.g. the call's, once known). */
export function suggestLanguage(code) {
  const lang = supported(code);
  if (lang && !supported(localStorage.getItem(STORE_KEY))) apply(lang);
}

/** Call `listener(lang)` after every change of language (to redraw what the page built). */
export function onLanguage(listener) {
  listeners.add(listener);
}
