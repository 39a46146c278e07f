/* The console's API client: tokens in sessionStorage, one silent refresh on 401, a tiny DOM helper. */
"use strict";
const API = "/api/v1";

const Auth = {
  get access() { return sessionStorage.getItem("gw.access"); },
  get refresh() { return sessionStorage.getItem("gw.refresh"); },
  /* One id per login, kept when the tokens are refreshed: what tells a renewed session from a new one. */
  get login() { return sessionStorage.getItem("gw.login"); },
  begin(tokens) {
    sessionStorage.setItem("gw.login", String(Date.now()) + Math.random().toString(36).slice(2));
    Auth.set(tokens);
  },
  set(tokens) {
    sessionStorage.setItem("gw.access", tokens.access_token);
    sessionStorage.setItem("gw.refresh", tokens.refresh_token);
  },
  clear() { ["gw.access", "gw.refresh", "gw.login", "gw.media", "gw.me"].forEach((k) => sessionStorage.removeItem(k)); },
};

class ApiError extends Error {
  constructor(status, detail) { super(detail || String(status)); this.status = status; }
}

/* One renewal at a time, shared by every request that met the expired token: refresh tokens rotate, so a second
   renewal with the same one is refused (401 token revoked) and used to log the user out. */
let renewal = null;
function tryRefresh() {
  if (!renewal) renewal = renew().finally(() => { renewal = null; });
  return renewal;
}

async function renew() {
  if (!Auth.refresh) return false;
  const r = await fetch(API + "/auth/refresh", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: Auth.refresh }),
  });
  if (!r.ok) return false;
  Auth.set(await r.json());
  return true;
}

/* ``signal`` (an AbortSignal) cancels the request, e.g. when the page that asked for it is left. */
async function api(path, { method = "GET", body, form, raw = false, retry = true, signal } = {}) {
  const headers = {}, login = Auth.login;
  if (Auth.access) headers.Authorization = "Bearer " + Auth.access;
  let payload;
  if (form) { payload = new URLSearchParams(form); }
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const r = await fetch(API + path, { method, headers, body: payload, signal });
  // a 401 ends only the login the request was sent under: a late answer to a logged-out page's request must not
  // refresh or clear the session of whoever has logged in since (a refresh in between keeps the login)
  const current = Auth.login === login;
  if (r.status === 401 && current && retry && !form && (await tryRefresh())) return api(path, { method, body, raw, retry: false, signal });
  if (r.status === 401 && current && !form) { Auth.clear(); location.hash = "#/login"; }
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
    throw new ApiError(r.status, detail);
  }
  if (raw) return r;
  if (r.status === 204) return null;
  return r.json();
}

/* A short-lived media token for <img> sources (snapshots, evidence, MJPEG), which cannot send headers. */
async function mediaToken(signal) {
  const cached = JSON.parse(sessionStorage.getItem("gw.media") || "null");
  if (cached && cached.until > Date.now() + 15000) return cached.token;
  const m = await api("/auth/media-token", { method: "POST", signal });
  sessionStorage.setItem("gw.media", JSON.stringify({ token: m.media_token, until: Date.now() + m.expires_in * 1000 }));
  return m.media_token;
}

async function mediaUrl(path, signal) {
  return API + path + (path.includes("?") ? "&" : "?") + "mt=" + encodeURIComponent(await mediaToken(signal));
}

/* ``img.src`` = the media URL of ``path``. Fire and forget: a refused token (logged out meanwhile) leaves it empty. */
function mediaSrc(img, path) {
  mediaUrl(path).then((u) => { img.src = u; }).catch(() => {});
}

/* ``fn`` as an event handler: what it throws, at once or later, is shown as a toast, never left unhandled. */
function reported(fn) {
  return (...args) => Promise.resolve().then(() => fn(...args)).catch((e) => toast(e.message, true));
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v;  // CSSOM, which the CSP (no inline style attributes) allows
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(text, bad) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = bad ? "show bad" : "show";
  clearTimeout(toast._t);
  toast._t = setTimeout(() => { el.className = ""; }, 3500);
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(localStorage.getItem("gw.lang") === "en" ? "en-GB" : "zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
}

const STATUS_COLOURS = {
  new: "#e53935", pending: "#e53935", reported: "#e53935", verifying: "#e53935",
  dispatched: "#fb8c00", signed: "#fdd835", handling: "#1e88e5", in_progress: "#1e88e5", extension: "#8e24aa",
  feedback: "#43a047", submitted: "#43a047", resolved: "#43a047", verified: "#00897b", closed: "#757575",
  dismissed: "#bdbdbd", false_alarm: "#bdbdbd", merged: "#9e9e9e", cleared: "#9e9e9e", escalated: "#d81b60", rework: "#6d4c41",
};
function statusColour(s) { return STATUS_COLOURS[s] || "#546e7a"; }
function statusBadge(s) { return h("span", { class: "badge", style: `background:${statusColour(s)}` }, t("status." + s)); }
