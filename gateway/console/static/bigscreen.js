/* 大屏: the wall display. Live counts by status and category, the map with every open case as a dot, today's
   trend per hour, the top grids; refreshed on every ticket event and every REFRESH_MS; when the gateway goes
   away it says so and keeps retrying, and picks up again by itself when the gateway is back. */
"use strict";

const BS_REFRESH_MS = 10_000, BS_RETRY_MS = 2_000;

Pages.bigscreen = async function (ctx) {
  await chartFontReady();
  const [dash, layers] = await Promise.all([api("/dashboard"), api("/map/layers")]);
  const num = (key, id) => h("div", { class: "num" }, h("b", { id }, "0"), h("span", { class: "meta" }, t(key)));
  const conn = h("span", { class: "conn", id: "bs-conn" }, "● " + t("bs_live"));
  const clock = h("span", { class: "meta", id: "bs-clock" });
  const panels = {
    status: h("div", { class: "chart", id: "bs-status" }), category: h("div", { class: "chart", id: "bs-category" }),
    trend: h("div", { class: "chart", id: "bs-trend" }), top: h("div", { class: "chart", id: "bs-top" }),
  };
  const mapBox = h("div", { class: "leaflet-box", id: "bs-map" });
  const root = h("div", { class: "bs", id: "bigscreen", dataset: { conn: "live", refreshed: "0" } },
    h("div", { class: "title" }, ctx.settings.name || "GridWatch", " · ", t("bs_title"), h("span", { class: "spacer" }), clock, conn,
      h("button", { onclick: () => document.documentElement.requestFullscreen && document.documentElement.requestFullscreen().catch(() => {}) }, t("fullscreen")),
      h("a", { class: "button", href: "#/wall", id: "bs-exit" }, "×")),
    h("div", { class: "panel p-left1" }, h("div", { class: "nums" }, num("bs_open", "bs-open"), num("bs_today", "bs-today"), num("bs_closed_today", "bs-closed")),
      h("h3", {}, t("bs_by_status")), panels.status),
    h("div", { class: "panel map-panel" }, mapBox),
    h("div", { class: "panel p-right1" }, h("h3", {}, t("bs_by_category")), panels.category),
    h("div", { class: "panel p-left2" }, h("h3", {}, t("bs_trend")), panels.trend),
    h("div", { class: "panel p-right2" }, h("h3", {}, t("bs_top_grids")), panels.top));
  const charts = {};
  let gw = null, timer = null, pending = null, stopped = false;

  async function draw(d, l) {
    await chartFontReady([...d.by_category.map((c) => c.name), ...d.top_grids.map((g) => g.name), ...d.by_status.map((x) => t("status." + x.status))].join(""));
    if (stopped) return;
    root.querySelector("#bs-open").textContent = d.open;
    root.querySelector("#bs-today").textContent = d.new_today;
    root.querySelector("#bs-closed").textContent = d.closed_today;
    charts.status.setOption(pieOption(d.by_status.map((s) => ({ label: t("status." + s.status), value: s.count, colour: statusColour(s.status) }))), true);
    charts.category.setOption(barOption(d.by_category.slice(0, 8).map((c) => ({ label: c.name.split("-").pop(), value: c.count }))), true);
    charts.trend.setOption(lineOption(d.trend.map((x) => `${x.hour}:00`), [{ name: t("bs_today"), data: d.trend.map((x) => x.count), colour: "#4fc3f7" }]), true);
    charts.top.setOption(barOption(d.top_grids.map((g) => ({ label: g.name, value: g.count })), { colour: "#ffb74d" }), true);
    if (l) gw.load(l);
    root.dataset.open = String(d.open);
    root.dataset.refreshed = String(Number(root.dataset.refreshed) + 1);
  }

  function setConn(up) {
    root.dataset.conn = up ? "live" : "down";
    conn.className = up ? "conn" : "conn down";
    conn.textContent = "● " + (up ? t("bs_live") : t("bs_reconnecting"));
  }

  async function refresh() {
    if (stopped) return;
    clearTimeout(timer);
    try {
      const [d, l] = await Promise.all([api("/dashboard", { retry: true }), api("/map/layers")]);
      if (stopped) return;
      setConn(true);
      await draw(d, l);
      timer = setTimeout(refresh, BS_REFRESH_MS);
    } catch (e) {
      if (stopped) return;
      setConn(false);                       // the gateway is away (restart, network): retry soon, keep the last picture
      timer = setTimeout(refresh, BS_RETRY_MS);
    }
  }

  ctx.mount = () => {
    document.body.classList.add("bigscreen");
    for (const [k, el] of Object.entries(panels)) charts[k] = makeChart(el);
    gw = gwMap(mapBox, { onTicket: (tk) => { location.hash = `#/ticket/${tk.id}`; } });
    window.gwBigscreenMap = gw;
    draw(dash, layers);
    timer = setTimeout(refresh, BS_REFRESH_MS);
    const tick = () => { clock.textContent = new Date().toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }); };
    tick();
    ctx.clock = setInterval(tick, 1000);
  };
  ctx.onLive = (msg) => { if (msg.type === "ticket") { clearTimeout(pending); pending = setTimeout(refresh, 400); } };
  ctx.cleanup = () => {
    stopped = true;
    clearTimeout(timer); clearTimeout(pending); clearInterval(ctx.clock);
    document.body.classList.remove("bigscreen");
    Object.values(charts).forEach((c) => c.gwDispose());
    if (gw) gw.map.remove();
  };
  return root;
};
