// The estimate's approval form: ticking an option updates the total shown (the server
// computes and records the real one; without this script the page says "plus the options
// you tick").
(function () {
  "use strict";
  var form = document.querySelector(".approve-form");
  if (!form) return;
  var total = form.querySelector("[data-estimate-total]");
  var copy = form.querySelector("[data-estimate-total-copy]");
  var boxes = form.querySelectorAll('input[name="options"]');
  if (!total || !boxes.length) return;
  var amounts = {};
  (total.getAttribute("data-amounts") || "").split(",").forEach(function (pair) {
    var parts = pair.split(":");
    if (parts.length === 2) amounts[parts[0]] = parseFloat(parts[1]);
  });
  var format;
  try {
    format = new Intl.NumberFormat(total.getAttribute("data-locale") || "en-US", {
      style: "currency",
      currency: total.getAttribute("data-currency") || "USD",
    });
  } catch (error) {
    return;
  }
  function show(value) {
    var text = format.format(value);
    // As the server writes whole amounts: "$9,800", not "$9,800.00".
    if (Math.round(value * 100) % 100 === 0) text = text.replace(/[.,]00(?=\D*$)/, "");
    return text;
  }
  function update() {
    var sum = parseFloat(total.getAttribute("data-base"));
    boxes.forEach(function (box) {
      if (box.checked && amounts[box.value] !== undefined) sum += amounts[box.value];
    });
    total.textContent = show(sum);
    if (copy) copy.textContent = show(sum);
  }
  var hint = form.querySelector("[data-no-js-hint]");
  if (hint) hint.hidden = true;
  form.addEventListener("change", function (event) {
    if (event.target.name === "options") update();
  });
  update();
})();
