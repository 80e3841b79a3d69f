// The settings page: the device's own time zone offered first in the zone picker, and the
// "This device" panel that subscribes this browser to Web Push.

// The device's zone, added to the top of the picker's "Suggested" group (not chosen for the
// person: they may be looking from a trip).
(function () {
  "use strict";
  var select = document.getElementById("id_time_zone");
  var note = document.querySelector("[data-device-zone]");
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!select || !zone) return;
  var existing = select.querySelector('option[value="' + CSS.escape(zone) + '"]');
  if (!existing) return;
  var group = select.querySelector('optgroup[label="Suggested"]');
  if (!group) {
    group = document.createElement("optgroup");
    group.label = "Suggested";
    select.prepend(group);
  }
  if (!group.querySelector('option[value="' + CSS.escape(zone) + '"]')) {
    var option = new Option(zone.replace(/_/g, " ") + " (this device)", zone);
    group.prepend(option);
  }
  if (note && select.value !== zone) {
    note.textContent = "This device is set to " + zone.replace(/_/g, " ") + ".";
    note.hidden = false;
  }
})();

(function () {
  "use strict";
  var panel = document.getElementById("push-device");
  if (!panel || panel.dataset.pushConfigured !== "true") return;
  var statusEl = panel.querySelector("[data-push-status]");
  var onButton = panel.querySelector("[data-push-subscribe]");
  var offButton = panel.querySelector("[data-push-unsubscribe]");

  function say(text) { statusEl.textContent = text; }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say("This browser cannot receive push notifications. On an iPhone, add the portal to your home screen and open it from there.");
    return;
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || "The server refused (" + response.status + ").");
        return data;
      });
    });
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function show(subscribed) {
    onButton.hidden = subscribed;
    offButton.hidden = !subscribed;
  }

  function refresh(registration) {
    return registration.pushManager.getSubscription().then(function (subscription) {
      if (subscription && Notification.permission === "granted") {
        // Re-send it: the browser may have renewed it since we last heard.
        return post(panel.dataset.subscribeUrl, subscription.toJSON()).then(function () {
          say("Push notifications are on for this device.");
          show(true);
        });
      }
      if (Notification.permission === "denied") {
        say("Notifications are blocked for this site in your browser settings.");
        show(false);
        onButton.hidden = true;
        return;
      }
      say("Push notifications are off for this device.");
      show(false);
    });
  }

  // pwa.js registers the service worker on every customer page; wait for it to be active.
  var ready = navigator.serviceWorker.ready;

  ready.then(refresh).catch(function (error) { say("Push is unavailable: " + error.message); });

  onButton.addEventListener("click", function () {
    onButton.disabled = true;
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") throw new Error("notifications were not allowed.");
      return ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(panel.dataset.vapidPublicKey),
      });
    }).then(function (subscription) {
      return post(panel.dataset.subscribeUrl, subscription.toJSON());
    }).then(function () {
      say("Push notifications are on for this device.");
      show(true);
    }).catch(function (error) {
      say("Could not turn on push: " + error.message);
    }).then(function () { onButton.disabled = false; });
  });

  offButton.addEventListener("click", function () {
    offButton.disabled = true;
    ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) return null;
      var endpoint = subscription.endpoint;
      return subscription.unsubscribe().then(function () {
        return post(panel.dataset.unsubscribeUrl, { endpoint: endpoint });
      });
    }).then(function () {
      say("Push notifications are off for this device.");
      show(false);
    }).catch(function (error) {
      say("Could not turn off push: " + error.message);
    }).then(function () { offButton.disabled = false; });
  });
})();
