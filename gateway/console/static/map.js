/* The console map (Leaflet, vendored): grids, cameras with their field of view, households and sensors, ticket
   dots clustered when zoomed out, an optional heat layer, over an optional online or offline base map.
   Layers come from GET /map/layers, already cut to the caller's grids and projected to the base map's CRS. */
"use strict";

const DEVICE_COLOURS = { alarm: "#e53935", online: "#43a047", offline: "#757575", unknown: "#90a4ae" };

/* The corner points of a camera's view cone: from the camera along bearing ± fov/2, range_m long. */
function conePoints(cam) {
  const pts = [[cam.lat, cam.lon]];
  const fov = Math.min(cam.fov_deg, 359), steps = Math.max(4, Math.round(fov / 10));
  const mLat = 111320, mLon = 111320 * Math.cos(cam.lat * Math.PI / 180);
  for (let i = 0; i <= steps; i++) {
    const a = (cam.bearing_deg - fov / 2 + (fov * i) / steps) * Math.PI / 180;
    pts.push([cam.lat + (cam.range_m * Math.cos(a)) / mLat, cam.lon + (cam.range_m * Math.sin(a)) / mLon]);
  }
  return pts;
}

function dotIcon(cls, colour, data, label, anchor = [8, 8]) {
  // an element, not an HTML string: the colour is set through CSSOM, which the CSP (no inline style attributes) allows
  const el = document.createElement("i");
  el.className = cls;
  el.style.background = colour;
  Object.entries(data).forEach(([k, v]) => { el.dataset[k] = v; });
  if (label) el.textContent = label;
  return L.divIcon({ className: "gw-icon", html: el, iconSize: [16, 16], iconAnchor: anchor });
}

/* A cluster bubble coloured by its most urgent member (red before orange before the rest). */
function clusterIcon(cluster) {
  const kids = cluster.getAllChildMarkers();
  const urgent = kids.find((m) => m.options.gwUrgent);
  const el = document.createElement("div");
  el.className = "gw-cluster" + (urgent ? " urgent" : "");
  el.textContent = String(kids.length);
  return L.divIcon({ className: "gw-icon", html: el, iconSize: [34, 34] });
}

/**
 * A map in `box`. Returns { load(layers), setHeat(points), map, ids(kind) }; `load` replaces every overlay.
 * opts: onTicket(tk), onCamera(cam), onDevice(dev), tiles (from layers.tiles), onCrs(crs) when the base map's CRS changes,
 * view ({ center: [lat, lon], zoom }) to open there instead of on the grids' bounds.
 */
