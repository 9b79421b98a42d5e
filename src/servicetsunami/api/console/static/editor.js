// The code editor (CodeMirror 5, vendored beside this file): every <textarea data-editor="MODE">
// becomes an editor with that mode's highlighting. The textarea stays in the form, kept equal to
// the editor's text at each change, so the form (and htmx) sends what the editor shows. The label
// of the textarea is moved to the editor's input, so it is named for screen readers and the label
// still focuses it. Tab leaves the editor (no keyboard trap); Ctrl-] and Ctrl-[ indent and
// outdent. In a textarea marked data-run-shortcut, Ctrl/Cmd+Enter submits its form.
"use strict";
function enhance(textarea) {
  const label = textarea.id ? document.querySelector(`label[for="${textarea.id}"]`) : null;
  const name = label ? label.textContent.trim() : textarea.getAttribute("aria-label");
  const submit = (cm) => {
    cm.save();
    textarea.form.requestSubmit();
  };
  const keys = { Tab: false, "Shift-Tab": false };
  if (textarea.hasAttribute("data-run-shortcut")) Object.assign(keys, { "Ctrl-Enter": submit, "Cmd-Enter": submit });
  const cm = CodeMirror.fromTextArea(textarea, {
    mode: textarea.dataset.editor,
    readOnly: textarea.readOnly,
    lineWrapping: true,
    viewportMargin: Infinity, // the editor grows with its text, as the page scrolls
    screenReaderLabel: name,
    extraKeys: keys,
  });
  cm.on("change", () => cm.save());
  const input = cm.getInputField();
  if (label) {
    input.id = `${textarea.id}-editor`;
    label.htmlFor = input.id;
  }
  textarea.removeAttribute("aria-label"); // hidden now: the editor's input carries the name
}
for (const textarea of document.querySelectorAll("textarea[data-editor]")) enhance(textarea);
