/* Staff login shared by the hotline and patrol pages (the console's own token, kept for this tab only). */
"use strict";
async function staffLogin(username, password) {
  const r = await fetch(API + "/auth/token", { method: "POST", body: new URLSearchParams({ username, password }) });
  const d = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(d.detail || "登录失败");
  sessionStorage.setItem("gw_staff", d.access_token);
  return d.access_token;
}
function wireStaffLogin(onReady) {
  const tok = sessionStorage.getItem("gw_staff");
  const go = t => { $("#staff-login").classList.add("hidden"); onReady(t); };
  $("#staff-do-login").addEventListener("click", async () => {
    clearError($("#staff-error"));
    try { go(await staffLogin($("#staff-user").value, $("#staff-pass").value)); } catch (e) { showError($("#staff-error"), e); }
  });
  if (tok) go(tok);
}
