/* Camera manager for integrators: list with health, add/edit with probe, geo-pose, zones and lines drawn on a snapshot. */
"use strict";

Pages.cameras = async function (ctx) {
  const root = h("div", { class: "cameras" });
  const canWrite = ctx.me.permissions.includes("cameras:write");
  const PAGE = 50;  // a city has 10,000 cameras: the API pages, filters and searches (GET /cameras?q=&state=&limit=&offset=)
  const view = { q: "", state: "", offset: 0 };
  let cams = [], total = 0;
  async function load() {
    const qs = new URLSearchParams({ limit: String(PAGE), offset: String(view.offset) });
    if (view.q) qs.set("q", view.q);
    if (view.state) qs.set("state", view.state);
    const page = await api(`/cameras?${qs}`);
    cams = page.items; total = page.total;
    const search = h("input", { type: "search", id: "cam-search", value: view.q, placeholder: t("cam_search") });
    const state = h("select", { id: "cam-state" }, ...["", "live", "connecting", "stalled", "offline", "disabled", "not reported"]
      .map((s) => h("option", { value: s, selected: s === view.state }, s || t("all"))));
    const apply = reported(() => { view.q = search.value.trim(); view.state = state.value; view.offset = 0; return load(); });
    search.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
    state.addEventListener("change", apply);
    const go = reported((offset) => { view.offset = offset; return load(); });
    const shown = cams.length ? `${view.offset + 1}–${view.offset + cams.length} / ${total}` : `0 / ${total}`;
    root.replaceChildren(
      h("h2", {}, t("cameras"), " ", canWrite ? h("button", { class: "primary", id: "add-camera", onclick: () => edit(null) }, t("add_camera")) : null),
      h("div", { class: "cam-filter" }, search, " ", state, " ", h("button", { id: "cam-apply", onclick: apply }, t("cam_search_go")),
        " ", h("button", { id: "cam-prev", disabled: view.offset === 0, onclick: () => go(Math.max(0, view.offset - PAGE)) }, "‹"),
        " ", h("span", { id: "cam-count" }, shown), " ",
        h("button", { id: "cam-next", disabled: page.next_offset == null, onclick: () => go(page.next_offset) }, "›")),
      h("table", { class: "cam-list" },
        h("thead", {}, h("tr", {}, ...["camera_id", "name", "source_url", "health", "lon", "lat", ""].map((k) => h("th", {}, k ? t(k) : "")))),
        h("tbody", {}, cams.map((c) => h("tr", { dataset: { id: c.id } },
          h("td", {}, c.id), h("td", {}, c.name), h("td", { class: "url" }, c.source.url),
          h("td", {}, h("span", { class: `health h-${c.health.state}` }, c.health.state), " ", c.health.fps != null ? `${c.health.fps.toFixed(1)} fps` : "",
            c.health.detail && c.health.detail.worker ? h("div", { class: "owner muted", title: "video worker @ host" }, `${c.health.detail.worker} @ ${c.health.detail.host}`) : null),
          h("td", {}, c.pose.position.lon.toFixed(5)), h("td", {}, c.pose.position.lat.toFixed(5)),
          h("td", {}, h("a", { class: "button", href: `#/live/${encodeURIComponent(c.id)}` }, t("live_view")),
            canWrite ? h("button", { onclick: () => edit(c) }, t("open")) : null))))),
      h("div", { id: "cam-editor" }));
  }

  function num(name, value, attrs) { return h("input", Object.assign({ type: "number", step: "any", name, value }, attrs || {})); }

  async function edit(cam) {
    const box = root.querySelector("#cam-editor");
    const isNew = !cam;
    cam = cam ? JSON.parse(JSON.stringify(cam)) : {
      id: "", name: "", source: { url: "" }, pose: { position: { lon: 0, lat: 0 }, bearing_deg: 0, height_m: 4, fov_deg: 90 },
      zones: [], lines: [], rules: [{ kind: "motion" }],
    };
    const f = {
      id: h("input", { name: "id", value: cam.id, required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}", readonly: !isNew }),
      name: h("input", { name: "name", value: cam.name, required: true }),
      url: h("input", { name: "url", value: isNew ? "" : "", placeholder: isNew ? "rtsp://… / footage:… / synthetic:…" : cam.source.url, class: "wide" }),
      lon: num("lon", cam.pose.position.lon), lat: num("lat", cam.pose.position.lat),
      bearing: num("bearing", cam.pose.bearing_deg, { min: 0, max: 359.9 }), height: num("height", cam.pose.height_m, { min: 0 }),
      fov: num("fov", cam.pose.fov_deg, { min: 1, max: 360 }),
    };
    const probeOut = h("pre", { class: "probe-out" });
    const canvas = h("canvas", { width: 640, height: 360, class: "zone-canvas" });
    const snap = new Image();
    let mode = null, draft = [];
    const redraw = () => {
      const g = canvas.getContext("2d");
      g.clearRect(0, 0, canvas.width, canvas.height);
      if (snap.complete && snap.naturalWidth) g.drawImage(snap, 0, 0, canvas.width, canvas.height);
      const W = canvas.width, H = canvas.height;
      g.lineWidth = 2; g.font = "14px sans-serif";
      for (const z of cam.zones) {
        g.strokeStyle = "#ffeb3b"; g.fillStyle = "rgba(255,235,59,0.2)"; g.beginPath();
        z.polygon.forEach(([x, y], i) => (i ? g.lineTo(x * W, y * H) : g.moveTo(x * W, y * H))); g.closePath(); g.fill(); g.stroke();
        g.fillStyle = "#ffeb3b"; g.fillText(z.name, z.polygon[0][0] * W + 4, z.polygon[0][1] * H + 16);
      }
      for (const l of cam.lines) {
        g.strokeStyle = "#f44336"; g.beginPath(); g.moveTo(l.a[0] * W, l.a[1] * H); g.lineTo(l.b[0] * W, l.b[1] * H); g.stroke();
        g.fillStyle = "#f44336"; g.fillText(l.name, l.a[0] * W + 4, l.a[1] * H - 4);
      }
      if (draft.length) {
        g.strokeStyle = "#00e5ff"; g.beginPath(); draft.forEach(([x, y], i) => (i ? g.lineTo(x * W, y * H) : g.moveTo(x * W, y * H))); g.stroke();
        draft.forEach(([x, y]) => { g.fillStyle = "#00e5ff"; g.fillRect(x * W - 3, y * H - 3, 6, 6); });
      }
    };
    snap.onload = () => { canvas.width = 640; canvas.height = Math.round(640 * snap.naturalHeight / snap.naturalWidth); canvas.dataset.loaded = "1"; redraw(); };
    if (!isNew) mediaSrc(snap, `/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg`);
    canvas.addEventListener("click", (ev) => {
      if (!mode) return;
      const r = canvas.getBoundingClientRect();
      draft.push([+((ev.clientX - r.left) / r.width).toFixed(4), +((ev.clientY - r.top) / r.height).toFixed(4)]);
      if (mode === "line" && draft.length === 2) finish();
      redraw();
    });
    function finish() {
      if (mode === "zone" && draft.length >= 3) cam.zones.push({ name: prompt(t("name"), `zone${cam.zones.length + 1}`) || `zone${cam.zones.length + 1}`, polygon: draft });
      if (mode === "line" && draft.length === 2) cam.lines.push({ name: prompt(t("name"), `line${cam.lines.length + 1}`) || `line${cam.lines.length + 1}`, a: draft[0], b: draft[1] });
      mode = null; draft = []; redraw();
    }
    async function probe() {
      probeOut.textContent = t("connecting");
      try {
        const r = await api("/cameras/probe", { method: "POST", body: { url: f.url.value || cam.source.url } });
        probeOut.textContent = JSON.stringify(r, null, 2);
        if (r.snapshot) { snap.src = "data:image/jpeg;base64," + r.snapshot; }
        toast(t("probe_ok"));
      } catch (e) { probeOut.textContent = e.message; toast(e.message, true); }
    }
    async function save(ev) {
      ev.preventDefault();
      const body = {
        id: f.id.value, name: f.name.value, enabled: cam.enabled !== false,
        source: Object.assign({}, cam.source, f.url.value ? { url: f.url.value } : {}),
        pose: Object.assign({}, cam.pose, { position: { lon: +f.lon.value, lat: +f.lat.value }, bearing_deg: +f.bearing.value, height_m: +f.height.value, fov_deg: +f.fov.value }),
        zones: cam.zones, lines: cam.lines, rules: cam.rules, motion: cam.motion || {}, detect: cam.detect || {},
      };
      if (cam.analysis) body.analysis = cam.analysis;
      if (cam.health_config) body.health = cam.health_config;
      try {
        if (isNew) await api("/cameras", { method: "POST", body });
        else await api(`/cameras/${encodeURIComponent(cam.id)}`, { method: "PUT", body });
        toast(t("saved")); await load();
      } catch (e) { toast(e.message, true); }
    }
    async function remove() {
      if (!confirm(t("remove") + " " + cam.id + "?")) return;
      try { await api(`/cameras/${encodeURIComponent(cam.id)}`, { method: "DELETE" }); toast(t("removed")); await load(); }
      catch (e) { toast(e.message, true); }
    }
    box.replaceChildren(h("form", { class: "cam-form", onsubmit: save },
      h("h3", {}, isNew ? t("add_camera") : cam.id),
      h("div", { class: "grid-form" },
        h("label", {}, t("camera_id"), f.id), h("label", {}, t("name"), f.name),
        h("label", { class: "wide" }, t("source_url"), f.url),
        h("label", {}, t("lon"), f.lon), h("label", {}, t("lat"), f.lat), h("label", {}, t("bearing"), f.bearing),
        h("label", {}, t("height"), f.height), h("label", {}, t("fov"), f.fov)),
      h("div", { class: "buttons" },
        h("button", { type: "button", id: "probe", onclick: probe }, t("probe")),
        h("button", { type: "button", onclick: () => { mode = "zone"; draft = []; } }, t("draw_zone")),
        h("button", { type: "button", onclick: () => { mode = "line"; draft = []; } }, t("draw_line")),
        h("button", { type: "button", onclick: finish }, t("finish")),
        h("button", { type: "button", onclick: () => { cam.zones = []; cam.lines = []; redraw(); } }, t("clear")),
        h("button", { type: "submit", class: "primary", id: "save-camera" }, t("save")),
        isNew ? null : h("button", { type: "button", class: "dismiss", onclick: remove }, t("remove"))),
      canvas, probeOut));
    redraw();
  }
  await load();
  return root;
};
