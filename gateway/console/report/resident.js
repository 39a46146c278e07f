/* The resident page: log in with an SMS code, report with photos and a map pick, follow, add, rate. */
"use strict";
const state = { token: sessionStorage.getItem("gw_resident") || "", lon: null, lat: null, crs: "WGS84", map: null, grids: null,
                current: null, score: 0, surveyScore: 0 };

function stars(box, onPick) {
  box.replaceChildren();
  for (let i = 1; i <= 5; i++) {
    box.append(el("button", { type: "button", "data-score": i, onclick: () => {
      for (const b of box.children) b.classList.toggle("on", Number(b.dataset.score) <= i);
      onPick(i);
    } }, "★"));
  }
}

async function loadMap() {
  if (state.map) return;
  state.grids = await api("/reports/public/grids");
  state.map = new PickMap($("#map"), state.grids, (lon, lat, grid) => {
    state.lon = lon; state.lat = lat; state.crs = "WGS84";
    $("#picked").textContent = `已选位置 ${lon.toFixed(5)}, ${lat.toFixed(5)}` + (grid ? `（${grid.name}）` : "（不在网格内）");
  });
  const cfg = await api("/reports/public/config");
  for (const c of cfg.categories) $("#category").append(el("option", { value: c.code }, c.name));
}

function loggedIn() {
  $("#login").classList.add("hidden");
  for (const id of ["#report", "#mine"]) $(id).classList.remove("hidden");
  loadMap().catch(e => showError($("#report-error"), e));
  refresh();
}

$("#send-code").addEventListener("click", async () => {
  clearError($("#login-error"));
  try { const r = await api("/reports/public/otp", { method: "POST", json: { phone: $("#phone").value } });
        $("#send-code").textContent = `验证码已发送至 ${r.phone}`; }
  catch (e) { showError($("#login-error"), e); }
});

$("#do-login").addEventListener("click", async () => {
  clearError($("#login-error"));
  try {
    const r = await api("/reports/public/login", { method: "POST", json: { phone: $("#phone").value, code: $("#code").value } });
    state.token = r.token; sessionStorage.setItem("gw_resident", r.token); loggedIn();
  } catch (e) { showError($("#login-error"), e); }
});

$("#locate").addEventListener("click", () => {
  if (!navigator.geolocation) return showError($("#report-error"), new Error("此设备无法获取位置，请在地图上点选"));
  navigator.geolocation.getCurrentPosition(
    p => state.map.set(p.coords.longitude, p.coords.latitude),   // the browser's position is WGS-84
    () => showError($("#report-error"), new Error("未能获取位置，请在地图上点选")), { timeout: 10000 });
});

$("#submit").addEventListener("click", async () => {
  clearError($("#report-error"));
  if (state.lon === null) return showError($("#report-error"), new Error("请在地图上选择问题发生的位置"));
  const form = new FormData();
  form.append("text", $("#text").value);
  form.append("lon", state.lon); form.append("lat", state.lat); form.append("crs", state.crs);
  if ($("#category").value) form.append("category", $("#category").value);
  for (const f of $("#photos").files) form.append("photos", await shrinkPhoto(f));
  $("#submit").disabled = true;
  try {
    const r = await api("/reports/resident", { method: "POST", form, token: state.token });
    const res = $("#result");
    res.replaceChildren(el("div", { class: "ok", "data-testid": "result" },
      el("div", {}, "已受理，案件编号："), el("div", { class: "big", "data-testid": "case-number" }, r.case_number),
      el("div", {}, `类别：${r.category_name}（识别置信度 ${(r.suggestion.confidence * 100).toFixed(0)}%）`),
      el("div", { "data-testid": "grid-name" }, `责任网格：${r.grid_name}`),
      r.merged ? el("div", {}, "同一问题已有人反映，已合并处理") : null),
      r.handover ? el("div", { class: "warn" }, `紧急情况已同步${r.handover_label}，如有危险请直接拨打 ${r.handover}`) : "");
    res.classList.remove("hidden");
    $("#text").value = ""; $("#photos").value = "";
    refresh();
  } catch (e) { showError($("#report-error"), e); }
  finally { $("#submit").disabled = false; }
});

