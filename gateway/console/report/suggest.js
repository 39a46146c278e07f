"use strict";
/* The top 3 suggestions with confidence and reasons; a click on one is the dispatcher's choice (one click).
   Filing with a category other than the first suggestion stores a correction and retrains the classifier at once. */
function renderSuggestion(box, s, onPick) {
  const pct = x => `${(x * 100).toFixed(0)}%`;
  const lines = (s.handovers || []).map(h => h.label).join("、");
  const items = (s.top || []).map((t, i) => el("li", { class: "sugg" + (t.critical ? " critical" : ""), "data-testid": "suggestion", "data-code": t.code },
    el("button", { type: "button", class: i === 0 ? "pick chosen" : "pick", "data-code": t.code, onclick: () => onPick(t, i) },
      `${i + 1}. ${t.name}`, el("span", { class: "conf", "data-testid": "confidence" }, ` ${pct(t.confidence)}`)),
    el("div", { class: "muted reasons", "data-testid": "reasons" }, t.reasons.length ? "依据：" + t.reasons.join("、") : "依据：整体语义（无关键词）")));
  box.replaceChildren(
    s.dangers && s.dangers.length ? el("div", { class: "danger", "data-testid": "danger" },
      `⚠ 特急：${s.dangers.map(d => `${d.label}（${d.words.join("、")}）`).join("；")}` + (lines ? `，请先移交 ${lines}` : "")) : null,
    el("div", {}, `紧急程度建议：${s.urgency_label}（${pct(s.urgency_confidence)}）`),
    el("ol", { class: "top3", "data-testid": "top3" }, items),
    !(s.dangers && s.dangers.length) && s.handover ? el("div", { class: "warn" }, `需同步移交 ${s.handover}`) : null);
  box.classList.remove("hidden");
}
