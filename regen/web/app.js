// The clinician's page: no build step, no external scripts. Talks to the same JSON API.
"use strict";
const $ = (id) => document.getElementById(id);
let current = null;   // the ECG of the shown report, as the API takes it ({"example": ...})

function headers(json) {
  const h = {};
  const token = $("token").value.trim();
  if (token) h["Authorization"] = "Bearer " + token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

function say(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function call(route, body, form) {
  const resp = await fetch(route, {method: "POST", headers: headers(!form),
                                   body: form || JSON.stringify(body)});
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return resp;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function fmt(x) {
  if (typeof x === "number") return Number.isInteger(x) ? String(x) : x.toFixed(2);
  if (x === null || x === undefined) return "-";
  return typeof x === "object" ? JSON.stringify(x) : String(x);
}

function showFindings(findings, notes) {
  const table = $("findings");
  table.replaceChildren();
  $("findings-box").hidden = !(findings && findings.length);
  if (!findings) return;
  const head = table.createTHead().insertRow();
  for (const h of ["finding", "probability", "stated", "from", "evidence / note"]) {
    const th = document.createElement("th"); th.textContent = h; head.appendChild(th);
  }
  const body = table.createTBody();
  for (const f of findings) {
    const row = body.insertRow();
    row.className = f.present ? "present" : "absent";
    cell(row, (f.name || f.label) + (f.name && f.label ? " (" + f.label + ")" : ""));
    const p = typeof f.probability === "number" ? (100 * f.probability).toFixed(0) + " %" : "-";
    const t = typeof f.threshold === "number" ? " / " + (100 * f.threshold).toFixed(0) + " %" : "";
    cell(row, p + t, "num");
    cell(row, f.present ? "yes" : (f.assessable === false ? "not assessable" : "no"));
    cell(row, f.source || "");
    const ev = Array.isArray(f.evidence) ? f.evidence.join(", ") : fmt(f.evidence);
    cell(row, [ev, f.note].filter(Boolean).join(" - "), "evidence");
  }
  const ul = $("finding-notes");
  ul.replaceChildren();
  for (const n of notes || []) {
    const li = document.createElement("li"); li.textContent = n; ul.appendChild(li);
  }
}

const UNITS = {hr_bpm: "bpm", rr_ms: "ms", rr_sd_ms: "ms", pr_ms: "ms", qrs_ms: "ms", qt_ms: "ms",
               qtc_bazett_ms: "ms", qtc_fridericia_ms: "ms", axis_deg: "°"};

function showMeasurements(m) {
  const table = $("measurements");
  table.replaceChildren();
  $("measurements-box").hidden = !m;
  if (!m) return;
  $("measure-line").textContent = m.line || m.error || "";
  for (const [k, unit] of Object.entries(UNITS)) {
    if (!(k in m)) continue;
    const row = table.insertRow();
    cell(row, k.replace(/_(ms|bpm|deg)$/, "").replace(/_/g, " "));
    const why = m.quality && m.quality[k.replace(/_deg$/, "")] || (m.quality || {})[k];
    cell(row, m[k] === null ? "-" : fmt(m[k]) + " " + unit, "num");
    cell(row, m[k] === null && why && why !== "ok" ? why : "", "evidence");
  }
  if (Array.isArray(m.premature_beats)) {
    const row = table.insertRow();
    const v = m.premature_beats.filter(b => b.kind === "ventricular").length;
    cell(row, "premature beats");
    cell(row, String(m.premature_beats.length), "num");
    cell(row, m.premature_beats.length ? v + " ventricular, " +
         (m.premature_beats.length - v) + " supraventricular" : "", "evidence");
  }
}

function showInput(input) {
  const ul = $("input-notes");
  ul.replaceChildren();
  $("input-box").hidden = !input;
  if (!input) return;
  const items = Array.isArray(input) ? input : [
    (input.leads_used || []).length + " of 12 leads used: " + (input.leads_used || []).join(", "),
    input.fs_in + " Hz read, " + input.fs_used + " Hz used; " + fmt(input.duration_s) +
      " s in " + input.n_windows + " window(s) of " + input.window_s + " s",
  ].concat((input.warnings || []).map(w => "warning: " + w));
  for (const text of items) {
    const li = document.createElement("li"); li.textContent = fmt(text);
    if (String(text).startsWith("warning")) li.className = "warn";
    ul.appendChild(li);
  }
}

function showSentences(sentences) {
  const ol = $("sentences");
  ol.replaceChildren();
  $("sentences-box").hidden = !(sentences && sentences.length);
  for (const s of sentences || []) {
    const li = document.createElement("li");
    const key = document.createElement("span"); key.className = "key"; key.textContent = s.key;
    li.append(document.createTextNode(s.text + "  "), key);
    ol.appendChild(li);
  }
}

function showNeighbours(neighbours, cited, sources) {
  const ol = $("neighbours");
  ol.replaceChildren();
  for (const n of neighbours) {
    const li = document.createElement("li");
    const key = document.createElement("span"); key.className = "key"; key.textContent = n.key;
    const score = document.createElement("span"); score.className = "score";
    score.textContent = "  similarity " + n.score.toFixed(3) +
      (n.superclasses && n.superclasses.length ? "  [" + n.superclasses.join(", ") + "]" : "");
    li.append(key, score);
    if (cited.includes(n.key)) {
      li.className = "cited";
      const tag = document.createElement("span"); tag.className = "tag";
      tag.textContent = (sources || []).includes(n.key) ? "  cited (a sentence is from it)" :
        (!sources || !sources.length) && cited[0] === n.key ? "  cited (report used)" : "  cited";
      li.append(tag);
    }
    const text = document.createElement("div"); text.textContent = n.report;
    const show = document.createElement("button");
    show.type = "button"; show.className = "small"; show.textContent = "show trace";
    show.addEventListener("click", () => neighbourTrace(li, n.key, show));
    li.append(text, show);
    ol.appendChild(li);
  }
}

function showReport(r, title) {
  $("result").hidden = false;
  $("title").textContent = title;
  $("report-text").textContent = r.text;
  $("confidence").value = r.confidence;
  $("confidence-value").textContent = r.confidence.toFixed(2);
  $("abstained").textContent = r.abstained ? "abstained: evidence too weak" : "";
  $("disclaimer").textContent = r.disclaimer;
  showFindings(r.findings, r.notes);
  showMeasurements(r.measurements);
  showSentences(r.sentences);
  showInput(r.input);
  showNeighbours(r.neighbours || [], r.cited || [], (r.sentences || []).map(x => x.key));
  $("answer").textContent = "";
}

async function showTrace(promise) {
  const blob = await (await promise).blob();
  const old = $("trace").src;
  $("trace").src = URL.createObjectURL(blob);
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}

async function neighbourTrace(li, key, button) {
  const shown = li.querySelector("img.thumb");
  if (shown) { shown.remove(); button.textContent = "show trace"; return; }
  button.disabled = true;
  try {
    const blob = await (await call("/v1/plot", {ecg: {record: key}, format: "png"})).blob();
    const img = document.createElement("img");
    img.className = "thumb"; img.alt = "ECG of " + key; img.src = URL.createObjectURL(blob);
    li.append(img);
    button.textContent = "hide trace";
  } catch (e) { button.textContent = e.message; }
  button.disabled = false;
}

async function runExample(name) {
  say("Reading " + name + " ...");
  current = {example: name};
  try {
    const [report] = await Promise.all([
      call("/v1/report", {ecg: current}).then((r) => r.json()),
      showTrace(call("/v1/plot", {ecg: current, format: "png"})),
    ]);
    showReport(report, "Example " + name);
    $("ask-form").hidden = false;
    say("");
  } catch (e) { say(e.message, true); }
}

async function runUpload() {
  const files = $("files").files;
  if (!files.length) { say("Choose a file first.", true); return; }
  const form = () => {
    const f = new FormData();
    for (const file of files) f.append("files", file);
    if ($("fs").value) f.append("fs", $("fs").value);
    return f;
  };
  say("Uploading " + Array.from(files, (f) => f.name).join(", ") + " ...");
  try {
    const [report] = await Promise.all([
      call("/v1/report/upload", null, form()).then((r) => r.json()),
      showTrace(call("/v1/plot/upload", null, form())),
    ]);
    current = null;
    showReport(report, "Uploaded " + files[0].name.replace(/\.[^.]*$/, ""));
    $("ask-form").hidden = true;    // questions take examples or paths; uploads are one-off
    say("");
  } catch (e) { say(e.message, true); }
}

async function ask() {
  const question = $("question").value.trim();
  if (!current || !question) return;
  try {
    const a = await (await call("/v1/ask", {ecgs: [current], question})).json();
    $("answer").textContent = "A: " + a.options.join(", ") + " (confidence " +
      a.confidence.toFixed(2) + ")" + (a.text ? " - " + a.text : "");
  } catch (e) { $("answer").textContent = e.message; }
}

async function start() {
  $("token").value = localStorage.getItem("regen-token") || "";
  $("token").addEventListener("change", () => localStorage.setItem("regen-token", $("token").value));
  $("example-form").addEventListener("submit", (ev) => { ev.preventDefault(); runExample($("example").value); });
  $("upload-form").addEventListener("submit", (ev) => { ev.preventDefault(); runUpload(); });
  $("ask-form").addEventListener("submit", (ev) => { ev.preventDefault(); ask(); });
  try {
    const resp = await fetch("/v1/examples", {headers: headers(false)});
    const examples = resp.ok ? await resp.json() : [];
    for (const ex of examples) {
      const opt = document.createElement("option"); opt.value = ex.name; opt.textContent = ex.name;
      $("example").appendChild(opt);
    }
    if (!examples.length) $("example-form").hidden = true;
  } catch (e) { say("Cannot reach the server: " + e.message, true); }
  const wanted = new URLSearchParams(location.search).get("example");
  if (wanted) runExample(wanted);
}

start();
