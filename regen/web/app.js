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

function say(text, isError, where) {
  const el = $(where || "status");
  el.textContent = text;
  el.className = isError ? "error" : "";
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
               qtc_bazett_ms: "ms", qtc_fridericia_ms: "ms", axis_deg: "°", p_axis_deg: "°",
               t_axis_deg: "°"};

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
    const text = document.createElement("div"); text.textContent = n.report_shown ?? n.report;
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

// -- two ECGs side by side -------------------------------------------------------------------

function compareSide(which) {
  const files = $("files-" + which).files;
  const example = $("compare-" + which).value;
  return files.length ? {files, label: "Uploaded " + files[0].name.replace(/\.[^.]*$/, "")}
                      : {example, label: "Example " + example};
}

function sideForm(side) {
  const f = new FormData();
  for (const file of side.files) f.append("files", file);
  if ($("fs").value) f.append("fs", $("fs").value);
  return f;
}

async function sideTrace(side, img) {
  const resp = side.files ? await call("/v1/plot/upload", null, sideForm(side))
                          : await call("/v1/plot", {ecg: {example: side.example}, format: "png"});
  const old = img.src;
  img.src = URL.createObjectURL(await resp.blob());
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
}

const STATUS = [["new", "new in the second"], ["resolved", "resolved (first only)"],
                ["persisting", "persisting (both)"]];

function showComparison(c, a, b) {
  $("compare-result").hidden = false;
  $("compare-title-a").textContent = "First: " + a.label;
  $("compare-title-b").textContent = "Second: " + b.label;
  $("compare-text").textContent = c.text;
  $("compare-confidence").textContent = c.confidence.toFixed(2);
  $("compare-abstained").textContent = c.abstained ? "abstained: evidence too weak" : "";
  $("compare-disclaimer").textContent = c.disclaimer;
  const table = $("compare-table");
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const h of ["finding", "change", "support in the first", "support in the second"]) {
    const th = document.createElement("th"); th.textContent = h; head.appendChild(th);
  }
  const body = table.createTBody();
  for (const [key, name] of STATUS) {
    for (const [finding, [pa, pb]] of Object.entries(c[key] || {})) {
      const row = body.insertRow();
      cell(row, finding);
      cell(row, name, key);
      cell(row, (100 * pa).toFixed(0) + " %", "num");
      cell(row, (100 * pb).toFixed(0) + " %", "num");
    }
  }
  for (const [id, list] of [["compare-neighbours-a", c.neighbours_a],
                            ["compare-neighbours-b", c.neighbours_b]]) {
    const ol = $(id);
    ol.replaceChildren();
    for (const n of (list || []).slice(0, 5)) {
      const li = document.createElement("li");
      const key = document.createElement("span"); key.className = "key"; key.textContent = n.key;
      const shown = n.report_shown ?? n.report;
      li.append(key, document.createTextNode("  (" + n.score.toFixed(2) + ")  " + shown));
      ol.appendChild(li);
    }
  }
}

async function runCompare() {
  const a = compareSide("a"), b = compareSide("b");
  if ((!a.files && !a.example) || (!b.files && !b.example)) {
    say("Choose two ECGs to compare.", true, "compare-status"); return;
  }
  say("Comparing " + a.label + " with " + b.label + " ...", false, "compare-status");
  try {
    let request;
    if (!a.files && !b.files) {
      request = call("/v1/compare", {a: {example: a.example}, b: {example: b.example}});
    } else {
      const f = new FormData();
      for (const [name, side] of [["a", a], ["b", b]]) {
        if (side.files) for (const file of side.files) f.append("files_" + name, file);
        else f.append("example_" + name, side.example);
      }
      if ($("fs").value) f.append("fs", $("fs").value);
      request = call("/v1/compare/upload", null, f);
    }
    const [c] = await Promise.all([request.then((r) => r.json()),
                                   sideTrace(a, $("trace-a")), sideTrace(b, $("trace-b"))]);
    showComparison(c, a, b);
    say("", false, "compare-status");
    $("compare").scrollIntoView();
  } catch (e) { say(e.message, true, "compare-status"); }
}

async function start() {
  $("token").value = localStorage.getItem("regen-token") || "";
  $("token").addEventListener("change", () => localStorage.setItem("regen-token", $("token").value));
  $("example-form").addEventListener("submit", (ev) => { ev.preventDefault(); runExample($("example").value); });
  $("upload-form").addEventListener("submit", (ev) => { ev.preventDefault(); runUpload(); });
  $("ask-form").addEventListener("submit", (ev) => { ev.preventDefault(); ask(); });
  $("compare-form").addEventListener("submit", (ev) => { ev.preventDefault(); runCompare(); });
  try {
    const resp = await fetch("/v1/examples", {headers: headers(false)});
    const examples = resp.ok ? await resp.json() : [];
    for (const ex of examples) {
      const opt = document.createElement("option"); opt.value = ex.name; opt.textContent = ex.name;
      $("example").appendChild(opt);
      for (const [i, id] of [[0, "compare-a"], [1, "compare-b"]]) {
        const o = opt.cloneNode(true);
        $(id).appendChild(o);
        if (examples.indexOf(ex) === i) o.selected = true;   // two different ECGs to start
      }
    }
    if (!examples.length) $("example-form").hidden = true;
  } catch (e) { say("Cannot reach the server: " + e.message, true); }
  const wanted = new URLSearchParams(location.search).get("example");
  if (wanted) runExample(wanted);
}

start();
