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

function showFindings(findings) {
  const table = $("findings");
  table.replaceChildren();
  $("findings-box").hidden = !(findings && findings.length);
  if (!findings) return;
  const head = table.createTHead().insertRow();
  for (const h of ["finding", "probability", "decided", "source", "evidence"]) {
    const th = document.createElement("th"); th.textContent = h; head.appendChild(th);
  }
  const body = table.createTBody();
  for (const f of findings) {
    const row = body.insertRow();
    if (f.present) row.className = "present";
    cell(row, f.label || f.name);
    cell(row, typeof f.probability === "number" ? (100 * f.probability).toFixed(0) + " %" : "-", "num");
    cell(row, f.present ? "present" : "absent");
    cell(row, f.source || "");
    cell(row, Array.isArray(f.evidence) ? f.evidence.join(", ") : fmt(f.evidence));
  }
}

function showPairs(boxId, tableId, obj) {
  const table = $(tableId);
  table.replaceChildren();
  $(boxId).hidden = !(obj && Object.keys(obj).length);
  if (!obj) return;
  for (const [k, v] of Object.entries(obj)) {
    const row = table.insertRow();
    cell(row, k); cell(row, fmt(v), "num");
  }
}

function showInput(input) {
  const ul = $("input-notes");
  ul.replaceChildren();
  $("input-box").hidden = !input;
  if (!input) return;
  const items = Array.isArray(input) ? input : Object.entries(input).map(
    ([k, v]) => k + ": " + (Array.isArray(v) ? v.join(", ") : fmt(v)));
  for (const text of items) {
    const li = document.createElement("li"); li.textContent = fmt(text); ul.appendChild(li);
  }
}

function showNeighbours(neighbours, cited) {
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
      tag.textContent = cited[0] === n.key ? "  cited (report used)" : "  cited";
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
  showFindings(r.findings);
  showPairs("measurements-box", "measurements", r.measurements);
  showInput(r.input);
  showNeighbours(r.neighbours || [], r.cited || []);
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
