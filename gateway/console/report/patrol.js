/* Grid worker's patrol report (采): found on the street, filed with photos and position, usually self-handled. */
"use strict";
const ps = { token: "", lon: null, lat: null, map: null };

async function ready(token) {
  ps.token = token;
  $("#form").classList.remove("hidden");
  const cfg = await api("/reports/public/config");
  for (const c of cfg.categories) $("#category").append(el("option", { value: c.code }, c.name));
  const grids = await api("/reports/public/grids");
  ps.map = new PickMap($("#map"), grids, (lon, lat, grid) => {
    ps.lon = lon; ps.lat = lat;
    $("#picked").textContent = `${lon.toFixed(5)}, ${lat.toFixed(5)} ${grid ? grid.name : "（不在网格内）"}`;
  });
}

$("#locate").addEventListener("click", () => navigator.geolocation && navigator.geolocation.getCurrentPosition(
  p => ps.map.set(p.coords.longitude, p.coords.latitude), () => showError($("#error"), new Error("未能获取位置，请在地图上点选"))));

$("#submit").addEventListener("click", async () => {
  clearError($("#error"));
  if (ps.lon === null) return showError($("#error"), new Error("请选择位置"));
  const f = new FormData();
  f.append("text", $("#text").value); f.append("lon", ps.lon); f.append("lat", ps.lat);
  if ($("#category").value) f.append("category", $("#category").value);
  for (const p of $("#photos").files) f.append("photos", await shrinkPhoto(p));
  try {
    const r = await api("/reports/patrol", { method: "POST", form: f, token: ps.token });
    $("#result").replaceChildren(el("div", { class: "ok" }, `已上报：${r.case_number}（${r.status_label}，${r.grid_name}）`));
  } catch (e) { showError($("#error"), e); }
});

wireStaffLogin(t => ready(t).catch(e => showError($("#error"), e)));
