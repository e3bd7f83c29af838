// SVG charts drawn by the insights page (no library): a line trend, horizontal bars and a heatmap.
// Each is role="img" with a <title> and <desc> naming what it shows; the numbers are also in a table beside it.
const NS = "http://www.w3.org/2000/svg";
let uid = 0;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** An <svg role="img"> labelled by its own title and description. */
function frame(width, height, title, desc) {
  const id = `chart-${++uid}`;
  return s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", class: "chart",
                    "aria-labelledby": `${id}-t ${id}-d`, preserveAspectRatio: "xMinYMin meet" },
    s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, desc));
}

const fmt = (v) => (v === null || v === undefined ? "—" : String(Math.round(v * 10) / 10));

/** A line over `points` ([label, value]), y from 0 to `max` (default: the largest value). */
export function lineChart(points, { title, desc, max = null, width = 640, height = 220 }) {
  const svg = frame(width, height, title, desc);
  const left = 44, right = 40, top = 12, bottom = 36; // room for the last period label
  const values = points.map(([, v]) => v).filter((v) => v !== null && v !== undefined);
  const top_ = max ?? Math.max(1, ...values);
  const x = (i) => left + (points.length > 1 ? (i * (width - left - right)) / (points.length - 1) : (width - left - right) / 2);
  const y = (v) => top + (1 - v / top_) * (height - top - bottom);
  for (const frac of [0, 0.5, 1]) {
    svg.append(s("line", { x1: left, x2: width - right, y1: y(top_ * frac), y2: y(top_ * frac), class: "grid" }),
      s("text", { x: left - 6, y: y(top_ * frac) + 4, "text-anchor": "end", class: "axis" }, fmt(top_ * frac)));
  }
  const drawn = points.map(([, v], i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  if (drawn.length) svg.append(s("polyline", { points: drawn.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), class: "line" }));
  for (const [i, v] of drawn) svg.append(s("circle", { cx: x(i), cy: y(v), r: 3.5, class: "dot" }));
  const every = Math.max(1, Math.ceil(points.length / 8));
  points.forEach(([label], i) => {
    if (i % every === 0) svg.append(s("text", { x: x(i), y: height - 12, "text-anchor": "middle", class: "axis" }, label));
  });
  return svg;
}

/** Horizontal bars for `rows` ([label, value]). */
export function barChart(rows, { title, desc, width = 640, max = null }) {
  const bar = 22, gap = 6, left = 190, right = 56;
  const height = Math.max(1, rows.length) * (bar + gap) + gap;
  const svg = frame(width, height, title, desc);
  const top_ = max ?? Math.max(1, ...rows.map(([, v]) => v || 0));
  rows.forEach(([label, value], i) => {
    const y = gap + i * (bar + gap);
    const w = ((value || 0) / top_) * (width - left - right);
    svg.append(s("text", { x: left - 8, y: y + bar * 0.7, "text-anchor": "end", class: "axis" }, label),
      s("rect", { x: left, y, width: Math.max(w, 1), height: bar, class: "bar" }),
      s("text", { x: left + w + 6, y: y + bar * 0.7, class: "axis" }, fmt(value)));
  });
  return svg;
}

/** A grid of `rows` x `cols` cells coloured by count; `value(row, col)` gives a cell's count. */
export function heatmap(rows, cols, value, { title, desc, width = 640 }) {
  const left = 150, top = 90, cell = Math.max(18, Math.min(48, (width - left) / Math.max(1, cols.length)));
  const height = top + rows.length * cell + 8;
  const svg = frame(Math.max(width, left + cols.length * cell + 8), height, title, desc);
  const max = Math.max(1, ...rows.flatMap((r) => cols.map((c) => value(r, c))));
  cols.forEach((c, j) => svg.append(s("text", { x: left + j * cell + cell / 2, y: top - 8, class: "axis",
    transform: `rotate(-45 ${left + j * cell + cell / 2} ${top - 8})` }, c)));
  rows.forEach((r, i) => {
    svg.append(s("text", { x: left - 8, y: top + i * cell + cell * 0.65, "text-anchor": "end", class: "axis" }, r));
    cols.forEach((c, j) => {
      const n = value(r, c);
      const shade = n ? 0.1 + 0.5 * (n / max) : 0; // light enough for dark text on every cell
      svg.append(s("rect", { x: left + j * cell, y: top + i * cell, width: cell - 2, height: cell - 2, class: "cell",
                             "fill-opacity": shade.toFixed(2) }));
      if (n) svg.append(s("text", { x: left + j * cell + cell / 2 - 1, y: top + i * cell + cell * 0.62, "text-anchor": "middle",
                                    class: "cell-text" }, String(n)));
    });
  });
  return svg;
}
