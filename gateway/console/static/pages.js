/* Console pages: event wall, ticket detail, duty queue, KPIs, live view. Each returns a DOM node. */
"use strict";
const Pages = {};

function ticketCard(tk, { onChange, wall } = {}) {
  const img = h("img", { class: "thumb", alt: t("snapshot") });
  if (tk.snapshot) mediaSrc(img, tk.snapshot);
  else img.classList.add("none");
  const act = async (action, ok) => {
    try {
      await api(`/tickets/${tk.id}/actions/${action}`, { method: "POST", body: { note: "" } });
      toast(ok || t("action." + action));
      if (onChange) await onChange();
    } catch (e) { toast(e.message, true); }
  };
  const buttons = [];
  if (wall) {
    buttons.push(h("button", { class: "primary confirm", onclick: () => act(wall.confirm, t("confirmed_ok")) }, t("confirm")));
    buttons.push(h("button", { class: "dismiss", onclick: () => act(wall.dismiss, t("dismissed_ok")) }, t("dismiss")));
  }
  if (tk.source.kind === "camera") buttons.push(h("a", { class: "button", href: `#/live/${encodeURIComponent(tk.source.id)}` }, t("live_view")));
  buttons.push(h("a", { class: "button", href: `#/ticket/${tk.id}` }, t("open")));
  return h("article", { class: `card sev-${tk.severity}`, dataset: { id: tk.id, status: tk.status } },
    img,
    h("div", { class: "card-body" },
      h("div", { class: "card-title" }, statusBadge(tk.status), " ", tk.title),
      h("div", { class: "meta" }, `${tk.number} · ${tk.category_name || tk.category} · ${tk.grid_name || tk.grid_code}`),
      h("div", { class: "meta" }, `${t("source")}: ${tk.source.id} · ${fmtTime(tk.created_at)}`),
      h("div", { class: "buttons" }, buttons)));
}

Pages.wall = async function (ctx) {
  const list = h("section", { class: "cards", id: "wall-cards" });
  const feed = h("ol", { class: "feed", id: "live-feed" });
  const root = h("div", { class: "wall" },
    h("section", { class: "wall-main" }, h("h2", {}, t("wall")), list),
    h("aside", { class: "wall-feed" }, h("h2", {}, t("live_feed")), feed));
  async function load() {
    const page = await api("/wall");
    list.replaceChildren(...(page.items.length ? page.items.map((tk) => ticketCard(tk, { onChange: load, wall: page.actions }))
      : [h("p", { class: "empty" }, t("no_events"))]));
  }
  await load();
  let timer = null;
  ctx.onLive = (msg) => {
    if (msg.type === "anomaly") {
      const a = msg.anomaly;
      feed.prepend(h("li", { class: "feed-item", dataset: { kind: a.kind, source: a.source_id } },
        h("b", {}, t("kind." + a.kind, a.title || a.kind)), " ", a.source_id, " ", h("span", { class: "meta" }, fmtTime(a.occurred_at)),
        a.source === "camera" ? h("a", { href: `#/live/${encodeURIComponent(a.source_id)}`, class: "small" }, " ▶") : null));
      while (feed.children.length > 50) feed.lastChild.remove();
    }
    clearTimeout(timer);
    timer = setTimeout(() => load().catch(() => {}), 300);
  };
  return root;
};

function fieldRow(label, value) { return h("tr", {}, h("th", {}, label), h("td", {}, value ?? "")); }

async function actionForm(tk, action, after) {
  const note = h("textarea", { name: "note", rows: 2, placeholder: t("note") });
  const extra = [];
  let until = null, score = null;
  if (["request_extension", "extend"].includes(action)) {
    until = h("input", { type: "datetime-local", name: "until", required: true });
    extra.push(h("label", {}, t("new_deadline"), until));
  }
  if (action === "rate") {
    score = h("input", { type: "number", name: "score", min: 1, max: 5, value: 5 });
    extra.push(h("label", {}, t("rate"), score));
  }
  const dlg = h("dialog", { class: "action-dialog" },
    h("form", { method: "dialog" },
      h("h3", {}, t("action." + action)), ...extra, note,
      h("div", { class: "buttons" },
        h("button", { value: "ok", class: "primary", type: "submit" }, t("submit")),
        h("button", { value: "cancel", type: "button", onclick: () => dlg.close("cancel") }, t("cancel")))));
  document.body.append(dlg);
  dlg.addEventListener("close", async () => {
    dlg.remove();
    if (dlg.returnValue !== "ok") return;
    const body = { note: note.value };
    if (until) body.until = new Date(until.value).toISOString();
    if (score) body.score = Number(score.value);
    try {
      await api(`/tickets/${tk.id}/actions/${action}`, { method: "POST", body });
      toast(t("action." + action));
      if (after) await after();
    } catch (e) { toast(e.message, true); }
  });
  dlg.showModal();
}

