// "Print" buttons (invoices, estimates): a data attribute instead of an inline onclick,
// which the Content-Security-Policy refuses.
document.addEventListener("click", function (event) {
  if (event.target.closest && event.target.closest("[data-print]")) window.print();
});