function gwMap(box, opts = {}) {
  const map = L.map(box, { zoomControl: true, attributionControl: true, maxZoom: 19, minZoom: 3, zoomSnap: 0.25 });
  map.attributionControl.setPrefix("Leaflet");
  const groups = {
    grids: L.featureGroup().addTo(map),
    cameras: L.featureGroup().addTo(map),
    devices: L.markerClusterGroup({ iconCreateFunction: clusterIcon, disableClusteringAtZoom: 17, maxClusterRadius: 40 }).addTo(map),
    tickets: L.markerClusterGroup({ iconCreateFunction: clusterIcon, disableClusteringAtZoom: 17, maxClusterRadius: 50 }).addTo(map),
  };
  let heat = null, control = null, fitted = false, current = { crs: "WGS84" };
  const byId = { tickets: new Map(), cameras: new Map(), devices: new Map() };
  let mt = (JSON.parse(sessionStorage.getItem("gw.media") || "null") || {}).token || "";
  const offline = [];
  // offline tiles are behind a media token (?mt=); a fresh one redraws them
  const refreshToken = () => mediaToken().then((tok) => { const was = mt; mt = tok; if (!was) offline.forEach((l) => l.redraw()); }).catch(() => {});

  function baseLayers(tiles) {
    const bases = { [t("map_blank")]: L.layerGroup() };
    for (const src of tiles || []) {
      const url = src.offline ? src.url + "?mt={mt}" : src.url;
      const layer = L.tileLayer(url, { maxZoom: src.max_zoom, attribution: src.attribution, mt: () => mt, className: `tiles-${src.name}` });
      layer.gwCrs = src.crs;
      if (src.offline) offline.push(layer);
      bases[src.name] = layer;
    }
    return bases;
  }

  function setupTiles(tiles) {
    if (control) return;
    const bases = baseLayers(tiles);
    const names = Object.keys(bases);
    const first = names.length > 1 ? bases[names[1]] : bases[names[0]];   // the deployment's first base map, else blank
    first.addTo(map);
    current.crs = first.gwCrs || "WGS84";
    control = L.control.layers(bases, {
      [t("grid")]: groups.grids, [t("cameras")]: groups.cameras, [t("map_devices")]: groups.devices, [t("tickets")]: groups.tickets,
    }, { collapsed: true }).addTo(map);
    map.on("baselayerchange", (ev) => {
      const crs = ev.layer.gwCrs || "WGS84";
      if (crs !== current.crs) { current.crs = crs; refetch(crs).then(load).catch(() => {}); }
      opts.onCrs && opts.onCrs(crs);
    });
    if (tiles && tiles.some((s) => s.offline)) {
      refreshToken();
      const renew = setInterval(refreshToken, 60_000);
      map.on("unload", () => clearInterval(renew));   // the page that leaves removes its map: no renewal after it
    }
  }

  function drawGrids(fc) {
    groups.grids.clearLayers();
    const order = { district: 0, street: 1, community: 2, grid: 3 };
    const features = [...fc.features].sort((a, b) => order[a.properties.level] - order[b.properties.level]);
    for (const f of features) {
      const p = f.properties, base = p.level === "grid";
      const layer = L.geoJSON(f, {
        style: {
          className: `grid lvl-${p.level}${p.mine ? " mine" : ""}`,
          color: base ? (p.mine ? "#42a5f5" : "#90a4ae") : "#b0bec5", weight: { district: 3, street: 2.2, community: 1.4, grid: 1 }[p.level],
          fill: base, fillColor: p.mine ? "#2196f3" : "#78909c", fillOpacity: base ? 0.08 : 0, dashArray: base ? null : "6 4",
        },
        interactive: base,
      });
      if (base) layer.bindTooltip(`${p.name}<br>${p.code}`, { sticky: true, className: "gw-tip" });
      layer.addTo(groups.grids);
      layer.eachLayer((l) => { const el = l.getElement && l.getElement(); if (el) el.dataset.code = p.code; });
      if (base) {
        const c = layer.getBounds().getCenter();
        L.marker(c, { interactive: false, icon: L.divIcon({ className: "grid-label", html: `<span>${escapeHtml(p.name)}</span>`, iconSize: [120, 16], iconAnchor: [60, 8] }) }).addTo(groups.grids);
      }
    }
  }

  function drawCameras(cams) {
    groups.cameras.clearLayers(); byId.cameras.clear();
    for (const cam of cams) {
      const live = ["live", "ok", "running", "online"].includes(cam.health);
      L.polygon(conePoints(cam), { className: "camera-cone", color: live ? "#26c6da" : "#ef9a9a", weight: 1, fillOpacity: 0.18, interactive: false }).addTo(groups.cameras);
      const m = L.marker([cam.lat, cam.lon], { icon: dotIcon(`camera-mark${live ? "" : " down"}`, live ? "#00acc1" : "#e57373", { id: cam.id }, "◉"), title: cam.name, zIndexOffset: 500 });
      m.bindTooltip(`${escapeHtml(cam.name)} · ${cam.health}`, { className: "gw-tip" });
      m.on("click", () => opts.onCamera && opts.onCamera(cam));
      m.addTo(groups.cameras);
      byId.cameras.set(cam.id, m);
    }
  }

  function drawDevices(devs) {
    groups.devices.clearLayers(); byId.devices.clear();
    for (const d of devs) {
      const m = L.marker([d.lat, d.lon], { icon: dotIcon(`device-mark type-${d.type} st-${d.state}`, DEVICE_COLOURS[d.state], { id: d.id, state: d.state }, d.type === "set_top_box" ? "⌂" : "•"), gwUrgent: d.state === "alarm", zIndexOffset: d.state === "alarm" ? 800 : 0 });
      m.bindTooltip(`${escapeHtml(d.household || d.name || d.id)}<br>${escapeHtml(d.address)}<br>${t("device_state." + d.state)}${d.battery != null ? " · " + d.battery + "%" : ""}`, { className: "gw-tip" });
      m.on("click", () => opts.onDevice && opts.onDevice(d));
      groups.devices.addLayer(m);
      byId.devices.set(d.id, m);
    }
  }

  function drawTickets(tks) {
    groups.tickets.clearLayers(); byId.tickets.clear();
    for (const tk of tks) {
      // a camera's ticket sits where the camera stands: drawn just above-right of the point so both stay clickable
      const anchor = tk.source_kind === "camera" ? [-2, 18] : [8, 8];
      const m = L.marker([tk.lat, tk.lon], { icon: dotIcon("ticket-dot", statusColour(tk.status), { id: tk.id, status: tk.status }, "", anchor), gwUrgent: ["reported", "new", "pending", "dispatched", "escalated"].includes(tk.status), zIndexOffset: 1000 });
      m.bindTooltip(`${tk.number} ${escapeHtml(tk.title)} — ${t("status." + tk.status)}`, { className: "gw-tip" });
      m.on("click", () => opts.onTicket && opts.onTicket(tk));
      groups.tickets.addLayer(m);
      byId.tickets.set(String(tk.id), m);
    }
  }

  /* Layers in another CRS than the base map's are fetched again in the right one (GCJ-02 tiles, WGS-84 store). */
  const refetch = opts.refetch || ((crs) => api(`/map/layers?crs=${crs}`));

  function load(layers) {
    setupTiles(layers.tiles);
    if ((layers.crs || "WGS84") !== current.crs) { refetch(current.crs).then(load).catch(() => {}); return; }
    box.dataset.crs = current.crs;
    // a given first view is set before the markers go in: they are clustered once, at that zoom, and data-loaded
    // then means what is drawn is what stays (a later animated zoom would re-cluster after it)
    if (!fitted && opts.view) { map.setView(opts.view.center, opts.view.zoom, { animate: false }); fitted = true; }
    drawGrids(layers.grids); drawCameras(layers.cameras); drawDevices(layers.devices); drawTickets(layers.tickets);
    if (!fitted && groups.grids.getLayers().length) { map.fitBounds(groups.grids.getBounds(), { padding: [10, 10] }); fitted = true; }
    box.dataset.loaded = String(Number(box.dataset.loaded || 0) + 1);
  }

  function setHeat(points) {
    if (heat) { map.removeLayer(heat); heat = null; }
    if (!points || !points.length || !L.heatLayer) return;
    heat = L.heatLayer(points, { radius: 28, blur: 20, maxZoom: 17, minOpacity: 0.35 }).addTo(map);
  }

  /* Zoom to a point and open its marker out of any cluster. */
  function focus(kind, id, zoom = 17) {
    const m = byId[kind].get(String(id));
    if (!m) return false;
    if (kind === "tickets" || kind === "devices") groups[kind].zoomToShowLayer(m, () => m.openTooltip());
    else { map.setView(m.getLatLng(), zoom); m.openTooltip(); }
    return true;
  }

  return { map, load, setHeat, focus, crs: () => current.crs, ids: (kind) => [...byId[kind].keys()] };
}