function actionButtons(tk, after) {
  return h("div", { class: "buttons actions" }, tk.allowed_actions.map((a) =>
    h("button", { class: "action", dataset: { action: a }, onclick: () => actionForm(tk, a, after) }, t("action." + a))));
}

Pages.ticket = async function (ctx, id) {
  const root = h("div", { class: "ticket" });
  async function load() {
    const tk = await api(`/tickets/${encodeURIComponent(id)}`);
    const evidence = h("div", { class: "evidence" });
    for (const ev of tk.evidence) {
      const url = await mediaUrl(ev.url);
      evidence.append(ev.content_type.startsWith("image/") ? h("a", { href: url, target: "_blank" }, h("img", { src: url, alt: ev.kind }))
        : h("a", { href: url, target: "_blank" }, ev.kind));
    }
    root.replaceChildren(
      h("h2", {}, statusBadge(tk.status), " ", tk.title, " ", h("small", {}, tk.number)),
      h("div", { class: "two" },
        h("table", { class: "fields" },
          fieldRow(t("category"), tk.category_name || tk.category), fieldRow(t("severity"), t("severity." + tk.severity)),
          fieldRow(t("grid"), `${tk.grid_name || ""} ${tk.grid_code}`), fieldRow(t("address"), tk.address),
          fieldRow(t("source"), `${tk.source.kind} ${tk.source.id}`), fieldRow(t("created"), fmtTime(tk.created_at)),
          fieldRow(t("sign_deadline"), fmtTime(tk.sign_deadline)), fieldRow(t("handle_deadline"), fmtTime(tk.handle_deadline)),
          fieldRow(t("assignee"), tk.assignee), fieldRow(t("occurrences"), tk.occurrence_count)),
        h("div", {}, h("h3", {}, t("actions")), tk.allowed_actions.length ? actionButtons(tk, load) : h("p", { class: "meta" }, "—"),
          tk.source.kind === "camera" ? h("p", {}, h("a", { class: "button", href: `#/live/${encodeURIComponent(tk.source.id)}` }, t("live_view"))) : null)),
      h("h3", {}, t("evidence")), evidence,
      h("h3", {}, t("history")),
      h("table", { class: "history" },
        h("thead", {}, h("tr", {}, h("th", {}, t("at")), h("th", {}, t("actor")), h("th", {}, t("action")), h("th", {}, t("from_to")), h("th", {}, t("note")))),
        h("tbody", {}, tk.history.map((e) => h("tr", {}, h("td", {}, fmtTime(e.at)), h("td", {}, e.actor), h("td", {}, t("action." + e.action, e.action)),
          h("td", {}, e.from_status ? `${t("status." + e.from_status)} → ${t("status." + e.to_status)}` : (e.to_status ? t("status." + e.to_status) : "")),
          h("td", {}, e.note))))));
  }
  await load();
  ctx.onLive = (msg) => { if (msg.type === "ticket" && String(msg.event.ticket ? msg.event.ticket.id : "") === String(id)) return load(); };
  return root;
};

Pages.queue = async function (ctx) {
  const list = h("div", { class: "queue" });
  async function load() {
    const page = await api("/queue");
    list.replaceChildren(...(page.items.length ? page.items.map((tk) => h("article", { class: `qcard sev-${tk.severity}`, dataset: { id: tk.id, status: tk.status } },
      h("div", { class: "card-title" }, statusBadge(tk.status), " ", h("a", { href: `#/ticket/${tk.id}` }, tk.title)),
      h("div", { class: "meta" }, `${tk.number} · ${tk.grid_name || tk.grid_code}`),
      h("div", { class: "meta" }, tk.address || ""),
      h("div", { class: "meta deadline" }, tk.signed_at ? `${t("handle_deadline")}: ${fmtTime(tk.handle_deadline)}` : `${t("sign_deadline")}: ${fmtTime(tk.sign_deadline)}`),
      actionButtons(tk, load))) : [h("p", { class: "empty" }, t("empty_queue"))]));
  }
  await load();
  ctx.onLive = (msg) => { if (msg.type === "ticket") return load(); };
  return h("div", { class: "queue-page" }, h("h2", {}, t("queue"), " ", h("button", { onclick: reported(load), class: "small" }, t("refresh")),
    " ", h("a", { href: "/report/patrol.html", class: "button small" }, t("patrol_report"))), list);
};

