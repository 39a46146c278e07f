/* Video wall: 1/4/9/16 tiles of live cameras, grouped by grid, community, street or a saved group.
   Tiles play a low-rate, scaled-down MJPEG sub-stream (cheap for 16 at once), or WebRTC in 1- and 4-tile layouts
   when "WebRTC" is ticked (MJPEG when WebRTC fails); a click enlarges a tile into the
   full live view (WebRTC with the detection overlay, MJPEG when WebRTC fails). A camera that cannot be opened says
   why in its own tile, from its health; the others keep playing. A tile flashes when its camera raises an alert. */
"use strict";

const TILE_FPS = 2, TILE_WIDTH = 480, HEALTH_EVERY_MS = 3000, WEBRTC_TILES_MAX = 4;
const SAVED_GROUPS_KEY = "gw.wall.groups";

function savedGroups() {
  try { return JSON.parse(localStorage.getItem(SAVED_GROUPS_KEY) || "{}"); } catch (e) { return {}; }
}

/* The groups a camera list offers: all, each grid, each community, each street, each saved group. */
function cameraGroups(cams) {
  const groups = [{ key: "all", label: t("group.all"), ids: cams.map((c) => c.id) }];
  for (const [level, code, name] of [["grid", "grid_code", "grid_name"], ["community", "community", "community_name"], ["street", "street", "street_name"]]) {
    const by = new Map();
    for (const c of cams) if (c[code]) { if (!by.has(c[code])) by.set(c[code], { name: c[name] || c[code], ids: [] }); by.get(c[code]).ids.push(c.id); }
    for (const [k, v] of by) groups.push({ key: `${level}:${k}`, label: `${t("group." + level)} · ${v.name}`, ids: v.ids });
  }
  for (const [name, ids] of Object.entries(savedGroups())) groups.push({ key: `saved:${name}`, label: `${t("group.saved")} · ${name}`, ids });
  return groups;
}

/* Live view of one camera in `box`: WebRTC first, MJPEG when it fails. Returns a stop function. */
function openLive(box, cameraId, state) {
  const video = h("video", { class: "zoom-video", autoplay: true, muted: true, playsinline: true });
  video.muted = true;
  const img = h("img", { class: "zoom-mjpeg", hidden: true, alt: "MJPEG" });
  box.replaceChildren(video, img);
  let pc = null, stopped = false;
  async function mjpeg() {
    if (pc) { pc.close(); pc = null; }
    if (stopped) return;
    video.hidden = true; img.hidden = false;
    img.src = await mediaUrl(`/cameras/${encodeURIComponent(cameraId)}/mjpeg`);
    state.textContent = t("mjpeg");
  }
  async function webrtc() {
    pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (ev) => { video.srcObject = ev.streams[0] || new MediaStream([ev.track]); video.play().catch(() => {}); };
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      state.textContent = `${t("webrtc")}: ${pc.connectionState}`;
      if (pc.connectionState === "failed") mjpeg();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 2000);
    });
    const answer = await api(`/cameras/${encodeURIComponent(cameraId)}/webrtc`, { method: "POST", body: { sdp: pc.localDescription.sdp, type: "offer" } });
    await pc.setRemoteDescription(answer);
  }
  webrtc().catch(() => mjpeg());
  return () => { stopped = true; if (pc) pc.close(); pc = null; img.removeAttribute("src"); video.srcObject = null; };
}

