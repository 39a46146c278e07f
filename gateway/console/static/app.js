/* Console shell: settings, login, navigation by permission, hash routing, and one live WebSocket for every page. */
"use strict";
const ctx = { me: null, settings: { language: "zh", tile_url: null, name: "GridWatch" }, ws: null, page: null };

const NAV = [
  ["wall", "wall"], ["videowall", "cameras:read"], ["review", "wall"], ["map", "tickets:read"], ["queue", "queue"],
  ["cameras", "cameras:read"], ["kpi", "kpis"], ["analysis", "kpis"], ["bigscreen", "tickets:read"],
];
/* Listeners that hear every live message whatever the page (the alarm pop-up); each gets (msg, ctx). */
const LIVE_HOOKS = [];

function homeFor(me) {
  if (me.role === "grid_worker" || me.role === "grid_leader") return "#/queue";
  if (me.role === "supervisor") return "#/kpi";
  if (me.role === "integrator") return "#/cameras";
  return "#/wall";
}

function applyLang() {
  const lang = localStorage.getItem("gw.lang") || ctx.settings.language || "zh";
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("lang").textContent = lang === "zh" ? "EN" : "中文";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
}

function renderNav() {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...NAV.filter(([, p]) => ctx.me.permissions.includes(p)).map(([page]) =>
    h("a", { href: `#/${page}`, id: `nav-${page}`, class: location.hash.startsWith(`#/${page}`) ? "active" : "" }, t(page))));
  document.getElementById("whoami").textContent = `${ctx.me.display_name || ctx.me.username} · ${t("role." + ctx.me.role)}`;
}

function loginPage() {
  const user = h("input", { name: "username", id: "username", autocomplete: "username", required: true });
  const pass = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true });
  const err = h("p", { class: "error", id: "login-error" });
  const form = h("form", {
    class: "login", id: "login-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      try {
        Auth.begin(await api("/auth/token", { method: "POST", form: { username: user.value, password: pass.value } }));
        ctx.me = await api("/me");
        const home = homeFor(ctx.me);
        if (location.hash === home) route(); else location.hash = home;  // one navigation, no racing redirects
      } catch (e) { err.textContent = e.status === 401 ? t("login_failed") : e.message; }
    },
  }, h("h1", {}, ctx.settings.name), h("label", {}, t("username"), user), h("label", {}, t("password"), pass),
  h("button", { type: "submit", class: "primary", id: "login-submit" }, t("login")), err);
  return form;
}

/* A live handler may start a reload. One that fails (the session ended while it ran, a server error) leaves the page as
   it was, to be reloaded by the next event, and is logged: never an unhandled rejection. */
function runLive(handler, msg) {
  try { Promise.resolve(handler(msg, ctx)).catch((e) => console.warn("live update failed:", e.message)); }
  catch (e) { console.error(e); }
}

function closeLive() {
  if (ctx.ws) { ctx.ws.onclose = null; ctx.ws.onmessage = null; ctx.ws.close(); ctx.ws = null; }
}

function connectLive() {
  if (ctx.ws && ctx.ws.readyState <= 1) return;
  const dot = document.getElementById("live-state");
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${API}/live`);
  ctx.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ token: Auth.access }));
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "hello") { dot.className = "dot on"; return; }
    window.gwLiveCount = (window.gwLiveCount || 0) + 1;
    for (const hook of LIVE_HOOKS) runLive(hook, msg);
    if (ctx.page && ctx.page.onLive) runLive(ctx.page.onLive, msg);
  };
  ws.onclose = async (ev) => {
    dot.className = "dot";
    if (!Auth.access) return;
    if (ev.code === 4401 && !(await tryRefresh())) return;
    setTimeout(connectLive, 2000);
  };
}

async function route() {
  const seq = (ctx.seq = (ctx.seq || 0) + 1);  // a newer navigation wins over a slower older one
  if (ctx.page && ctx.page.cleanup) { try { ctx.page.cleanup(); } catch (e) { /* ignore */ } }
  ctx.page = null;
  const main = document.getElementById("main");
  const top = document.getElementById("top");
  const [, page, arg] = (location.hash || "#/").split("/");
  if (!Auth.access || page === "login") {
    top.hidden = true;
    closeLive();
    main.replaceChildren(loginPage());
    main.dataset.page = "login";
    return;
  }
  try {
    if (!ctx.me) ctx.me = await api("/me");
  } catch (e) { Auth.clear(); location.hash = "#/login"; return; }
  top.hidden = false;
  if (!page) { location.hash = homeFor(ctx.me); return; }
  renderNav();
  if (ctx.me.permissions.includes("live")) connectLive();
  const fn = Pages[page];
  if (!fn) { main.replaceChildren(h("p", {}, "404")); return; }
  main.replaceChildren(h("p", { class: "meta" }, "…"));
  delete main.dataset.page;
  try {
    // each page gets its own context (onLive, cleanup) so a page that finishes loading late cannot hijack them
    const pctx = { me: ctx.me, settings: ctx.settings, onLive: null, cleanup: null, mount: null };
    const node = await fn(pctx, arg && decodeURIComponent(arg));
    if (seq !== ctx.seq) { if (pctx.cleanup) pctx.cleanup(); return; }
    ctx.page = pctx;
    main.replaceChildren(node);
    if (pctx.mount) pctx.mount();  // pages that measure themselves (maps, charts) start once they are in the document
    main.dataset.page = page;
    main.dataset.seq = String(seq);
  } catch (e) {
    if (seq !== ctx.seq) return;
    console.error(e);
    main.replaceChildren(h("p", { class: "error" }, e.status === 403 ? t("no_permission") : `${t("error")}: ${e.message}`));
  }
}

async function start() {
  try { ctx.settings = await (await fetch(API + "/settings")).json(); } catch (e) { /* defaults */ }
  window.GW_DEFAULT_LANG = ctx.settings.language;
  document.title = ctx.settings.name;
  applyLang();
  document.getElementById("lang").addEventListener("click", () => {
    const cur = localStorage.getItem("gw.lang") || ctx.settings.language || "zh";
    localStorage.setItem("gw.lang", cur === "zh" ? "en" : "zh");
    applyLang(); route();
  });
  document.getElementById("logout").addEventListener("click", () => {
    // forget the session at once (a quick re-login must not be undone by a late answer), then revoke it server-side;
    // the live socket closes first, so no event is handled (and no request sent) while logged out
    const access = Auth.access, refresh = Auth.refresh;
    closeLive();
    Auth.clear(); ctx.me = null; location.hash = "#/login";
    fetch(API + "/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + access, "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refresh }) }).catch(() => {});
  });
  window.addEventListener("hashchange", route);
  route();
}
document.addEventListener("DOMContentLoaded", start);
