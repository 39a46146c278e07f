/* 研判 / early warning: hotspots on a heat map, week-over-week per category and grid, repeat addresses, and the
   early-warning rule (a grid's count of a category above its own baseline → a supervised 督办 case). */
"use strict";

Pages.analysis = async function (ctx) {
  let days = Number(sessionStorage.getItem("gw.analysis.days") || 30);
  const [data, layers] = await Promise.all([api(`/analysis?days=${days}`), api("/map/layers")]);
  const gridName = new Map(layers.grids.features.map((f) => [f.properties.code, f.properties.name]));
  const catName = (code) => data.categories[code] || code;
  await chartFontReady(Object.values(data.categories).join(""));
  const daysSel = h("select", { id: "an-days", onchange: () => { sessionStorage.setItem("gw.analysis.days", daysSel.value); route(); } },
    ...[7, 30, 90].map((d) => h("option", { value: d, selected: d === days }, `${d}`)));
  const filedBox = h("div", { id: "an-filed" });
  const runBtn = h("button", { class: "primary", id: "an-run", onclick: run }, t("run_warning"));
  const mapBox = h("div", { class: "leaflet-box", id: "an-map" });
  const wowChart = h("div", { class: "chart", id: "an-wow" });
  const pct = (r) => (r == null ? "—" : `${r > 0 ? "+" : ""}${Math.round(r * 100)}%`);
  const wowRows = (rows, label) => rows.map((r) => h("tr", { dataset: { key: r.key } }, h("td", {}, label(r.key)), h("td", {}, r.this_week), h("td", {}, r.last_week),
    h("td", { class: r.change > 0 ? "up" : r.change < 0 ? "down" : "" }, `${r.change > 0 ? "+" : ""}${r.change} (${pct(r.change_rate)})`)));
  const wowHead = (k) => h("thead", {}, h("tr", {}, h("th", {}, k), h("th", {}, t("this_week")), h("th", {}, t("last_week")), h("th", {}, t("change"))));
  const warnRows = h("tbody", {}, data.early_warnings.map((w) => h("tr", { class: "warning", dataset: { grid: w.grid_code, category: w.category } },
    h("td", {}, gridName.get(w.grid_code) || w.grid_code), h("td", {}, catName(w.category)), h("td", {}, w.count),
    h("td", {}, w.baseline.toFixed(1)), h("td", {}, w.threshold.toFixed(1)))));
  const hotspotTable = h("table", { class: "hotspots" },
    h("thead", {}, h("tr", {}, h("th", {}, t("place")), h("th", {}, t("grid")), h("th", {}, t("count")))),
    h("tbody", {}, data.hotspots.places.slice(0, 10).map((p) => h("tr", { class: "hotspot", dataset: { grid: p.grid_code } },
      h("td", {}, p.address || `${p.lon.toFixed(5)}, ${p.lat.toFixed(5)}`), h("td", {}, gridName.get(p.grid_code) || p.grid_code), h("td", {}, p.count)))));
  const warnTable = h("table", { class: "warnings" },
    h("thead", {}, h("tr", {}, h("th", {}, t("grid")), h("th", {}, t("category")), h("th", {}, t("count")), h("th", {}, t("baseline")), h("th", {}, t("margin")))),
    warnRows);
  const repeatTable = h("table", { class: "repeats" },
    h("thead", {}, h("tr", {}, h("th", {}, t("address")), h("th", {}, t("count")), h("th", {}, t("tickets")))),
    h("tbody", {}, data.repeat_addresses.map((r) => h("tr", { class: "repeat" }, h("td", {}, r.address), h("td", {}, r.count),
      h("td", {}, r.ticket_ids.slice(-5).map((id) => h("a", { href: `#/ticket/${id}`, class: "small" }, ` #${id}`)))))));
  const root = h("div", { class: "analysis" },
    h("h2", {}, t("analysis"), " ", h("label", { class: "inline" }, t("window_days"), daysSel)),
    h("div", { class: "cols" },
      h("section", {}, h("h3", {}, t("hotspots"), " · ", t("heat")), mapBox, hotspotTable),
      h("section", {},
        h("h3", {}, t("early_warning")), warnTable, h("div", { class: "buttons" }, runBtn), filedBox,
        h("h3", {}, t("wow")), wowChart,
        h("table", { class: "wow-cat" }, wowHead(t("category")), h("tbody", {}, wowRows(data.week_over_week.by_category, catName))),
        h("table", { class: "wow-grid" }, wowHead(t("grid")), h("tbody", {}, wowRows(data.week_over_week.by_grid, (k) => gridName.get(k) || k))),
        h("h3", {}, t("repeat_addresses")), repeatTable)));

  async function run() {
    runBtn.disabled = true;
    try {
      const out = await api("/analysis/early-warning", { method: "POST" });
      filedBox.replaceChildren(...out.filed.map((f) => h("p", { class: "filed", dataset: { id: f.ticket_id } }, t("supervision_filed"), ": ",
        h("a", { href: `#/ticket/${f.ticket_id}` }, f.number), ` · ${gridName.get(f.grid_code) || f.grid_code}`, f.new ? "" : " (✓)")));
      if (!out.filed.length) filedBox.replaceChildren(h("p", { class: "meta" }, "—"));
    } catch (e) { toast(e.message, true); }
    runBtn.disabled = false;
  }

  let chart = null, gw = null;
  ctx.mount = () => {
    gw = gwMap(mapBox, {});
    gw.load(layers);
    gw.setHeat(data.hotspots.heat);
    window.gwAnalysisMap = gw;
    chart = makeChart(wowChart);
    const rows = data.week_over_week.by_category.slice(0, 8);
    chart.setOption(chartBase({
      tooltip: { trigger: "axis", renderMode: "richText" }, legend: { top: 0, textStyle: { color: "#b0bec5" } },
      grid: { left: 8, right: 16, top: 28, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: rows.map((r) => catName(r.key)), axisLabel: { color: "#b0bec5" } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#78909c" }, splitLine: { lineStyle: { color: "#263445" } } },
      series: [{ type: "bar", name: t("this_week"), data: rows.map((r) => r.this_week), itemStyle: { color: "#4fc3f7" } },
        { type: "bar", name: t("last_week"), data: rows.map((r) => r.last_week), itemStyle: { color: "#78909c" } }],
    }));
  };
  ctx.cleanup = () => { if (chart) chart.gwDispose(); if (gw) gw.map.remove(); window.gwAnalysisMap = null; };
  return root;
};
