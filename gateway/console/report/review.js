/* Report review: each recent report with the classifier's top 3; one click re-files it under that category
   (POST /reports/{id}/category), which stores a correction and retrains the classifier at once. */
"use strict";
const rv = { token: "" };

async function loadReports() {
  clearError($("#error"));
  const list = $("#list");
  try {
    const page = await api("/reports?limit=20", { token: rv.token });
    list.replaceChildren(...page.items.map(r => {
      const box = el("div", { class: "suggest hidden" });
      const row = el("div", { class: "case", "data-report": r.id },
        el("div", {}, el("span", { class: "badge" }, r.case_number || "未立案"), " ", r.text),
        el("div", { class: "muted", "data-testid": "current" }, `当前：${r.category_name} · ${r.urgency}`), box);
      api("/reports/classify", { method: "POST", json: { text: r.text }, token: rv.token }).then(s => renderSuggestion(box, s, async t => {
        try {
          const urgency = t.critical && s.dangers && s.dangers.length ? "critical" : (t.code === s.category ? s.urgency : r.urgency);
          const res = await api(`/reports/${r.id}/category`, { method: "POST", json: { category: t.code, urgency }, token: rv.token });
          row.querySelector("[data-testid=current]").textContent = `当前：${t.name} · ${res.urgency}` + (res.correction_stored ? "（已纠正，模型已更新）" : "");
          for (const b of box.querySelectorAll("button.pick")) b.classList.toggle("chosen", b.dataset.code === t.code);
        } catch (e) { showError($("#error"), e); }
      })).catch(e => showError($("#error"), e));
      return row;
    }));
  } catch (e) { showError($("#error"), e); }
}

$("#reload").addEventListener("click", loadReports);
wireStaffLogin(t => { rv.token = t; $("#review").classList.remove("hidden"); loadReports(); });
