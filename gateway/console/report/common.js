/* Shared by the report pages: API calls, the SVG grid map (no tiles, no CDN), photo shrinking. */
"use strict";
const API = "/api/v1";
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, { method = "GET", json, form, token } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  const r = await fetch(API + path, { method, headers, body });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) { const err = new Error((data && data.detail) || ("HTTP " + r.status)); err.status = r.status; throw err; }
  return data;
}

function showError(box, err) { box.textContent = err.message || String(err); box.classList.add("show"); }
function clearError(box) { box.textContent = ""; box.classList.remove("show"); }

/* ---- the grid map: plain SVG, click to pick a point (WGS-84) ---- */
const SVGNS = "http://www.w3.org/2000/svg";
function rings(g) { return g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : []; }
function inRing(pt, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > pt[1]) !== (yj > pt[1]) && pt[0] < (xj - xi) * (pt[1] - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
function gridAt(grids, lon, lat) {
  let best = null;
  for (const f of grids.features) {
    if (f.properties.level !== "grid") continue;
    for (const poly of rings(f.geometry)) if (inRing([lon, lat], poly[0])) best = f.properties;
  }
  return best;
}

class PickMap {
  constructor(container, grids, onPick) {
    this.grids = grids; this.onPick = onPick;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const f of grids.features) for (const p of rings(f.geometry)) for (const r of p) for (const [x, y] of r) {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    const k = Math.cos((minY + maxY) / 2 * Math.PI / 180);
    this.b = { minX, minY, maxX, maxY, k };
    this.W = 600; this.H = Math.round(600 * (maxY - minY) / ((maxX - minX) * k));
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("viewBox", `0 0 ${this.W} ${this.H}`);
    svg.setAttribute("class", "pickmap");
    svg.setAttribute("data-testid", "pickmap");
    for (const f of grids.features) {
      const lvl = f.properties.level;
      if (lvl !== "grid" && lvl !== "district") continue;
      for (const p of rings(f.geometry)) {
        const path = document.createElementNS(SVGNS, "path");
        path.setAttribute("d", p.map(r => "M" + r.map(([x, y]) => this.px(x, y).join(",")).join("L") + "Z").join(""));
        path.setAttribute("class", "lvl-" + lvl);
        const t = document.createElementNS(SVGNS, "title"); t.textContent = f.properties.name; path.append(t);
        svg.append(path);
      }
    }
    this.marker = document.createElementNS(SVGNS, "circle");
    this.marker.setAttribute("r", "7"); this.marker.setAttribute("class", "marker hidden");
    svg.append(this.marker);
    svg.addEventListener("click", ev => {
      const box = svg.getBoundingClientRect();
      const x = (ev.clientX - box.left) * this.W / box.width, y = (ev.clientY - box.top) * this.H / box.height;
      const [lon, lat] = this.ll(x, y);
      this.set(lon, lat);
    });
    container.replaceChildren(svg);
    this.svg = svg;
  }
  px(lon, lat) { const b = this.b; return [(lon - b.minX) / (b.maxX - b.minX) * this.W, (b.maxY - lat) / (b.maxY - b.minY) * this.H]; }
  ll(x, y) { const b = this.b; return [b.minX + x / this.W * (b.maxX - b.minX), b.maxY - y / this.H * (b.maxY - b.minY)]; }
  set(lon, lat) {
    const [x, y] = this.px(lon, lat);
    this.marker.setAttribute("cx", x); this.marker.setAttribute("cy", y); this.marker.setAttribute("class", "marker");
    this.onPick(lon, lat, gridAt(this.grids, lon, lat));
  }
}

/* ---- photos: shrink on the phone before upload (≤1600 px JPEG), so uploads stay small ---- */
async function shrinkPhoto(file, maxSide = 1600) {
  if (!file.type.startsWith("image/")) return file;
  try {
    const bmp = await createImageBitmap(file);
    const s = Math.min(1, maxSide / Math.max(bmp.width, bmp.height));
    const c = document.createElement("canvas");
    c.width = Math.round(bmp.width * s); c.height = Math.round(bmp.height * s);
    c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
    const blob = await new Promise(res => c.toBlob(res, "image/jpeg", 0.85));
    return blob ? new File([blob], (file.name || "photo").replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" }) : file;
  } catch (e) {
    return file;   // not decodable here: let the server say why
  }
}

function fmtTime(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : ""; }
