// Keratrack web page: talks to the same JSON API as any client (see shared/API.md).
// No libraries, no build step; all user data is written with textContent (never as HTML).
"use strict";

const state = { token: sessionStorage.getItem("kt_token"), email: sessionStorage.getItem("kt_email"), classes: [] };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function say(text, kind) {
  const m = $("message");
  m.textContent = text;
  m.className = kind || "info";
  m.hidden = !text;
}

// FastAPI errors: {"detail": "..."} or {"detail": [{"loc": [...], "msg": "..."}]}.
function describeError(status, body) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail))
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".") || "body"}: ${d.msg}`).join("; ");
  return `request failed (HTTP ${status})`;
}

async function api(method, path, body, isForm) {
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (isForm) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    payload = new URLSearchParams(body).toString();
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401 && state.token && path !== "/token") signOut("Your session ended: please sign in again.");
  if (!res.ok) throw new Error(describeError(res.status, data));
  return data;
}

function show(node, on) {
  if (on) node.removeAttribute("hidden");
  else node.setAttribute("hidden", "");
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function fmt(x, digits) {
  if (x === null || x === undefined) return "–";
  return Number(x).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 3 : digits });
}

// ---- sign up / sign in ----------------------------------------------------------------------------
function showSignedIn() {
  const on = Boolean(state.token);
  $("auth-section").hidden = on;
  $("app-section").hidden = !on;
  $("whoami").hidden = !on;
  $("whoami-email").textContent = on ? state.email || "" : "";
  if (on) loadHistory();
}

function signOut(msg) {
  state.token = null;
  sessionStorage.removeItem("kt_token");
  sessionStorage.removeItem("kt_email");
  showSignedIn();
  say(msg || "", "info");
}

async function signIn(email, password) {
  const tok = await api("POST", "/token", { username: email, password }, true);
  state.token = tok.access_token;
  state.email = email;
  sessionStorage.setItem("kt_token", state.token);
  sessionStorage.setItem("kt_email", email);
  showSignedIn();
}

$("signup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("signup-name").value.trim(), email = $("signup-email").value.trim(), password = $("signup-password").value;
  try {
    await api("POST", "/register", { name, email, password });
    await signIn(email, password);
    say(`Welcome, ${name}.`, "ok");
  } catch (e) { say(e.message, "error"); }
});

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await signIn($("signin-email").value.trim(), $("signin-password").value);
    say("Signed in.", "ok");
  } catch (e) { say(e.message, "error"); }
});

$("signout-btn").addEventListener("click", () => signOut("Signed out."));

// ---- prediction -------------------------------------------------------------------------------------
function drawBars(svg, probs) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const entries = Object.entries(probs || {});
  const rowH = 24, labelW = 150, barW = 320, w = labelW + barW + 70;
  svg.setAttribute("viewBox", `0 0 ${w} ${entries.length * rowH + 4}`);
  svg.setAttribute("height", entries.length * rowH + 4);
  const best = entries.reduce((b, e) => (e[1] > b[1] ? e : b), ["", -1])[0];
  entries.forEach(([name, p], i) => {
    const y = i * rowH + 2;
    svg.appendChild(svgEl("text", { x: labelW - 8, y: y + 16, "text-anchor": "end", class: "label" }, name));
    svg.appendChild(svgEl("rect", { x: labelW, y: y + 3, width: barW, height: rowH - 8, class: "track" }));
    svg.appendChild(svgEl("rect", { x: labelW, y: y + 3, width: Math.max(1, p * barW), height: rowH - 8,
                                   class: name === best ? "bar best" : "bar" }));
    svg.appendChild(svgEl("text", { x: labelW + barW + 6, y: y + 16, class: "value" }, `${(p * 100).toFixed(1)}%`));
  });
}

$("predict-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("photo-file").files[0];
  if (!file) { say("Choose a photo first.", "error"); return; }
  const fd = new FormData();
  fd.append("file", file);
  $("predict-btn").disabled = true;
  say("Assessing…", "info");
  try {
    const p = await api("POST", "/predict", fd);
    $("predict-stage").textContent = p.predicted_stage;
    $("predict-confidence").textContent = `${(p.confidence * 100).toFixed(1)}%`;
    drawBars($("prob-chart"), p.probabilities || { [p.predicted_stage]: p.confidence });
    $("predict-result").hidden = false;
    say("", "info");
    loadHistory();
  } catch (e) { say(e.message, "error"); }
  finally { $("predict-btn").disabled = false; }
});

// ---- history chart ------------------------------------------------------------------------------------
function stageOrder(rows) {
  const known = state.classes.length ? state.classes.slice() : [];
  for (const r of rows) if (!known.includes(r.predicted_stage)) known.push(r.predicted_stage);
  return known;
}

function drawHistory(svg, rows) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const pts = rows.slice().reverse(); // oldest first
  const stages = stageOrder(pts);
  const W = 560, H = 40 + stages.length * 28, left = 110, right = 20, top = 14, bottom = 30;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("height", H);
  const times = pts.map((r) => Date.parse(r.created_at));
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const x = (t) => left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * (W - left - right) : (W - left - right) / 2);
  const y = (s) => top + (stages.length > 1 ? (1 - stages.indexOf(s) / (stages.length - 1)) : 0.5) * (H - top - bottom);
  stages.forEach((s) => {
    svg.appendChild(svgEl("line", { x1: left, x2: W - right, y1: y(s), y2: y(s), class: "grid" }));
    svg.appendChild(svgEl("text", { x: left - 8, y: y(s) + 4, "text-anchor": "end", class: "label" }, s));
  });
  const d = pts.map((r, i) => `${i ? "L" : "M"}${x(times[i]).toFixed(1)},${y(r.predicted_stage).toFixed(1)}`).join(" ");
  if (pts.length > 1) svg.appendChild(svgEl("path", { d, class: "line" }));
  pts.forEach((r, i) => {
    const c = svgEl("circle", { cx: x(times[i]), cy: y(r.predicted_stage), r: 5, class: "dot" });
    c.appendChild(svgEl("title", {}, `${r.predicted_stage} (${(r.confidence * 100).toFixed(0)}%) ${r.created_at}`));
    svg.appendChild(c);
  });
  const fmtDate = (t) => new Date(t).toISOString().slice(0, 10);
  svg.appendChild(svgEl("text", { x: left, y: H - 8, class: "label" }, fmtDate(t0)));
  if (t1 > t0) svg.appendChild(svgEl("text", { x: W - right, y: H - 8, "text-anchor": "end", class: "label" }, fmtDate(t1)));
}

async function loadHistory() {
  try {
    if (!state.classes.length) {
      const h = await api("GET", "/health");
      state.classes = h.classes || [];
    }
    const rows = await api("GET", "/history");
    $("history-empty").hidden = rows.length > 0;
    $("history-table").hidden = rows.length === 0;
    show($("history-chart"), rows.length > 0); // an SVG element has no .hidden property
    const tb = $("history-table").querySelector("tbody");
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    for (const r of rows.slice(0, 20)) {
      const tr = el("tr");
      tr.appendChild(el("td", new Date(r.created_at).toLocaleString()));
      tr.appendChild(el("td", r.predicted_stage));
      tr.appendChild(el("td", `${(r.confidence * 100).toFixed(1)}%`));
      tb.appendChild(tr);
    }
    if (rows.length) drawHistory($("history-chart"), rows);
  } catch (e) { say(e.message, "error"); }
}

// ---- assessment ------------------------------------------------------------------------------------------
const list = (s) => s.split(",").map((v) => v.trim()).filter(Boolean);

$("assessment-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {
    age: parseInt($("as-age").value, 10),
    gender: $("as-gender").value,
    weight: parseFloat($("as-weight").value),
    height: parseFloat($("as-height").value),
    activity_level: $("as-activity").value,
    dietary_restrictions: [...document.querySelectorAll("input[name=restriction]:checked")].map((c) => c.value),
    current_diet_pattern: $("as-pattern").value.trim() || null,
    health_conditions: list($("as-conditions").value),
    medications: list($("as-medications").value),
  };
  try {
    await api("POST", "/diet/assessment", body);
    say("Assessment saved: your plan will follow it.", "ok");
    await loadPlan();
  } catch (e) { say(e.message, "error"); }
});

// ---- diet dashboard ------------------------------------------------------------------------------------
const LABELS = { protein: "Protein", iron: "Iron", biotin: "Biotin", zinc: "Zinc", omega3: "Omega-3",
                 vitamin_d: "Vitamin D", vitamin_c: "Vitamin C" };

function fill(id, items, render) {
  const node = $(id);
  while (node.firstChild) node.removeChild(node.firstChild);
  for (const it of items) node.appendChild(render(it));
}

function mealCell(m) {
  const td = el("td");
  if (!m) return td;
  td.appendChild(el("span", m.name));
  if (m.fallback) td.appendChild(el("span", " (fallback)", "muted"));
  td.title = (m.ingredients || []).join(", ");
  return td;
}

async function loadPlan() {
  try {
    const p = await api("GET", "/diet/recommendations");
    const ha = p.hair_analysis || {};
    $("plan-summary").textContent =
      `Stage ${p.hair_stage_at_time || "unknown"}, severity ${fmt(ha.current_severity, 2)}, trend ${ha.trend || "–"}; ` +
      `confidence ${fmt(p.confidence_score, 2)}; next review ${String(p.next_review_date || "").slice(0, 10)}.`;
    fill("plan-warnings", p.warnings || [], (w) => el("li", w));
    const tb = $("targets-table").querySelector("tbody");
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    for (const [key, n] of Object.entries(p.recommended_nutrients || {})) {
      const tr = el("tr", null, n.capped ? "capped" : "");
      tr.id = `target-${key}`;
      tr.appendChild(el("td", LABELS[key] || key));
      tr.appendChild(el("td", `${fmt(n.daily_target)} ${n.unit}`));
      const rec = el("td", `${fmt(n.recommended_amount)} ${n.unit}`);
      if (n.capped) { rec.appendChild(el("span", " capped", "badge")); rec.title = n.warning || ""; }
      tr.appendChild(rec);
      tr.appendChild(el("td", n.upper_limit ? `${fmt(n.upper_limit)} ${n.unit}` : "none set"));
      tr.appendChild(el("td", (n.sources || []).join(", ")));
      tb.appendChild(tr);
    }
    const mt = $("mealplan-table").querySelector("tbody");
    while (mt.firstChild) mt.removeChild(mt.firstChild);
    const days = Object.keys(p.meal_plan || {}).sort((a, b) => parseInt(a.slice(4), 10) - parseInt(b.slice(4), 10));
    for (const d of days) {
      const day = p.meal_plan[d], tr = el("tr");
      tr.appendChild(el("td", d.replace("day_", "Day ")));
      tr.appendChild(mealCell(day.breakfast));
      tr.appendChild(mealCell(day.lunch));
      tr.appendChild(mealCell(day.dinner));
      mt.appendChild(tr);
    }
    $("plan-snacks").textContent = days.length ? (p.meal_plan[days[0]].snacks || []).join("; ") : "";
    fill("plan-supplements", p.supplements || [], (s) => el("li", `${s.name}: ${s.dosage}, ${s.timing} — ${s.reason}`));
    if (!(p.supplements || []).length) fill("plan-supplements", ["None at this severity."], (s) => el("li", s));
    fill("plan-avoid", p.foods_to_avoid || [], (f) => el("li", f));
    $("plan-reasoning").textContent = p.reasoning || "";
    $("plan").hidden = false;
  } catch (e) { say(e.message, "error"); }
}

$("plan-btn").addEventListener("click", loadPlan);

showSignedIn();
