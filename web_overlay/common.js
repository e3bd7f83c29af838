// Shared helpers for the Recobra pages: the auth token, URLs, DOM building, formatting, sparklines.
// Plain ES module, no build step, no network beyond the service that served the page.

const query = new URLSearchParams(location.search);

/** A query parameter of this page's own URL (null when absent). */
export function param(name) {
  return query.get(name);
}

/** The `token` this page was opened with; forwarded on every request the page makes. */
export const token = param("token");

/** ws(s)://host/path?...&token=... on the service that served this page. */
export function wsUrl(path, params = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

/** fetch() with `Authorization: Bearer <token>` when the page has a token; throws on HTTP errors. */
export async function apiFetch(path, init = {}) {
  const headers = new Headers(init.headers || {});
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response;
}

/** A link to another page under /ui that keeps the token. */
export function pageUrl(page, params = {}) {
  const url = new URL(page, location.href);
  url.search = "";
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
  if (token) url.searchParams.set("token", token);
  return url.pathname + url.search;
}

/** Build an element; text goes in as text nodes (never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children, skipping null/false (native replaceChildren would print "null"). */
export function setChildren(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** 125 -> "2:05", 3725 -> "1:02:05". */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** "12.3 s" style clock position for evidence quotes. */
export function fmtClock(seconds) {
  return `${Number(seconds).toFixed(1)} s`;
}

const SVG = "http://www.w3.org/2000/svg";

/** An inline SVG sparkline of `values` scaled to [min, max]; labelled for screen readers. */
export function sparkline(values, { min = 0, max = 100, width = 120, height = 28, label = "" } = {}) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (values.length) {
    const span = max - min || 1;
    const step = values.length > 1 ? width / (values.length - 1) : 0;
    const points = values.map((v, i) => {
      const y = height - 2 - ((Math.min(max, Math.max(min, v)) - min) / span) * (height - 4);
      return `${(i * step).toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", values.length > 1 ? points.join(" ") : `0,${points[0].split(",")[1]} ${width},${points[0].split(",")[1]}`);
    svg.append(line);
  }
  return svg;
}
