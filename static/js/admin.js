// Django admin: select2, behind autocomplete fields, draws a combobox whose aria-labelledby
// points at its own (empty) text, so it has no accessible name. Point it at the field's
// <label> instead, whenever select2 draws one (on load, and for inline rows added later).
(function () {
  "use strict";

  function name(select) {
    var label = select.id && document.querySelector('label[for="' + CSS.escape(select.id) + '"]');
    if (!label || !select.parentElement) return;
    if (!label.id) label.id = select.id + "-label";
    select.parentElement
      .querySelectorAll(".select2-selection, .select2-selection__rendered")
      .forEach(function (el) {
        if (el.getAttribute("aria-labelledby") !== label.id) {
          el.setAttribute("aria-labelledby", label.id);
        }
      });
  }

  function nameAll() {
    document.querySelectorAll("select.admin-autocomplete").forEach(name);
  }

  document.addEventListener("DOMContentLoaded", function () {
    nameAll();
    new MutationObserver(nameAll).observe(document.body, { childList: true, subtree: true });
  });
})();
