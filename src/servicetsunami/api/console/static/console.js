// The console's only script besides htmx (and the chart libraries it loads when a chart is shown):
// the CSRF header on htmx requests, the upload's progress bar, Ctrl+Enter and the history of the
// SQL editor, and drawing charts (the code editor, on the pages that have one, is editor.js). No inline scripts anywhere (the pages' policy forbids them).
"use strict";
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
});
document.addEventListener("htmx:xhr:progress", (event) => {
  const bar = document.getElementById("upload-progress");
  if (!bar || !event.detail.lengthComputable) return;
  bar.hidden = false;
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});
document.addEventListener("htmx:afterRequest", () => {
  const bar = document.getElementById("upload-progress");
  if (bar) bar.hidden = true;
});
document.addEventListener("keydown", (event) => {
  const editor = event.target;
  if (editor instanceof HTMLTextAreaElement && editor.id === "sql" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    editor.form.requestSubmit();
  }
});
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (event.detail.successful && form instanceof HTMLFormElement && form.classList.contains("chat-form")) form.reset();
});

// A textarea's text set, through its code editor (editor.js) when it has one: CodeMirror keeps
// itself in the wrapper element that follows the textarea, and copies its text back on change.
function setText(textarea, text) {
  const wrapper = textarea.nextElementSibling;
  if (wrapper && wrapper.CodeMirror) wrapper.CodeMirror.setValue(text);
  else textarea.value = text;
}

// The SQL editor's history: statements that ran, newest first, in this tab's sessionStorage.
const HISTORY_KEY = "tsunami.sql.history";
const HISTORY_SIZE = 20;
function readHistory() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]");
    return Array.isArray(kept) ? kept.filter((s) => typeof s === "string") : [];
  } catch {
    return [];
  }
}
function showHistory() {
  const list = document.getElementById("history");
  if (!list) return;
  const kept = readHistory();
  list.replaceChildren();
  if (kept.length === 0) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = list.dataset.empty;
    list.append(empty);
    return;
  }
  for (const sql of kept) {
    const item = document.createElement("li");
    const again = document.createElement("button");
    again.type = "button";
    again.className = "link history-item";
    again.textContent = sql;
    again.title = "Run again";
    again.addEventListener("click", () => {
      const editor = document.getElementById("sql");
      setText(editor, sql);
      editor.form.requestSubmit();
    });
    item.append(again);
    list.append(item);
  }
}
function remember(sql) {
  const kept = [sql, ...readHistory().filter((s) => s !== sql)].slice(0, HISTORY_SIZE);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(kept));
  showHistory();
}
document.addEventListener("DOMContentLoaded", showHistory);
document.addEventListener("htmx:afterSwap", (event) => {
  const suggested = event.detail.target.querySelector("[data-suggested-sql]");
  const editor = document.getElementById("sql");
  if (suggested && editor) setText(editor, suggested.dataset.suggestedSql); // put in the editor, not run
  const ran = event.detail.target.querySelector(".result[data-sql]");
  if (event.detail.target.id === "result" && ran) {
    remember(ran.dataset.sql);
    // A chart stays only beside the result of the statement it drew.
    const charted = document.querySelector("#chart [data-sql]");
    if (charted && charted.dataset.sql !== ran.dataset.sql) document.getElementById("chart").replaceChildren();
  }
});

// Charts: the vega scripts are loaded (once, in order) only when a chart is shown. Vega's
// expressions are interpreted (ast), not compiled, since the pages' policy allows no eval.
let chartScripts = null;
function loadScripts(sources) {
  if (chartScripts) return chartScripts;
  chartScripts = sources.reduce(
    (ready, src) =>
      ready.then(
        () =>
          new Promise((resolve, reject) => {
            const script = document.createElement("script");
            script.src = src;
            script.onload = resolve;
            script.onerror = () => reject(new Error(`could not load ${src}`));
            document.head.append(script);
          }),
      ),
    Promise.resolve(),
  );
  return chartScripts;
}
function drawCharts(root) {
  for (const el of root.querySelectorAll(".vega-chart[data-spec]")) {
    const spec = JSON.parse(el.dataset.spec);
    delete spec.$schema; // a v5 spec draws the same in vega-lite 6, which would warn about the version
    if (spec.width === undefined) spec.width = Math.max(240, Math.min(720, el.clientWidth - 100));
    loadScripts(el.dataset.scripts.split(" "))
      .then(() =>
        window.vegaEmbed(el, spec, {
          mode: "vega-lite",
          actions: false,
          defaultStyle: false,
          tooltip: false,
          renderer: "svg",
          ast: true,
          expr: window.vega.expressionInterpreter,
        }),
      )
      .then(() => el.setAttribute("data-drawn", "true"))
      .catch((error) => {
        el.textContent = `The chart could not be drawn: ${error.message}`;
      });
  }
}
document.addEventListener("htmx:afterSwap", (event) => drawCharts(event.detail.target));
