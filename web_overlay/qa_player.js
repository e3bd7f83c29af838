// QA page: the call's recording beside its transcript. Payment and identity numbers are silenced in it and
// shown on the timeline; clicking a transcript line (or jumping to it from evidence) seeks there; the line
// being heard is highlighted. Needs only the page's #player section and the transcript's .utt lines.
import { onLanguage, t } from "./i18n.js";

const API = new URL("../api/", location.href);
const TOKEN = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
let callId = null;
let info = null;
let playing = null;

const callInHash = () => {
  const m = location.hash.match(/^#call=(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
};

function apiUrl(path, withToken = false) {
  const url = new URL(path, API);
  if (withToken && TOKEN) url.searchParams.set("token", TOKEN); // <audio> cannot send a header
  return url;
}

const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

function node(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** The silenced spans: marks on the timeline and a list of buttons that seek to each. */
function drawSpans() {
  const duration = lengthOf();
  const marks = (info?.redactions || []).map((s) => {
    const mark = node("span", { class: "rec-span", title: spanText(s) });
    mark.style.left = `${(100 * s.start) / duration}%`;
    mark.style.width = `${Math.max(0.5, (100 * (s.end - s.start)) / duration)}%`;
    return mark;
  });
  $("player-timeline").replaceChildren(...marks, node("span", { class: "rec-head" }));
  const spans = info?.redactions || [];
  const empty = info ? [node("li", { class: "muted" }, t("rec.nothing_silenced"))] : [];
  $("player-spans").replaceChildren(...(spans.length ? spans.map((s) => node("li", {}, seekButton(s))) : empty));
}

/** The audio's own length once it is known, else the recording's as stored. */
function lengthOf() {
  const d = $("player-audio").duration;
  return Number.isFinite(d) && d > 0 ? d : info?.duration || 0;
}

const spanText = (s) => t("rec.span", {
  kind: t(`rec.kind.${s.kind}`), from: clock(s.start), to: clock(s.end), speaker: t(`speaker.${s.speaker}`),
});

function seekButton(span) {
  const button = node("button", { type: "button", class: "link" }, spanText(span));
  button.addEventListener("click", () => seek(span.start));
  return button;
}

function seek(seconds, play = false) {
  const audio = $("player-audio");
  if (!info || !audio.src) return;
  audio.currentTime = Math.max(0, seconds);
  if (play) audio.play().catch(() => {});
}

function message(key) {
  $("player-message").textContent = key ? t(key) : "";
  $("player-message").hidden = !key;
}

async function load() {
  const id = callInHash();
  if (id === callId) return;
  callId = id;
  info = null;
  const audio = $("player-audio");
  audio.removeAttribute("src");
  audio.load();
  $("player").hidden = !id;
  audio.hidden = true;
  drawSpans();
  message(null);
  if (!id) return;
  const res = await fetch(apiUrl(`calls/${encodeURIComponent(id)}/recording/info`), {
    headers: TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {},
  });
  if (id !== callId) return;
  if (!res.ok) {
    message({ 404: "rec.none", 410: "rec.purged" }[res.status] || "rec.error");
    return;
  }
  info = await res.json();
  audio.src = apiUrl(`calls/${encodeURIComponent(id)}/recording`, true).href;
  audio.hidden = false;
  drawSpans();
}

/** Highlight the transcript line the audio is in (aria-current), scrolled into view when it changes. */
function follow() {
  const now = $("player-audio").currentTime;
  const head = document.querySelector("#player-timeline .rec-head");
  if (head && lengthOf()) head.style.left = `${Math.min(100, (100 * now) / lengthOf())}%`;
  const line = [...document.querySelectorAll("#transcript .utt")].find(
    (u) => Number(u.dataset.start) <= now && now < Number(u.dataset.end) + 0.3,
  );
  if (line === playing) return;
  playing?.classList.remove("playing");
  playing?.removeAttribute("aria-current");
  playing = line || null;
  if (playing) {
    playing.classList.add("playing");
    playing.setAttribute("aria-current", "true");
    playing.scrollIntoView({ block: "nearest" });
  }
}

function lineOf(event) {
  return event.target.closest?.("#transcript .utt");
}

function start() {
  const audio = $("player-audio");
  audio.addEventListener("timeupdate", follow);
  audio.addEventListener("seeked", follow);
  audio.addEventListener("loadedmetadata", drawSpans);
  audio.addEventListener("error", () => audio.src && message("rec.error"));
  const startOf = (e) => Number(lineOf(e).dataset.start);
  document.addEventListener("click", (e) => lineOf(e) && !e.target.closest("button") && seek(startOf(e), true));
  document.addEventListener("focusin", (e) => lineOf(e) && seek(startOf(e))); // evidence jumps focus the line
  document.addEventListener("keydown", (e) => {
    if (lineOf(e) && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      seek(startOf(e), true);
    }
  });
  $("player-timeline").addEventListener("click", (e) => {
    const box = e.currentTarget.getBoundingClientRect();
    if (info) seek(((e.clientX - box.left) / box.width) * lengthOf());
  });
  window.addEventListener("hashchange", load);
  onLanguage(drawSpans);
  load();
}

start();
