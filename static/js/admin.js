// Django admin. select2, behind autocomplete fields, draws a combobox whose aria-labelledby
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

  // The two-box filter (filter_horizontal, the user's groups and permissions) puts its hint
  // in aria-label on a bare <span>, where ARIA does not allow a name (axe:
  // aria-prohibited-attr): as an image, the icon may carry it.
  function iconRoles() {
    document.querySelectorAll(".help-tooltip[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  }

  function nameAll() {
    document.querySelectorAll("select.admin-autocomplete").forEach(name);
    iconRoles();
  }

  document.addEventListener("DOMContentLoaded", function () {
    nameAll();
    new MutationObserver(nameAll).observe(document.body, { childList: true, subtree: true });
  });
})();