function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

Pages.map = async function (ctx) {
  const box = h("div", { class: "leaflet-box", id: "map" });
  const legend = h("div", { class: "legend" },
    ...["reported", "dispatched", "signed", "handling", "escalated"].map((st) => h("span", {}, h("i", { class: "swatch", style: `background:${statusColour(st)}` }), t("status." + st))),
    ...["alarm", "online", "offline"].map((st) => h("span", {}, h("i", { class: "swatch square", style: `background:${DEVICE_COLOURS[st]}` }), t("device_state." + st))),
    h("span", {}, h("i", { class: "swatch", style: "background:#00acc1" }), t("camera")));
  const root = h("div", { class: "map-page" }, h("h2", {}, t("map")), legend, box);
  const view = { gw: null };
  const fetchLayers = () => api(`/map/layers?crs=${view.gw ? view.gw.crs() : "WGS84"}`);
  const first = await fetchLayers();
  ctx.mount = () => {
    view.gw = gwMap(box, {
      onTicket: (tk) => { location.hash = `#/ticket/${tk.id}`; },
      onCamera: (cam) => { location.hash = `#/live/${encodeURIComponent(cam.id)}`; },
      onDevice: (d) => { if (d.open_ticket) location.hash = `#/ticket/${d.open_ticket}`; },
    });
    view.gw.load(first);
    window.gwMapView = view.gw;
  };
  let timer = null;
  // a redraw whose answer comes after the page is left (or the session ended) is dropped, not thrown
  const redraw = () => fetchLayers().then((layers) => view.gw && view.gw.load(layers), () => {});
  ctx.onLive = (msg) => { if (msg.type !== "ticket") return; clearTimeout(timer); timer = setTimeout(redraw, 500); };
  ctx.cleanup = () => { clearTimeout(timer); if (view.gw) view.gw.map.remove(); view.gw = null; window.gwMapView = null; };
  return root;
};
