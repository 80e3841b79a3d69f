// Porchlight thread behaviour: Enter to send, a fresh send key per message, entries kept in
// sequence order without duplicates, scroll to newest, announcements for screen readers,
// and the staff chat dialog. Everything works without this file, just less smoothly.
(function () {
  "use strict";

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function timelineOf(el) {
    var root = el.closest("[data-thread]") || document;
    return root.querySelector("#timeline");
  }

  function nearBottom(timeline) {
    return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
  }

  function scrollToNewest(timeline) {
    timeline.scrollTop = timeline.scrollHeight;
  }

  // Keep each entry once and in seq order, and each day header once. Entries can arrive from
  // the send response, a live frame, or a page load, in any order.
  function tidy(container) {
    var seen = {};
    container.querySelectorAll("[data-seq]").forEach(function (el) {
      var seq = el.getAttribute("data-seq");
      if (seen[seq]) el.remove();
      else seen[seq] = el;
    });
    var days = {};
    container.querySelectorAll(".day-header").forEach(function (el) {
      if (days[el.dataset.day]) el.remove();
      else days[el.dataset.day] = true;
    });
    var entries = Array.prototype.slice.call(container.querySelectorAll(":scope > [data-seq]"));
    for (var i = 1; i < entries.length; i++) {
      var prev = entries[i - 1], cur = entries[i];
      if (+cur.dataset.seq < +prev.dataset.seq) {
        // Move the out-of-order entry (and its day header, if any) before the first larger one.
        var target = entries.find(function (e) { return +e.dataset.seq > +cur.dataset.seq; });
        var header = cur.previousElementSibling;
        if (header && header.classList.contains("day-header")) target.before(header);
        target.before(cur);
        entries = Array.prototype.slice.call(container.querySelectorAll(":scope > [data-seq]"));
      }
    }
  }

  function announce(scope, text) {
    var region = (scope.closest("[data-thread]") || document).querySelector("#live-announcer");
    if (region) region.textContent = text;
  }

  function lastSeq(scope) {
    var all = scope.querySelectorAll("#timeline-entries [data-seq]");
    return all.length ? +all[all.length - 1].dataset.seq : 0;
  }
  window.Porchlight = { lastSeq: lastSeq, tidy: tidy, scrollToNewest: scrollToNewest };

  // Enter sends, Shift+Enter is a new line.
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.closest("[data-reply-form]")) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      var form = box.form;
      if (box.value.trim() === "") return;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }
  });

  // The textarea grows with its text, up to a limit set in CSS.
  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.closest("[data-reply-form]")) return;
    box.style.height = "auto";
    box.style.height = box.scrollHeight + "px";
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest && event.target.closest("[data-reply-form]");
    if (!form || event.target !== form) return;
    var error = form.querySelector(".field-error");
    if (event.detail.successful && event.detail.xhr.status < 300) {
      // Sent: clear the box and take a new key, so the next message is a new message.
      var box = form.querySelector("textarea");
      box.value = "";
      box.style.height = "auto";
      form.querySelector("input[name=key]").value = newKey();
      var note = form.querySelector("[data-note-toggle]");
      if (note) note.checked = false;
      if (error) error.textContent = "";
      box.focus();
    }
    // On an error the server's reason was swapped into .field-error and the text stays.
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var container = event.target.closest ? event.target.closest("#timeline-entries") || (event.target.id === "timeline-entries" ? event.target : null) : null;
    if (container) {
      var timeline = timelineOf(container);
      var wasNear = timeline && nearBottom(timeline);
      tidy(container);
      var source = event.detail.requestConfig && event.detail.requestConfig.elt;
      if (source && source.matches && source.matches("[data-reply-form]")) {
        scrollToNewest(timeline);
        announce(container, "Message sent.");
      } else if (wasNear && timeline) {
        scrollToNewest(timeline);
      }
    }
    if (event.target.id === "chat-dialog-body") openDialog();
  });

  // Staff chat dialog: a native <dialog> keeps focus inside and closes on Esc.
  function openDialog() {
    var dialog = document.getElementById("chat-dialog");
    if (!dialog) return;
    if (!dialog.open) dialog.showModal();
    var timeline = dialog.querySelector("#timeline");
    if (timeline) scrollToNewest(timeline);
    var box = dialog.querySelector("textarea");
    if (box) box.focus();
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-close-chat]");
    if (close) {
      var dialog = document.getElementById("chat-dialog");
      if (dialog && dialog.open) {
        event.preventDefault();
        dialog.close();
      }
    }
  });

  function onDialogClosed() {
    document.getElementById("chat-dialog-body").innerHTML = "";
    if (location.pathname.indexOf("/staff/chat/") === 0) {
      history.pushState({}, "", "/staff/projects/");
    }
    if (window.htmx) htmx.trigger(document.body, "refresh-rows");
    var opener = document.querySelector("[data-last-opener]");
    if (opener) opener.focus();
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-open-chat]");
    if (!opener) return;
    document.querySelectorAll("[data-last-opener]").forEach(function (el) { el.removeAttribute("data-last-opener"); });
    opener.setAttribute("data-last-opener", "");
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-reply-form] input[name=key]").forEach(function (input) {
      input.value = newKey();
    });
    var dialog = document.getElementById("chat-dialog");
    if (dialog) {
      dialog.addEventListener("close", onDialogClosed);
      if (dialog.hasAttribute("data-open-on-load")) openDialog();
    }
    var timeline = document.querySelector("main #timeline");
    if (timeline) {
      var focus = timeline.dataset.focusSeq;
      var target = focus && document.getElementById("entry-" + focus);
      if (target) {
        target.classList.add("is-focused");
        target.scrollIntoView({ block: "center" });
      } else {
        scrollToNewest(timeline);
      }
    }
  });
})();
