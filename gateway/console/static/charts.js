/* ECharts (vendored) helpers shared by the big screen and 研判: one dark style, the bundled font, canvas-drawn
   tooltips (the CSP forbids the inline styles of ECharts' HTML tooltips), resize with the window. */
"use strict";

const CHART_FONT = '"Noto Sans SC", sans-serif';

/* Load the font slices the labels need before a chart measures them (the font comes in unicode-range slices). */
async function chartFontReady(text = "") {
  try { await document.fonts.load(`14px ${CHART_FONT}`, "网格案件状态类别趋势0123456789" + text); } catch (e) { /* the fallback font draws */ }
}

function makeChart(el) {
  const chart = echarts.init(el, "dark", { renderer: "canvas" });
  const onResize = () => chart.resize();
  window.addEventListener("resize", onResize);
  chart.gwDispose = () => { window.removeEventListener("resize", onResize); chart.dispose(); };
  return chart;
}

function chartBase(extra) {
  return Object.assign({
    backgroundColor: "transparent",
    textStyle: { fontFamily: CHART_FONT },
    tooltip: { trigger: "item", renderMode: "richText" },
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
    animation: false,   // a wall display redraws every few seconds; growing bars would only flicker
  }, extra);
}

function barOption(rows, { colour = "#4fc3f7", horizontal = true } = {}) {
  const labels = rows.map((r) => r.label), values = rows.map((r) => r.value);
  const cat = { type: "category", data: horizontal ? [...labels].reverse() : labels, axisLabel: { color: "#b0bec5", fontFamily: CHART_FONT } };
  const val = { type: "value", minInterval: 1, axisLabel: { color: "#78909c" }, splitLine: { lineStyle: { color: "#263445" } } };
  return chartBase({
    tooltip: { trigger: "axis", renderMode: "richText" },
    xAxis: horizontal ? val : cat, yAxis: horizontal ? cat : val,
    series: [{ type: "bar", data: horizontal ? [...values].reverse() : values, itemStyle: { color: colour, borderRadius: 3 },
      label: { show: true, position: horizontal ? "right" : "top", color: "#e6edf3" } }],
  });
}

function pieOption(rows) {
  return chartBase({
    series: [{ type: "pie", radius: ["42%", "70%"], center: ["50%", "52%"], label: { color: "#e6edf3", formatter: "{b} {c}" },
      data: rows.map((r) => ({ name: r.label, value: r.value, itemStyle: { color: r.colour } })) }],
  });
}

function lineOption(xs, series) {
  return chartBase({
    tooltip: { trigger: "axis", renderMode: "richText" },
    legend: series.length > 1 ? { top: 0, textStyle: { color: "#b0bec5" } } : undefined,
    grid: { left: 8, right: 16, top: series.length > 1 ? 28 : 16, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: xs, axisLabel: { color: "#78909c" } },
    yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#78909c" }, splitLine: { lineStyle: { color: "#263445" } } },
    series: series.map((s) => ({ type: "line", name: s.name, data: s.data, smooth: true, areaStyle: { opacity: 0.15 }, itemStyle: { color: s.colour } })),
  });
}
