/* Review: alerts (tickets) and activity (recorded, never a ticket) in one list, newest first, with filters; the
   selected item's camera timeline scrubs through the evidence snapshots and clips around it. Keyboard: C confirm
   (立案派遣), D dismiss (误报), J / ↓ next, K / ↑ previous, Enter open the ticket — so an operator clears a burst
   without the mouse. The API is GET /review and GET /cameras/{id}/timeline. */
"use strict";

const REVIEW_PAGE = 50, TIMELINE_SPAN_MS = 60 * 60 * 1000;

Pages.review = async function (ctx) {
  const layers = await api("/map/layers");
  const f = {
    tier: h("select", { id: "rv-tier" }, h("option", { value: "" }, t("all")), h("option", { value: "alert" }, t("rv_alerts")), h("option", { value: "activity" }, t("rv_activity"))),
    camera: h("select", { id: "rv-camera" }, h("option", { value: "" }, t("all")), ...layers.cameras.map((c) => h("option", { value: c.id }, c.name))),
    grid: h("select", { id: "rv-grid" }, h("option", { value: "" }, t("all")),
      ...layers.grids.features.filter((g) => g.properties.mine).map((g) => h("option", { value: g.properties.code }, g.properties.name))),
    kind: h("input", { id: "rv-kind", placeholder: "crowd, intrusion…", pattern: "[a-z_]*" }),
    status: h("select", { id: "rv-status" }, h("option", { value: "" }, t("all")),
      ...["reported", "dispatched", "signed", "handling", "closed", "false_alarm"].map((s) => h("option", { value: s }, t("status." + s)))),
    since: h("input", { id: "rv-since", type: "datetime-local" }), until: h("input", { id: "rv-until", type: "datetime-local" }),
  };
  const list = h("ol", { class: "rv-list", id: "rv-list", tabindex: "0" });
  const more = h("button", { id: "rv-more", hidden: true, onclick: reported(() => load(true)) }, "…");
  const detail = h("section", { class: "rv-detail", id: "rv-detail" });
  const counter = h("span", { class: "meta", id: "rv-handled" });
  const root = h("div", { class: "review" },
    h("div", { class: "rv-bar" }, h("h2", {}, t("review")),
      ...Object.entries(f).map(([k, el]) => h("label", { class: "inline" }, t("rv_f_" + k), el)),
      h("span", { class: "meta" }, t("rv_keys")), counter),
    h("div", { class: "rv-main" }, h("div", { class: "rv-left" }, list, more), detail));
  let items = [], next = null, sel = -1, handled = 0, seq = 0;

  function query(before) {
    const q = new URLSearchParams({ limit: String(REVIEW_PAGE) });
    if (f.tier.value) q.set("tier", f.tier.value);
    if (f.camera.value) q.set("camera_id", f.camera.value);
    if (f.grid.value) q.set("grid", f.grid.value);
    if (f.kind.value.trim()) q.set("kind", f.kind.value.trim());
    if (f.status.value) q.set("status", f.status.value);
    if (f.since.value) q.set("since", new Date(f.since.value).toISOString());
    if (f.until.value) q.set("until", new Date(f.until.value).toISOString());
    if (before) q.set("before", before);
    return "/review?" + q.toString();
  }

  async function load(append) {
    const mine = ++seq;
    const page = await api(query(append ? next : null));
    if (mine !== seq) return;  // a newer filter won
    items = append ? items.concat(page.items) : page.items;
    next = page.next;
    more.hidden = !next;
    if (!append) sel = -1;
    renderList();
    if (sel < 0 && items.length) select(0);
    if (!items.length) detail.replaceChildren(h("p", { class: "empty" }, t("no_events")));
    list.dataset.loaded = String(Number(list.dataset.loaded || 0) + 1);
  }

  function row(it, i) {
    const li = h("li", { class: `rv-item tier-${it.tier}${i === sel ? " sel" : ""}${it.handled ? " handled" : ""}`,
      dataset: { id: it.id, tier: it.tier, handled: it.handled || "" }, onclick: () => select(i) },
    h("span", { class: "tier-tag" }, t("rv_" + it.tier)), " ",
    h("b", {}, t("kind." + it.kind, it.kind)), " ", it.title, " ",
    it.ticket ? statusBadge(it.ticket.status) : null,
    h("div", { class: "meta" }, `${fmtTime(it.at)} · ${it.camera_id || ""} · ${it.grid || ""}${it.ticket ? " · " + it.ticket.number : ""}`));
    return li;
  }
  function renderList() { list.replaceChildren(...items.map(row)); }

  function select(i) {
    if (i < 0 || i >= items.length) return;
    sel = i;
    list.querySelectorAll(".rv-item").forEach((el, k) => el.classList.toggle("sel", k === i));
    const el = list.children[i];
    if (el && el.scrollIntoView) el.scrollIntoView({ block: "nearest" });
    reported(showDetail)(items[i]);
  }

  async function media(url) { return url ? mediaUrl(url) : null; }

  async function showDetail(it) {
    const snap = h("img", { class: "rv-snap", id: "rv-snap", alt: t("snapshot") });
    const clip = h("video", { class: "rv-clip", id: "rv-clip", controls: true, muted: true, hidden: true });
    const cause = it.cause && it.cause.text ? h("p", { class: "rv-cause" }, it.cause.text) : null;
    const slider = h("input", { type: "range", id: "rv-scrub", min: 0, max: 0, value: 0 });
    const ticks = h("div", { class: "rv-ticks", id: "rv-ticks" });
    const tlLabel = h("span", { class: "meta", id: "rv-tl-label" });
    const buttons = h("div", { class: "buttons" },
      it.tier === "alert" ? h("button", { class: "primary", id: "rv-confirm", onclick: () => act("confirm") }, t("confirm"), " (C)") : null,
      it.tier === "alert" ? h("button", { class: "dismiss", id: "rv-dismiss", onclick: () => act("dismiss") }, t("dismiss"), " (D)") : null,
      it.tier === "activity" ? h("button", { id: "rv-seen", onclick: () => act("confirm") }, t("rv_seen"), " (C)") : null,
      it.camera_id ? h("a", { class: "button", href: `#/live/${encodeURIComponent(it.camera_id)}` }, t("live_view")) : null,
      it.ticket ? h("a", { class: "button", href: `#/ticket/${it.id.split(":")[1]}` }, t("open"), " (↵)") : null);
    detail.replaceChildren(...[h("h3", {}, t("kind." + it.kind, it.kind), " · ", it.title), cause,
      h("div", { class: "rv-media" }, snap, clip), buttons,
      it.camera_id ? h("div", { class: "rv-timeline" }, h("b", {}, t("rv_timeline")), " ", tlLabel, ticks, slider) : null].filter(Boolean));
    const show = async (x) => {
      const [s, c] = await Promise.all([media(x.snapshot_url), media(x.clip_url)]);
      if (s) { snap.src = s; snap.hidden = false; } else { snap.removeAttribute("src"); snap.hidden = true; }
      if (c) { clip.src = c; clip.hidden = false; } else { clip.removeAttribute("src"); clip.hidden = true; }
      snap.dataset.item = x.id;
    };
    show(it);
    if (!it.camera_id) return;
    const at = new Date(it.at).getTime();
    const tl = await api(`/cameras/${encodeURIComponent(it.camera_id)}/timeline?since=${encodeURIComponent(new Date(at - TIMELINE_SPAN_MS).toISOString())}&until=${encodeURIComponent(new Date(at + TIMELINE_SPAN_MS).toISOString())}`);
    if (items[sel] !== it) return;
    const pts = tl.items;
    const here = Math.max(0, pts.findIndex((x) => x.id === it.id));
    slider.max = String(Math.max(0, pts.length - 1)); slider.value = String(here);
    const t0 = at - TIMELINE_SPAN_MS;
    ticks.replaceChildren(...pts.map((x, k) => {
      const tick = h("i", { class: `tick tier-${x.tier}`, dataset: { id: x.id, k }, title: `${fmtTime(x.at)} ${x.title}`, onclick: () => { slider.value = String(k); scrub(); } });
      tick.style.left = `${((new Date(x.at).getTime() - t0) / (2 * TIMELINE_SPAN_MS)) * 100}%`;
      return tick;
    }));
    const scrub = () => {
      const x = pts[Number(slider.value)];
      if (!x) return;
      tlLabel.textContent = `${Number(slider.value) + 1}/${pts.length} · ${fmtTime(x.at)} · ${x.title}`;
      ticks.querySelectorAll(".tick").forEach((el) => el.classList.toggle("on", el.dataset.id === x.id));
      show(x);
    };
    slider.addEventListener("input", scrub);
    scrub();
  }

  async function act(what) {
    const it = items[sel];
    if (!it || it.handled) return;
    if (it.tier === "alert") {
      const id = it.id.split(":")[1];
      const action = what === "confirm" ? "register" : "false_alarm";
      try {
        const tk = await api(`/tickets/${id}/actions/${action}`, { method: "POST", body: { note: what === "confirm" ? "" : t("rv_dismiss_note") } });
        it.ticket = { number: tk.number, status: tk.status };
      } catch (e) { toast(e.message, true); return; }
    }
    it.handled = what;
    handled += 1;
    counter.textContent = `${t("rv_handled")}: ${handled}`;
    counter.dataset.count = String(handled);
    const i = sel;
    list.children[i].replaceWith(row(it, i));
    select(Math.min(i + 1, items.length - 1));
  }

  const onKey = (ev) => {
    if (ev.target && ["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName)) return;
    if (document.querySelector("dialog[open]")) return;
    const k = ev.key.toLowerCase();
    if (k === "c") act("confirm");
    else if (k === "d") act("dismiss");
    else if (k === "j" || k === "arrowdown") select(sel + 1);
    else if (k === "k" || k === "arrowup") select(sel - 1);
    else if (k === "enter" && items[sel] && items[sel].ticket) location.hash = `#/ticket/${items[sel].id.split(":")[1]}`;
    else return;
    ev.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  Object.values(f).forEach((el) => el.addEventListener("change", reported(() => load(false))));
  ctx.cleanup = () => document.removeEventListener("keydown", onKey);
  await load(false);
  return root;
};
