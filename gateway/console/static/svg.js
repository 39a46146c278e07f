/* Plain-SVG bar charts for the KPI page (the map is Leaflet, in map.js). */
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A horizontal bar chart: rows [{label, value}], values formatted by fmt. */
function barChart(rows, { width = 520, max, fmt = (v) => v, colour = "#1e88e5", title } = {}) {
  const rowH = 26, left = 170, height = rows.length * rowH + (title ? 30 : 10);
  const top = Math.max(max || 0, ...rows.map((r) => r.value || 0), 1e-9);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title || "" });
  if (title) svg.append(s("text", { x: 0, y: 18, class: "chart-title" }, title));
  rows.forEach((r, i) => {
    const y = (title ? 30 : 10) + i * rowH, w = ((r.value || 0) / top) * (width - left - 70);
    svg.append(s("text", { x: left - 8, y: y + 16, "text-anchor": "end", class: "chart-label" }, r.label));
    svg.append(s("rect", { x: left, y: y + 3, width: Math.max(1, w), height: rowH - 8, fill: r.colour || colour, rx: 3 }));
    svg.append(s("text", { x: left + w + 6, y: y + 16, class: "chart-value" }, r.value == null ? "—" : fmt(r.value)));
  });
  return svg;
}
