// Registers the service worker (offline page, push notifications) on the customer pages.
(function () {
  "use strict";
  if (!("serviceWorker" in navigator)) return;
  window.addEventListener("load", function () {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function (error) {
      console.warn("Service worker not registered:", error);
    });
  });
})();