async function refresh() {
  try {
    const items = await api("/reports/mine", { token: state.token });
    $("#list").replaceChildren(...items.map(it => el("div", { class: "case", "data-case": it.case_number },
      el("div", {}, el("b", {}, it.case_number || "待受理"), " ", el("span", { class: "badge", "data-testid": "status" }, it.status_label)),
      el("div", { class: "muted" }, `${it.category_name} · ${fmtTime(it.created_at)}`),
      el("div", {}, it.text.slice(0, 60)),
      el("button", { class: "secondary", type: "button", onclick: () => openDetail(it.report_id) }, it.can_rate ? "查看并评价" : "查看进度"))));
    if (!items.length) $("#list").replaceChildren(el("div", { class: "muted" }, "还没有反映记录"));
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem("gw_resident"); location.reload(); }
  }
}
$("#refresh").addEventListener("click", refresh);

async function openDetail(id) {
  clearError($("#detail-error"));
  const d = await api(`/reports/mine/${id}`, { token: state.token });
  state.current = d;
  $("#detail-body").replaceChildren(
    el("div", {}, el("b", {}, d.case_number), " ", el("span", { class: "badge", "data-testid": "detail-status" }, d.status_label)),
    el("div", { class: "muted" }, `${d.category_name} · ${d.grid_name || ""}`),
    el("ul", { class: "timeline" }, (d.timeline || []).map(s => el("li", {}, `${fmtTime(s.at)} ${s.label}`, s.note ? el("div", { class: "muted" }, s.note) : null))),
    d.rating ? el("div", { class: "ok", "data-testid": "rated" }, `您的评价：${"★".repeat(d.rating)}`) : null);
  $("#rate-box").classList.toggle("hidden", !d.can_rate);
  $("#info-box").classList.toggle("hidden", ["closed", "rated", "void", "false_alarm"].includes(d.status));
  stars($("#stars"), s => { state.score = s; });
  $("#detail").classList.remove("hidden");
  $("#detail").scrollIntoView();
}

$("#rate").addEventListener("click", async () => {
  clearError($("#detail-error"));
  if (!state.score) return showError($("#detail-error"), new Error("请先选择星级"));
  try {
    await api(`/reports/mine/${state.current.report_id}/rating`, { method: "POST", token: state.token,
      json: { score: state.score, comment: $("#rate-comment").value, resolved: state.score >= 3 } });
    await openDetail(state.current.report_id); refresh();
  } catch (e) { showError($("#detail-error"), e); }
});

$("#add-info").addEventListener("click", async () => {
  clearError($("#detail-error"));
  const form = new FormData(); form.append("text", $("#info-text").value);
  try { await api(`/reports/mine/${state.current.report_id}/info`, { method: "POST", form, token: state.token });
        $("#info-text").value = ""; openDetail(state.current.report_id); }
  catch (e) { showError($("#detail-error"), e); }
});

async function openSurvey(token) {
  $("#login").classList.add("hidden");
  $("#survey").classList.remove("hidden");
  try {
    const s = await api(`/reports/survey/${encodeURIComponent(token)}`);
    $("#survey-body").replaceChildren(el("div", {}, `案件 ${s.case_number}（${s.category_name}）已办结，请评价处理结果。`),
      s.answered ? el("div", { class: "ok" }, "您已评价，感谢！") : null);
  } catch (e) { showError($("#survey-error"), e); }
  stars($("#survey-stars"), s => { state.surveyScore = s; });
  $("#survey-send").addEventListener("click", async () => {
    clearError($("#survey-error"));
    if (!state.surveyScore) return showError($("#survey-error"), new Error("请先选择星级"));
    try { await api(`/reports/survey/${encodeURIComponent(token)}`, { method: "POST",
            json: { score: state.surveyScore, comment: $("#survey-comment").value } });
          $("#survey-body").replaceChildren(el("div", { class: "ok" }, "感谢您的评价！")); }
    catch (e) { showError($("#survey-error"), e); }
  });
}

const survey = new URLSearchParams(location.hash.slice(1)).get("survey");
if (survey) openSurvey(survey); else if (state.token) loggedIn();