Pages.kpi = async function () {
  const month = h("input", { type: "month", id: "kpi-month", value: new Date().toISOString().slice(0, 7) });
  const all = h("input", { type: "checkbox", id: "kpi-all", checked: true });
  const body = h("div");
  const pct = (v) => (v == null ? "—" : (v * 100).toFixed(1) + "%");
  const num = (v) => (v == null ? "—" : v.toFixed(1));
  async function load() {
    let q = "?group_by=grid";
    if (!all.checked && month.value) {
      const [y, m] = month.value.split("-").map(Number);
      const since = new Date(Date.UTC(y, m - 1, 1, -8)), until = new Date(Date.UTC(y, m, 1, -8)); // Asia/Shanghai month
      q += `&since=${encodeURIComponent(since.toISOString())}&until=${encodeURIComponent(until.toISOString())}`;
    }
    const k = await api("/kpis" + q);
    const o = k.overall;
    const tiles = h("div", { class: "tiles" },
      [["kpi_total", o.cases], ["kpi_open", o.open], ["kpi_closed", o.closed], ["kpi_sign_on_time", pct(o.sign_on_time_rate)],
        ["kpi_on_time", pct(o.close_on_time_rate)], ["kpi_rework", pct(o.rework_rate)], ["kpi_extension", pct(o.extension_rate)],
        ["kpi_sign_min", num(o.time_to_sign_min.mean)], ["kpi_close_min", num(o.time_to_close_min.mean)], ["kpi_satisfaction", pct(o.satisfaction_rate)]]
        .map(([key, v]) => h("div", { class: "tile", dataset: { kpi: key } }, h("div", { class: "tile-v" }, v), h("div", { class: "tile-k" }, t(key)))));
    const label = (g) => g.name || g.key;
    body.replaceChildren(tiles, h("div", { class: "charts" },
      barChart(k.groups.map((g) => ({ label: label(g), value: g.cases })), { title: `${t("kpi_by_grid")} · ${t("kpi_total")}`, fmt: (v) => v }),
      barChart(k.groups.map((g) => ({ label: label(g), value: g.close_on_time_rate })), { title: `${t("kpi_by_grid")} · ${t("kpi_on_time")}`, max: 1, fmt: pct, colour: "#43a047" }),
      barChart(k.groups.map((g) => ({ label: label(g), value: g.sign_on_time_rate })), { title: `${t("kpi_by_grid")} · ${t("kpi_sign_on_time")}`, max: 1, fmt: pct, colour: "#1e88e5" }),
      barChart(k.groups.map((g) => ({ label: label(g), value: g.rework_rate })), { title: `${t("kpi_by_grid")} · ${t("kpi_rework")}`, max: 1, fmt: pct, colour: "#6d4c41" })));
  }
  month.addEventListener("change", reported(() => { all.checked = false; return load(); }));
  all.addEventListener("change", reported(load));
  await load();
  return h("div", { class: "kpi" }, h("h2", {}, t("kpi")),
    h("div", { class: "buttons" }, h("label", { class: "inline" }, t("period"), month), h("label", { class: "inline" }, all, t("all"))), body);
};

/* The live view: WebRTC first, MJPEG when it fails. Its set-up is a chain of awaits (offer, ICE gathering, the
   answer, a media token) that can outlive the page: leaving the page (navigating, logging out) aborts it, a newer
   start supersedes an older one, and every step checks both before it goes on, so nothing is sent after the page
   is gone and never without a token; a failure ends as a readable line in the tile, never as an unhandled rejection. */
class LiveCancelled extends Error {}

/* Resolves when ICE gathering completes, after ``ms`` at most, or at once when ``signal`` aborts. */
function iceGathered(pc, signal, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete" || signal.aborted) return resolve();
    const done = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); signal.removeEventListener("abort", done); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
    signal.addEventListener("abort", done);
  });
}

