/* The alarm pop-up: a one-key alarm or a critical sensor alarm opens a dialog on every operator console of that
   area (the live socket only carries the caller's grids; only roles with the event wall get the pop-up), with a
   beep made by WebAudio (no sound file), the household on a small map, the nearest cameras' snapshots with their
   live view one click away, and an acknowledgement that is written into the ticket's history. */
"use strict";

const ALARM_NEAREST = 4, BEEP_EVERY_MS = 1500;
const openAlarms = new Map();  // ticket id → {dlg, stop}

function isUrgentAlarm(tk) {
  return tk && (tk.kind === "one_key_alarm" || (tk.source && tk.source.kind === "sensor" && tk.severity === "critical"));
}

/* A short two-tone beep, repeated until stopped; generated, so nothing is fetched. Returns a stop function. */
function alarmSound() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return () => {};
  const ac = new AC();
  const beep = () => {
    window.gwAlarmBeeps = (window.gwAlarmBeeps || 0) + 1;
    const now = ac.currentTime;
    [[880, 0], [660, 0.22]].forEach(([freq, at]) => {
      const osc = ac.createOscillator(), gain = ac.createGain();
      osc.type = "square"; osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + at);
      gain.gain.exponentialRampToValueAtTime(0.25, now + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.2);
      osc.connect(gain).connect(ac.destination);
      osc.start(now + at); osc.stop(now + at + 0.21);
    });
  };
  ac.resume().catch(() => {});
  beep();
  const timer = setInterval(beep, BEEP_EVERY_MS);
  return () => { clearInterval(timer); ac.close().catch(() => {}); };
}

function distanceM(a, b) {
  const r = Math.PI / 180, x = (b.lon - a.lon) * Math.cos(((a.lat + b.lat) / 2) * r), y = b.lat - a.lat;
  return Math.sqrt(x * x + y * y) * r * 6371000;
}

async function showAlarm(tk) {
  if (openAlarms.has(tk.id)) return;
  const stop = alarmSound();
  const mapBox = h("div", { class: "mini-map leaflet-box", id: `alarm-map-${tk.id}` });
  const snaps = h("div", { class: "snaps" });
  const household = h("div", { class: "household" }, h("b", {}, t("alarm_location")), " ", tk.address || "");
  const ackBtn = h("button", { class: "primary", id: "alarm-ack", dataset: { id: tk.id } }, t("alarm_ack"));
  const dlg = h("dialog", { class: "alarm-pop", dataset: { id: tk.id, number: tk.number } },
    h("div", { class: "head" }, h("span", { class: "siren" }), t("alarm_popup"), " · ", tk.title, h("span", { class: "spacer" }), tk.number),
    h("div", { class: "body" },
      h("div", {}, household, h("p", { class: "meta" }, `${tk.grid_code} · ${fmtTime(tk.created_at)}`), mapBox),
      h("div", {}, h("b", {}, t("alarm_nearest")), snaps)),
    h("div", { class: "foot" }, ackBtn,
      h("a", { class: "button", href: `#/ticket/${tk.id}`, onclick: () => close() }, t("alarm_open_ticket")),
      h("span", { class: "spacer" }),
      h("button", { type: "button", onclick: () => close() }, t("close"))));
  function close() { stop(); openAlarms.delete(tk.id); dlg.close(); dlg.remove(); }
  dlg.addEventListener("cancel", (ev) => ev.preventDefault());  // Esc must not silently drop an alarm
  ackBtn.addEventListener("click", async () => {
    ackBtn.disabled = true;
    try {
      await api(`/tickets/${tk.id}/acknowledge`, { method: "POST", body: { note: "" } });
      toast(t("alarm_acked"));
      close();
    } catch (e) { ackBtn.disabled = false; toast(e.message, true); }
  });
  document.body.append(dlg);
  openAlarms.set(tk.id, { dlg, stop });
  dlg.showModal();
  try {
    const layers = await api("/map/layers");
    const at = tk.location || {};
    const dev = layers.devices.find((d) => d.id === (tk.source && tk.source.id));
    if (dev && dev.household) household.append(h("div", {}, h("b", {}, t("alarm_household")), " ", dev.household));
    const gw = gwMap(mapBox, { view: { center: [at.lat, at.lon], zoom: 17 } });
    gw.load(layers);
    L.circle([at.lat, at.lon], { radius: 25, className: "alarm-ring", color: "#e53935", weight: 3 }).addTo(gw.map);
    const near = layers.cameras.filter((c) => c.health === "online" || c.health === "starting").map((c) => ({ c, d: distanceM(at, c) })).sort((a, b) => a.d - b.d).slice(0, ALARM_NEAREST);
    for (const { c, d } of near) {
      const img = h("img", { alt: c.name, class: "near-snap" });
      mediaSrc(img, `/cameras/${encodeURIComponent(c.id)}/snapshot.jpg`);
      snaps.append(h("figure", { dataset: { camera: c.id } },
        h("a", { href: `#/live/${encodeURIComponent(c.id)}`, class: "near-live", title: t("live_view"), onclick: () => close() }, img),
        h("figcaption", {}, `${c.name} · ${Math.round(d)} m · `, h("a", { href: `#/live/${encodeURIComponent(c.id)}`, onclick: () => close() }, t("live_view") + " ▶"))));
    }
  } catch (e) { snaps.append(h("p", { class: "error" }, e.message)); }
}

LIVE_HOOKS.push((msg, ctx) => {
  if (msg.type !== "ticket" || !ctx.me || !ctx.me.permissions.includes("wall")) return;
  const ev = msg.event || {};
  if (ev.type !== "ticket.created" || !isUrgentAlarm(ev.ticket)) return;
  return showAlarm(ev.ticket);
});