Pages.videowall = async function (ctx) {
  const layers = await api("/map/layers");
  const cams = layers.cameras;
  const byId = new Map(cams.map((c) => [c.id, c]));
  let groups = cameraGroups(cams);
  let layout = Number(localStorage.getItem("gw.wall.layout") || 4);
  let groupKey = localStorage.getItem("gw.wall.group") || "all";
  if (!groups.some((g) => g.key === groupKey)) groupKey = "all";
  let page = 0;
  const wall = h("div", { class: `vwall n${layout}`, id: "vwall" });
  const tiles = new Map();   // camera id → {el, img, why}
  let zoomStop = null, zoomEl = null;

  const groupSel = h("select", { id: "wall-group", onchange: () => { groupKey = groupSel.value; localStorage.setItem("gw.wall.group", groupKey); page = 0; render(); } });
  function fillGroups() {
    groupSel.replaceChildren(...groups.map((g) => h("option", { value: g.key, selected: g.key === groupKey }, `${g.label} (${g.ids.length})`)));
  }
  const layoutBtns = h("span", { class: "layouts buttons" }, ...[1, 4, 9, 16].map((n) =>
    h("button", { dataset: { layout: n }, class: n === layout ? "active" : "", onclick: () => setLayout(n) }, `${n}`)));
  const pager = h("span", { class: "meta", id: "wall-page" });
  const rtc = h("input", { type: "checkbox", id: "wall-webrtc", checked: localStorage.getItem("gw.wall.webrtc") === "1",
    onchange: () => { localStorage.setItem("gw.wall.webrtc", rtc.checked ? "1" : "0"); render(); } });
  const root = h("div", { class: "videowall" },
    h("div", { class: "vwall-bar" }, h("h2", {}, t("videowall")), h("span", { class: "meta" }, t("layout")), layoutBtns,
      h("span", { class: "meta" }, t("group")), groupSel,
      h("button", { onclick: () => { page = Math.max(0, page - 1); render(); } }, "‹"), pager,
      h("button", { onclick: () => { page += 1; render(); } }, "›"),
      h("button", { id: "save-group", onclick: saveGroup }, t("save_group")),
      h("label", { class: "inline", title: t("webrtc_tiles_hint") }, rtc, t("webrtc_tiles"))),
    wall);

  function setLayout(n) {
    layout = n; localStorage.setItem("gw.wall.layout", String(n)); page = 0;
    layoutBtns.querySelectorAll("button").forEach((b) => b.classList.toggle("active", Number(b.dataset.layout) === n));
    render();
  }

  function currentIds() {
    const g = groups.find((x) => x.key === groupKey) || groups[0];
    return g.ids.filter((id) => byId.has(id));
  }

  function saveGroup() {
    const name = prompt(t("group_name"), "");
    if (!name) return;
    const saved = savedGroups();
    saved[name] = visibleIds();
    localStorage.setItem(SAVED_GROUPS_KEY, JSON.stringify(saved));
    groups = cameraGroups(cams); groupKey = `saved:${name}`; fillGroups();
  }

  function visibleIds() {
    const ids = currentIds();
    const pages = Math.max(1, Math.ceil(ids.length / layout));
    page = Math.min(page, pages - 1);
    pager.textContent = `${page + 1}/${pages}`;
    return ids.slice(page * layout, page * layout + layout);
  }

  function stopTiles() {
    for (const tile of tiles.values()) { tile.img.removeAttribute("src"); if (tile.stop) tile.stop(); }  // closes MJPEG / WebRTC
    tiles.clear();
  }

  function tileFor(cam) {
    const img = h("img", { alt: cam.name, class: "tile-img" });
    const why = h("div", { class: "why", hidden: true });
    const state = h("span", { class: "tile-state" }, t("tile_connecting"));
    const el = h("div", { class: "vtile", dataset: { camera: cam.id }, title: t("enlarge"), onclick: () => enlarge(cam) },
      img, why, h("div", { class: "cap" }, h("b", {}, cam.name), h("span", { class: "meta" }, cam.grid_name || ""), state));
    img.addEventListener("load", () => { if (!el.dataset.failed) state.textContent = `${TILE_FPS} fps`; el.dataset.playing = "1"; });
    img.addEventListener("error", () => showWhy(cam.id, t("tile_failed")));
    const tile = { el, img, why, state, stop: null };
    if (rtc.checked && layout <= WEBRTC_TILES_MAX) {
      // WebRTC in the tile (full rate, lowest latency) for small layouts; MJPEG when it cannot connect
      const box = h("div", { class: "tile-live" });
      el.prepend(box);
      img.hidden = true;
      tile.stop = openLive(box, cam.id, state);
    } else {
      mediaSrc(img, `/cameras/${encodeURIComponent(cam.id)}/mjpeg?fps=${TILE_FPS}&width=${TILE_WIDTH}`);
    }
    tiles.set(cam.id, tile);
    return el;
  }

  function showWhy(id, text) {
    const tile = tiles.get(id);
    if (!tile) return;
    tile.why.hidden = !text;
    tile.why.textContent = text || "";
    tile.el.dataset.failed = text ? "1" : "";
    tile.img.hidden = !!text;
    if (text) tile.state.textContent = "—";
  }

  function render() {
    stopTiles();
    wall.className = `vwall n${layout}`;
    const ids = visibleIds();
    const cells = ids.map((id) => tileFor(byId.get(id)));
    while (cells.length < layout) cells.push(h("div", { class: "vtile empty" }, h("div", { class: "why meta" }, t("tile_empty"))));
    wall.replaceChildren(...cells);
    checkHealth();
  }

  async function checkHealth() {
    let status;
    try { status = (await api("/cameras/status")).cameras; } catch (e) { return; }
    for (const id of tiles.keys()) {
      const hl = status[id];
      if (!hl) continue;
      const ok = hl.state === "online" || hl.state === "starting";
      const reason = hl.detail && hl.detail.reason;
      showWhy(id, ok ? "" : `${t("tile_failed")}: ${hl.state}${reason ? " — " + reason : ""}`);
    }
  }

  function enlarge(cam) {
    closeZoom();
    const state = h("span", { class: "meta", id: "zoom-state" }, t("connecting"));
    const player = h("div", { class: "player" });
    zoomEl = h("div", { class: "vzoom", id: "vzoom", dataset: { camera: cam.id } },
      h("header", {}, h("b", {}, cam.name), h("span", { class: "meta" }, `${cam.grid_name || ""} · ${cam.id}`), state, h("span", { class: "spacer" }),
        h("a", { class: "button", href: `#/live/${encodeURIComponent(cam.id)}` }, t("live")),
        h("button", { id: "zoom-close", onclick: closeZoom }, t("close"))),
      player);
    document.body.append(zoomEl);
    zoomStop = openLive(player, cam.id, state);
  }
  function closeZoom() { if (zoomStop) zoomStop(); zoomStop = null; if (zoomEl) zoomEl.remove(); zoomEl = null; }

  function flash(cameraId) {
    const tile = tiles.get(cameraId);
    if (!tile) return;
    tile.el.classList.remove("flash");
    void tile.el.offsetWidth;  // restart the animation
    tile.el.classList.add("flash");
    tile.el.dataset.alerts = String(Number(tile.el.dataset.alerts || 0) + 1);
  }

  fillGroups();
  ctx.mount = render;
  const healthTimer = setInterval(checkHealth, HEALTH_EVERY_MS);
  const onKey = (ev) => { if (ev.key === "Escape") closeZoom(); };
  document.addEventListener("keydown", onKey);
  ctx.onLive = (msg) => {
    // alerts flash their tile; activity (motion and other rules recorded without a ticket) does not
    if (msg.type === "anomaly" && msg.anomaly.source === "camera" && msg.anomaly.tier !== "activity") flash(msg.anomaly.source_id);
    else if (msg.type === "ticket" && msg.event.ticket && msg.event.ticket.source && msg.event.ticket.source.kind === "camera"
      && msg.event.type === "ticket.created") flash(msg.event.ticket.source.id);
  };
  ctx.cleanup = () => { clearInterval(healthTimer); document.removeEventListener("keydown", onKey); closeZoom(); stopTiles(); };
  return root;
};
