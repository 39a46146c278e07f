/* Plain-SVG map and charts: no tile server, no CDN, nothing fetched from outside at run time. */
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

/* Web Mercator, so an optional slippy-map tile layer lines up with the polygons. */
function mercX(lon) { return (lon + 180) / 360; }
function mercY(lat) { const r = lat * Math.PI / 180; return (1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2; }

function rings(geometry) {
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

/**
 * Draw grid polygons and ticket dots. grids: FeatureCollection; tickets: [{id, lon, lat, status, title}].
 * Returns the <svg>. The base grids are filled; higher levels are drawn as thicker outlines.
 */
function drawMap(grids, tickets, { width = 900, height = 600, tileUrl, onTicket } = {}) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const f of grids.features) for (const poly of rings(f.geometry)) for (const ring of poly) for (const [lon, lat] of ring) {
    const x = mercX(lon), y = mercY(lat);
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const pad = 0.04 * Math.max(maxX - minX, maxY - minY);
  minX -= pad; minY -= pad; maxX += pad; maxY += pad;
  const scale = Math.min(width / (maxX - minX), height / (maxY - minY));
  const px = (lon) => (mercX(lon) - minX) * scale, py = (lat) => (mercY(lat) - minY) * scale;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img", "aria-label": t("map") });
  if (tileUrl) {
    const z = Math.max(0, Math.min(19, Math.floor(Math.log2(scale / 256))));
    const n = 2 ** z, tileSize = scale / n;
    for (let tx = Math.floor(minX * n); tx <= Math.floor(maxX * n); tx++) for (let ty = Math.floor(minY * n); ty <= Math.floor(maxY * n); ty++) {
      const href = tileUrl.replace("{z}", z).replace("{x}", tx).replace("{y}", ty).replace("{s}", "a");
      svg.append(s("image", { href, x: (tx / n - minX) * scale, y: (ty / n - minY) * scale, width: tileSize, height: tileSize, opacity: 0.8 }));
    }
  }
  const order = { district: 0, street: 1, community: 2, grid: 3 };
  const features = [...grids.features].sort((a, b) => order[b.properties.level] - order[a.properties.level]);
  for (const f of features) {
    const p = f.properties;
    const d = rings(f.geometry).map((poly) => poly.map((ring) => "M" + ring.map(([lon, lat]) => `${px(lon).toFixed(1)},${py(lat).toFixed(1)}`).join("L") + "Z").join("")).join("");
    const base = p.level === "grid";
    svg.append(s("path", {
      d, class: `grid lvl-${p.level}${p.mine ? " mine" : ""}`, "data-code": p.code,
      fill: base ? (p.mine ? "rgba(33,150,243,0.10)" : "rgba(120,120,120,0.06)") : "none",
      stroke: base ? "#90a4ae" : "#37474f", "stroke-width": { district: 3, street: 2.2, community: 1.4, grid: 0.7 }[p.level],
    }, s("title", {}, `${p.name} ${p.code}`)));
    if (base) {
      const b = rings(f.geometry)[0][0];
      const cx = b.reduce((a, c) => a + px(c[0]), 0) / b.length, cy = b.reduce((a, c) => a + py(c[1]), 0) / b.length;
      svg.append(s("text", { x: cx, y: cy, class: "grid-label", "text-anchor": "middle" }, p.name));
    }
  }
  for (const tk of tickets) {
    if (!tk.location) continue;
    const dot = s("circle", {
      cx: px(tk.location.lon), cy: py(tk.location.lat), r: 7, fill: statusColour(tk.status), stroke: "#fff", "stroke-width": 2,
      class: "ticket-dot", "data-id": tk.id, "data-status": tk.status, onclick: () => onTicket && onTicket(tk),
    }, s("title", {}, `${tk.number || tk.id} ${tk.title} — ${t("status." + tk.status)}`));
    svg.append(dot);
  }
  return svg;
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
