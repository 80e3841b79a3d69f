{% load static %}// Porchlight's service worker: an offline page for navigations, and Web Push notifications
// that open the thread when tapped. Served from /sw.js so that its scope is the whole site.
"use strict";

const CACHE = "porchlight-offline-v1";
const OFFLINE_URL = "{{ offline_url|escapejs }}";
const PRECACHE = [OFFLINE_URL, "{% static 'css/app.css' %}", "{% static 'css/notifications.css' %}", "{% static 'icons/icon-192.png' %}"];
const DEFAULT_URL = "{% url 'messages' %}";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((key) => key.startsWith("porchlight-") && key !== CACHE).map((key) => caches.delete(key))
      ))
      .then(() => self.clients.claim())
  );
});

// Pages always come from the network (they hold private, changing data); only when it
// cannot be reached does the cached offline page stand in. Other requests are left alone.
self.addEventListener("fetch", (event) => {
  if (event.request.mode !== "navigate") return;
  event.respondWith(
    fetch(event.request).catch(() => caches.match(OFFLINE_URL))
  );
});

self.addEventListener("push", (event) => {
  let data = {};
  if (event.data) {
    try {
      data = event.data.json();
    } catch (error) {
      data = { body: event.data.text() };
    }
  }
  const options = {
    body: data.body || "",
    tag: data.tag || undefined,
    renotify: Boolean(data.tag),
    icon: "{% static 'icons/icon-192.png' %}",
    badge: "{% static 'icons/badge-96.png' %}",
    data: { url: data.url || DEFAULT_URL },
  };
  event.waitUntil(self.registration.showNotification(data.title || "New message", options));
});

// Only our own pages open from a notification, whatever the payload says.
function sameOriginUrl(raw) {
  try {
    const url = new URL(raw || DEFAULT_URL, self.location.origin);
    return url.origin === self.location.origin ? url.href : new URL(DEFAULT_URL, self.location.origin).href;
  } catch (error) {
    return new URL(DEFAULT_URL, self.location.origin).href;
  }
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = sameOriginUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (new URL(client.url).origin === self.location.origin && "focus" in client) {
          return client.navigate(target).then((opened) => (opened || client).focus());
        }
      }
      return self.clients.openWindow(target);
    })
  );
});
