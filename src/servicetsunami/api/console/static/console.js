// The console's only script besides htmx: the CSRF header on htmx requests, the upload's progress
// bar, and Ctrl+Enter in the SQL editor. No inline scripts anywhere (the pages' policy forbids them).
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
