/* Dispatcher's hotline / front-desk form: geocode the address (or pick on the map), suggestion + override. */
"use strict";
const hs = { token: "", lon: null, lat: null, map: null };

async function ready(token) {
  hs.token = token;
  $("#form").classList.remove("hidden");
  const cfg = await api("/reports/public/config");
  for (const c of cfg.categories) $("#category").append(el("option", { value: c.code }, c.name + (c.handover ? `（转${c.handover}）` : "")));
  for (const [k, v] of Object.entries(cfg.urgency)) $("#urgency").append(el("option", { value: k }, v));
  $("#urgency").value = "normal";
  const grids = await api("/reports/public/grids");
  hs.map = new PickMap($("#map"), grids, (lon, lat, grid) => {
    hs.lon = lon; hs.lat = lat;
    $("#geo").textContent = `地图点选 ${lon.toFixed(5)}, ${lat.toFixed(5)} ${grid ? grid.name : "（不在网格内）"}`;
  });
}

$("#geocode").addEventListener("click", async () => {
  clearError($("#error"));
  try {
    const g = await api("/reports/geocode?q=" + encodeURIComponent($("#address").value), { token: hs.token });
    if (g.match) { hs.map.set(g.match.lon, g.match.lat); $("#geo").textContent = `匹配：${g.match.name}（${g.match.how}）`; }
    else $("#geo").textContent = g.candidates.length ? "不确定，候选：" + g.candidates.map(c => c.name).join("、") + "；请在地图上点选"
                                                     : "地址库中未找到，请在地图上点选位置";
  } catch (e) { showError($("#error"), e); }
});

$("#suggest").addEventListener("click", async () => {
  clearError($("#error"));
  try {
    const s = await api("/reports/classify", { method: "POST", json: { text: $("#text").value }, token: hs.token });
    $("#category").value = s.category; $("#urgency").value = s.urgency;
    renderSuggestion($("#suggestion"), s, (t, i) => {
      $("#category").value = t.code;
      if (t.critical && s.dangers && s.dangers.length) $("#urgency").value = "critical";
      for (const b of $("#suggestion").querySelectorAll("button.pick")) b.classList.toggle("chosen", b.dataset.code === t.code);
    });
  } catch (e) { showError($("#error"), e); }
});

$("#submit").addEventListener("click", async () => {
  clearError($("#error"));
  const f = new FormData();
  for (const k of ["text", "caller", "phone", "line", "address", "category", "urgency"]) if ($("#" + k).value) f.append(k, $("#" + k).value);
  if (hs.lon !== null) { f.append("lon", hs.lon); f.append("lat", hs.lat); }
  try {
    const r = await api("/reports/hotline", { method: "POST", form: f, token: hs.token });
    $("#result").replaceChildren(el("div", { class: "ok" }, `已受理：${r.case_number}，派至 ${r.grid_name}` + (r.merged ? "（与已有案件合并）" : "")),
      r.handover ? el("div", { class: "warn" }, `请立即移交 ${r.handover_label}`) : "");
  } catch (e) { showError($("#error"), e); }
});

wireStaffLogin(t => ready(t).catch(e => showError($("#error"), e)));
