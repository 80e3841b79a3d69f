// Porchlight thread behaviour, only what htmx and the browser do not do themselves: Enter to
// send, entries kept in sequence order without duplicates, scrolling to the newest, live
// announcements for screen readers, read marks, and the staff chat dialog. Everything works
// without this file, just less smoothly. (The send key comes from the server: each send's
// response carries the next one.)
(function () {
  "use strict";

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

  // A reader at the newest entry stays there while the timeline grows under them (a photo
  // that finishes loading, a font, a live entry): the ResizeObserver follows its height.
  var following = new WeakMap();
  var grows = window.ResizeObserver && new ResizeObserver(function (records) {
    records.forEach(function (record) {
      var timeline = timelineOf(record.target);
      if (timeline && following.get(timeline)) scrollToNewest(timeline);
    });
  });

  function follow(timeline) {
    if (!timeline || !grows || timeline._followed) return;
    timeline._followed = true;
    following.set(timeline, nearBottom(timeline));
    timeline.addEventListener("scroll", function () { following.set(timeline, nearBottom(timeline)); });
    grows.observe(timeline.querySelector("#timeline-entries"));
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
    group(container);
  }

  // Consecutive messages from one sender within a while read as one group (the sender named
  // once). Worked out on the page, whichever way the entries arrived (a page, a live frame, a
  // send, a receipt's redraw), since each entry is rendered on its own.
  var GROUP_GAP_MS = 30 * 60 * 1000;
  function group(container) {
    var previous = null;
    Array.prototype.forEach.call(container.children, function (el) {
      var message = el.classList.contains("entry-message") ? el : null;
      var continues = false;
      if (message && previous && previous.dataset.sender === message.dataset.sender) {
        var then = previous.querySelector(".meta time"), now = message.querySelector(".meta time");
        continues = !!(then && now) &&
          Date.parse(now.getAttribute("datetime")) - Date.parse(then.getAttribute("datetime")) < GROUP_GAP_MS;
      }
      if (message) message.classList.toggle("continues", continues);
      // A day header, card, call or note between two messages ends a group.
      previous = message;
    });
  }

  function announce(scope, text) {
    var region = (scope.closest("[data-thread]") || document).querySelector("#live-announcer");
    if (region) region.textContent = text;
  }

  function lastSeq(scope) {
    var all = scope.querySelectorAll("#timeline-entries [data-seq]");
    return all.length ? +all[all.length - 1].dataset.seq : 0;
  }

  // Enter sends, Shift+Enter is a new line.
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.closest("[data-reply-form]")) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      var form = box.form;
      var photos = form.querySelector("[data-photos]");
      if (box.value.trim() === "" && !(photos && photos.files.length)) return;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    }
  });

  // The textarea grows with its text, up to a limit set in CSS; near the length limit a
  // counter says what is left (nothing is cut: the server refuses what is over, inline).
  function updateCount(box) {
    var form = box.closest("[data-reply-form]");
    var counter = form && form.querySelector("[data-char-count]");
    var max = +box.dataset.maxLength;
    if (!counter || !max) return;
    var left = max - Array.from(box.value.trim()).length;
    counter.textContent = left >= 500 ? "" :
      left >= 0 ? left.toLocaleString() + " characters left" :
      (-left).toLocaleString() + " characters over the limit";
    counter.classList.toggle("over", left < 0);
    box.toggleAttribute("aria-invalid", left < 0);
  }

  // Photos chosen for the next message are listed under the box until it is sent.
  function showChosen(input) {
    var list = input.form.querySelector("[data-chosen-files]");
    if (!list) return;
    list.textContent = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var item = document.createElement("li");
      item.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)";
      list.appendChild(item);
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-photos]")) showChosen(event.target);
  });

  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.closest("[data-reply-form]")) return;
    box.style.height = "auto";
    box.style.height = box.scrollHeight + "px";
    updateCount(box);
  });

  // Remember what was sent, so a reply typed while the request was in flight is kept.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-reply-form]")) return;
    form._sentText = form.querySelector("textarea").value;
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-reply-form]")) return;
    var error = form.querySelector(".field-error");
    if (event.detail.successful && event.detail.xhr.status < 300) {
      // Sent (the response brought the next send key): clear what was sent.
      var box = form.querySelector("textarea");
      var photos = form.querySelector("[data-photos]");
      if (photos) {
        photos.value = "";
        showChosen(photos);
      }
      if (box.value === form._sentText) {
        box.value = "";
        box.style.height = "auto";
        updateCount(box);
        var note = form.querySelector("[data-note-toggle]");
        if (note) note.checked = false;
      }
      if (error) error.textContent = "";
      box.focus();
    }
    // On an error the server's reason was swapped into .field-error and the text stays.
  });

  // Loading earlier entries keeps the reader's place: the entry at the top of the view stays
  // where it was, instead of the view jumping up (and the next "load earlier" sentinel, now in
  // view, loading the next page, and the next, all the way to the first message).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var source = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!source || !source.classList || !source.classList.contains("load-earlier")) return;
    var timeline = timelineOf(source);
    var anchor = timeline && timeline.querySelector("#timeline-entries [data-seq]");
    if (!anchor) return;
    timeline._anchor = { el: anchor, top: anchor.getBoundingClientRect().top };
    // The sentinel being replaced is detached by the swap, so events on it never reach the
    // document: restore the place in the next frame, which runs after the swap and before the
    // browser checks whether the new sentinel is in view.
    requestAnimationFrame(keepPlace);
  });

  function keepPlace() {
    document.querySelectorAll("#timeline").forEach(function (timeline) {
      var anchor = timeline._anchor;
      if (!anchor) return;
      timeline._anchor = null;
      tidy(timeline.querySelector("#timeline-entries"));  // first: it may drop a day header
      if (anchor.el.isConnected) {
        timeline.scrollTop += anchor.el.getBoundingClientRect().top - anchor.top;
      }
    });
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    keepPlace();
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

  // -- Live updates (htmx ws extension) ----------------------------------------------------

  // Reconnect quickly after a restart, backing off to at most ~10 s, with jitter.
  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retry) {
      var cap = Math.min(500 * Math.pow(2, retry), 10000);
      return cap / 2 + Math.random() * cap / 2;
    };
  }

  // On every (re)connect, ask for everything after the last entry this page shows.
  document.addEventListener("htmx:wsOpen", function (event) {
    var scope = event.detail.elt.closest("[data-thread]");
    if (!scope) return;
    scope._socket = event.detail.socketWrapper;
    event.detail.socketWrapper.sendImmediately(
      JSON.stringify({ type: "resume", last_seq: lastSeq(scope) })
    );
  });

  var beforeMessage = new WeakMap();
  // A live row replaces (and sortRows moves) the row holding the focused chat button, which
  // drops keyboard focus to the page: remember the button by where it leads, to restore it.
  var focusedChat = null;
  // The same for an assignee control (a row's, or the open chat's, which the inbox frame
  // replaces too): its select or button is found again by its id.
  var focusedControl = null;
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    if (event.detail.elt.hasAttribute("data-inbox")) {
      var active = document.activeElement;
      var link = active && active.closest && active.closest("[data-open-chat]");
      focusedChat = link ? link.getAttribute("href") : null;
      var control = active && active.closest && active.closest("[data-assignee-control]");
      focusedControl = control && active.id ? active.id : control ? control.id : null;
      return;
    }
    var scope = event.detail.elt.closest("[data-thread]");
    if (!scope) return;
    var timeline = scope.querySelector("#timeline");
    beforeMessage.set(scope, { last: lastSeq(scope), near: timeline && nearBottom(timeline) });
  });

  document.addEventListener("htmx:wsAfterMessage", function (event) {
    if (event.detail.elt.hasAttribute("data-inbox")) {
      sortRows(event.detail.elt);
      if (focusedChat && !document.activeElement.closest("[data-open-chat]")) {
        var again = event.detail.elt.querySelector(
          '[data-open-chat][href="' + CSS.escape(focusedChat) + '"]'
        );
        if (again) again.focus();
      }
      focusedChat = null;
      if (focusedControl && document.activeElement.id !== focusedControl) {
        var control = document.getElementById(focusedControl);
        var target = control && control.matches("form") ? control.querySelector("button") : control;
        if (target) target.focus();
      }
      focusedControl = null;
      return;
    }
    var scope = event.detail.elt.closest("[data-thread]");
    if (!scope) return;
    var container = scope.querySelector("#timeline-entries");
    var timeline = scope.querySelector("#timeline");
    tidy(container);
    var before = beforeMessage.get(scope) || { last: 0, near: true };
    var fresh = Array.prototype.filter.call(container.querySelectorAll("[data-seq]"), function (el) {
      return +el.dataset.seq > before.last;
    });
    if (!fresh.length) return;
    var newest = fresh[fresh.length - 1];
    var sender = newest.querySelector(".sender, .note-label, .call-marker, .card");
    var text = newest.querySelector(".bubble, .note-body");
    announce(scope, "New: " + (sender ? sender.textContent.trim() + " " : "") + (text ? text.textContent.trim() : ""));
    // Looking at it is reading it: tell the server, which turns the sender's receipt to "Seen".
    if (document.visibilityState === "visible") {
      event.detail.socketWrapper.send(JSON.stringify({ type: "read", seq: +newest.dataset.seq }));
    }
    if (before.near) {
      scrollToNewest(timeline);
    } else {
      var pill = scope.querySelector("#new-messages-pill");
      if (pill) pill.hidden = false;
    }
  });

  document.addEventListener("click", function (event) {
    var pill = event.target.closest && event.target.closest("#new-messages-pill");
    if (!pill) return;
    var scope = pill.closest("[data-thread]");
    scrollToNewest(scope.querySelector("#timeline"));
    pill.hidden = true;
  });

  document.addEventListener("scroll", function (event) {
    var timeline = event.target;
    if (!(timeline instanceof Element) || timeline.id !== "timeline") return;
    if (nearBottom(timeline)) {
      var pill = timeline.closest("[data-thread]").querySelector("#new-messages-pill");
      if (pill) pill.hidden = true;
    }
  }, true);

  // Coming back to a hidden tab: what arrived meanwhile is read now.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible") return;
    document.querySelectorAll("[data-thread]").forEach(function (scope) {
      var seq = lastSeq(scope);
      if (scope._socket && seq) scope._socket.send(JSON.stringify({ type: "read", seq: seq }));
    });
  });

  // A live row for a project beyond the loaded pages has nowhere to go: put it in, and
  // let sortRows place it. Rows loaded by "Load more" that moved up meanwhile are dropped.
  document.addEventListener("htmx:oobErrorNoTarget", function (event) {
    var row = event.detail.content;
    var body = document.querySelector("[data-inbox] tbody");
    if (!body || !row || !row.matches || !row.matches("tr.project-row")) return;
    // A searched or filtered list shows only what matched: a row from elsewhere stays out.
    if (body.closest("[data-filtered]")) return;
    row.removeAttribute("hx-swap-oob");
    body.prepend(row);
    htmx.process(row);
    sortRows(body.closest("[data-inbox]"));
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var root = event.target.closest && event.target.closest("[data-inbox]");
    if (!root) return;
    var seen = {};
    root.querySelectorAll("tr.project-row").forEach(function (row) {
      if (seen[row.id]) row.remove(); else seen[row.id] = true;
    });
  });

  // Staff list: unread first, then the newest activity, then customer, then project code.
  function sortRows(root) {
    var body = root.querySelector("tbody");
    if (!body) return;
    var rows = Array.prototype.slice.call(body.querySelectorAll("tr.project-row"));
    var more = body.querySelector("tr.load-more-row");
    rows.sort(function (a, b) {
      var ua = +a.dataset.unread > 0 ? 1 : 0, ub = +b.dataset.unread > 0 ? 1 : 0;
      if (ua !== ub) return ub - ua;
      if (+a.dataset.last !== +b.dataset.last) return +b.dataset.last - +a.dataset.last;
      if (+a.dataset.customer !== +b.dataset.customer) return +a.dataset.customer - +b.dataset.customer;
      return a.dataset.code < b.dataset.code ? -1 : 1;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    if (more) body.appendChild(more);
  }

  // Staff chat dialog: a native <dialog> keeps focus inside and closes on Esc.
  function openDialog() {
    var dialog = document.getElementById("chat-dialog");
    if (!dialog) return;
    if (!dialog.open) dialog.showModal();
    var timeline = dialog.querySelector("#timeline");
    if (timeline) {
      group(timeline.querySelector("#timeline-entries"));
      scrollToNewest(timeline);
      follow(timeline);
    }
    // The reply box, not the first textarea (a closed tool's) nor showModal's pick, the
    // first focusable control (the email link, 23 Tabs away from it).
    var box = dialog.querySelector("[data-reply-form] textarea");
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
    // Replace the chat's history entry rather than add one after it: otherwise Back lands on
    // the chat's URL with the chat closed, and a reload there reopens it.
    if (location.pathname.indexOf("/staff/chat/") === 0) {
      history.replaceState({}, "", "/staff/projects/");
    }
    // Back to the chat button that opened it; the row may have been re-rendered live since,
    // so find the button again by where it leads.
    var href = document.body.dataset.lastOpener;
    var opener = href && document.querySelector('[data-open-chat][href="' + CSS.escape(href) + '"]');
    if (opener) opener.focus();
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-open-chat]");
    if (opener) document.body.dataset.lastOpener = opener.getAttribute("href");
  });

  document.addEventListener("DOMContentLoaded", function () {
    var dialog = document.getElementById("chat-dialog");
    if (dialog) {
      dialog.addEventListener("close", onDialogClosed);
      if (dialog.hasAttribute("data-open-on-load")) {
        document.body.dataset.lastOpener = location.pathname;
        openDialog();
      }
    }
    var timeline = document.querySelector("main #timeline");
    if (timeline) {
      group(timeline.querySelector("#timeline-entries"));
      var focus = timeline.dataset.focusSeq;
      var target = focus && document.getElementById("entry-" + focus);
      if (target) {
        target.classList.add("is-focused");
        target.scrollIntoView({ block: "center" });
      } else {
        scrollToNewest(timeline);
      }
      follow(timeline);
    }
  });
})();