Pages.live = async function (ctx, cameraId) {
  const video = h("video", { id: "live-video", autoplay: true, muted: true, playsinline: true });
  video.muted = true;
  const img = h("img", { id: "live-mjpeg", hidden: true, alt: "MJPEG" });
  const state = h("span", { class: "meta", id: "live-state-text" }, t("connecting"));
  const error = h("p", { class: "error", id: "live-error", hidden: true });
  const left = new AbortController();  // aborted when the page is left
  const cam = encodeURIComponent(cameraId);
  let pc = null;
  let attempt = 0;  // the newest start; an older one still negotiating stops at its next step
  /* Throws LiveCancelled when attempt ``n`` must not go on: the page was left, a newer start began, or the session ended. */
  function proceed(n) {
    if (left.signal.aborted || n !== attempt || !Auth.access) throw new LiveCancelled();
  }
  function closePeer() { if (pc) { pc.onconnectionstatechange = null; pc.ontrack = null; pc.close(); pc = null; } }
  function showError(key, e) { error.textContent = `${t(key)}: ${e.message || e}`; error.hidden = false; }
  async function startWebRTC(n) {
    img.hidden = true; img.removeAttribute("src"); video.hidden = false;
    const peer = (pc = new RTCPeerConnection({ iceServers: [] }));
    peer.addTransceiver("video", { direction: "recvonly" });
    peer.ontrack = (ev) => { video.srcObject = ev.streams[0] || new MediaStream([ev.track]); video.play().catch(() => {}); };
    peer.onconnectionstatechange = () => {
      state.textContent = `${t("webrtc")}: ${peer.connectionState}`;
      if (peer.connectionState === "failed" && peer === pc) connect("mjpeg", new Error(`${t("webrtc")}: failed`));
    };
    const offer = await peer.createOffer();
    proceed(n);
    await peer.setLocalDescription(offer);
    proceed(n);
    await iceGathered(peer, left.signal, 2000);
    proceed(n);
    const answer = await api(`/cameras/${cam}/webrtc`, { method: "POST", body: { sdp: peer.localDescription.sdp, type: "offer" }, signal: left.signal });
    proceed(n);
    await peer.setRemoteDescription(answer);
  }
  async function startMjpeg(n) {
    closePeer();
    video.hidden = true; video.srcObject = null;
    const url = await mediaUrl(`/cameras/${cam}/mjpeg`, left.signal);
    proceed(n);
    img.hidden = false;
    img.src = url;
    state.textContent = t("mjpeg");
  }
  /* One start (``kind`` "webrtc" falls back to MJPEG); it never rejects. ``why`` is the failure that led here. */
  async function connect(kind, why) {
    const n = ++attempt;
    closePeer();
    error.hidden = true;
    if (why) showError("live_webrtc_failed", why);
    let outcome = kind;
    try {
      if (kind === "webrtc") {
        try { await startWebRTC(n); return; } catch (e) {
          if (e instanceof LiveCancelled || left.signal.aborted) throw e;
          proceed(n);
          showError("live_webrtc_failed", e);
          outcome = "mjpeg";
        }
      }
      await startMjpeg(n);
    } catch (e) {
      if (e instanceof LiveCancelled || left.signal.aborted) { outcome = "cancelled"; return; }
      outcome = "failed";
      state.textContent = t("error");
      showError("live_mjpeg_failed", e);
    } finally {
      window.gwLiveSetup = { camera: cameraId, attempt: n, outcome };  // read by the browser tests
    }
  }
  img.addEventListener("error", () => {
    if (!left.signal.aborted && img.getAttribute("src")) showError("live_mjpeg_failed", new Error(t("live_stream_ended")));
  });
  ctx.cleanup = () => { left.abort(); attempt += 1; closePeer(); img.removeAttribute("src"); };
  window.gwLiveSetup = null;
  connect("webrtc");
  return h("div", { class: "live" },
    h("h2", {}, t("live"), " · ", cameraId, " ", state),
    h("div", { class: "buttons" },
      h("button", { id: "use-webrtc", onclick: () => connect("webrtc") }, t("webrtc")),
      h("button", { id: "use-mjpeg", onclick: () => connect("mjpeg") }, t("mjpeg"))),
    error,
    h("div", { class: "player" }, video, img));
};
