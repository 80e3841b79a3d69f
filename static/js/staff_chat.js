// The staff chat modal's reply helpers: saved replies typed as "/name" in the reply box (an
// ARIA combobox over the server's list, filled in with the customer's values), and the
// conversation search's results, which open their entry in the timeline. Without this file
// the box is a plain box and a result is a link to the chat opened at the entry.
(function () {
  "use strict";

  // -- saved replies -------------------------------------------------------------------------

  function formOf(el) {
    return el && el.closest ? el.closest("[data-saved-replies]") : null;
  }

  function isReplyBox(el) {
    return el instanceof HTMLTextAreaElement && !!formOf(el);
  }

  // The "/word" that ends just before the caret, typed at the start or after a space (so
  // "1/2" or a URL opens nothing).
  function slashWord(box) {
    if (box.selectionStart !== box.selectionEnd) return null;
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([^\s\/]{0,30})$/.exec(before);
    if (!match) return null;
    return { start: before.length - match[2].length - 1, text: match[2].toLowerCase() };
  }

  function listOf(form) {
    return form.querySelector("[role=listbox]");
  }

  function setUp(box) {
    if (box.hasAttribute("role")) return;
    var list = listOf(formOf(box));
    box.setAttribute("role", "combobox");
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-expanded", "false");
    box.setAttribute("aria-controls", list.id);
  }

  // Fetched once per chat: the replies are few, and filtering them as staff type needs no
  // request per key.
  function replies(form) {
    if (!form._replies) {
      form._replies = fetch(form.dataset.savedReplies, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) { return response.ok ? response.json() : { replies: [] }; })
        .then(function (data) { return data.replies; })
        .catch(function () { form._replies = null; return []; });
    }
    return form._replies;
  }

  function close(box) {
    var form = formOf(box);
    var list = form && listOf(form);
    if (!list) return;
    list.hidden = true;
    list.textContent = "";
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
    form._shown = [];
  }

  function activate(box, index) {
    var form = formOf(box);
    var options = listOf(form).querySelectorAll("[role=option]");
    if (!options.length) return;
    index = (index + options.length) % options.length;
    options.forEach(function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    form._active = index;
    box.setAttribute("aria-activedescendant", options[index].id);
    options[index].scrollIntoView({ block: "nearest" });
  }

  function show(box) {
    var form = formOf(box);
    var word = slashWord(box);
    if (!word) return close(box);
    replies(form).then(function (all) {
      word = slashWord(box);  // what is typed now, not when the fetch began
      if (!word || document.activeElement !== box) return close(box);
      var found = all.filter(function (r) { return r.name.toLowerCase().indexOf(word.text) >= 0; });
      found.sort(function (a, b) {
        return (a.name.toLowerCase().indexOf(word.text) === 0 ? 0 : 1) -
          (b.name.toLowerCase().indexOf(word.text) === 0 ? 0 : 1);
      });
      found = found.slice(0, 8);
      if (!found.length) return close(box);
      var list = listOf(form);
      list.textContent = "";
      found.forEach(function (reply) {
        var option = document.createElement("li");
        option.id = "saved-reply-" + reply.id;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var name = document.createElement("span");
        name.className = "saved-reply-name";
        name.textContent = reply.name;
        var preview = document.createElement("span");
        preview.className = "saved-reply-preview";
        preview.textContent = reply.text;
        option.append(name, preview);
        list.appendChild(option);
      });
      form._shown = found;
      list.hidden = false;
      box.setAttribute("aria-expanded", "true");
      activate(box, 0);
    });
  }

  function insert(box, reply) {
    var form = formOf(box);
    var word = slashWord(box);
    if (!word) return close(box);
    var after = box.value.slice(box.selectionStart);
    box.value = box.value.slice(0, word.start) + reply.text + after;
    var caret = word.start + reply.text.length;
    box.setSelectionRange(caret, caret);
    close(box);
    form._inserting = true;
    box.dispatchEvent(new Event("input", { bubbles: true }));  // its height and counter
    form._inserting = false;
    var note = form.querySelector("[data-saved-reply-note]");
    if (note) {
      note.textContent = reply.missing.length
        ? "No value for " + reply.missing.map(function (m) { return m.fallback; }).join(", ") +
          ": edit it before sending."
        : "“" + reply.name + "” inserted. Edit it if you like, then send.";
      note.classList.toggle("is-warning", reply.missing.length > 0);
    }
  }

  document.addEventListener("focusin", function (event) {
    if (isReplyBox(event.target)) setUp(event.target);
  });

  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!isReplyBox(box) || formOf(box)._inserting) return;
    show(box);
  });

  document.addEventListener("focusout", function (event) {
    if (isReplyBox(event.target)) close(event.target);
  });

  // Capturing, so that with the list open Enter inserts and is not the Enter that sends
  // (thread.js), and Escape closes the list, not the dialog.
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (!isReplyBox(box) || box.getAttribute("aria-expanded") !== "true") return;
    var form = formOf(box);
    var handled = true;
    if (event.key === "ArrowDown") activate(box, form._active + 1);
    else if (event.key === "ArrowUp") activate(box, form._active - 1);
    else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.isComposing) {
      insert(box, form._shown[form._active]);
    } else if (event.key === "Escape") close(box);
    else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // A pointer picks too; pressing an option must not take focus from the box.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest && event.target.closest("[data-saved-replies] [role=option]")) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("[data-saved-replies] [role=option]");
    if (!option) return;
    var form = formOf(option);
    var box = form.querySelector("textarea");
    var index = Array.prototype.indexOf.call(listOf(form).children, option);
    insert(box, form._shown[index]);
  });

  // Sent: the note about the inserted reply was about that message.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-saved-replies]") || !event.detail.successful) return;
    var note = form.querySelector("[data-saved-reply-note]");
    if (note) {
      note.textContent = "";
      note.classList.remove("is-warning");
    }
  });

  // -- search results ------------------------------------------------------------------------

  function focusEntry(scope, entry, link) {
    scope.querySelectorAll(".is-focused").forEach(function (el) { el.classList.remove("is-focused"); });
    entry.classList.add("is-focused");
    entry.setAttribute("tabindex", "-1");
    var transcript = entry.querySelector("details.transcript");
    if (transcript && link.hasAttribute("data-in-transcript")) transcript.open = true;
    entry.scrollIntoView({ block: "center" });
    entry.focus({ preventScroll: true });
  }

  // A result opens its entry where it is, or first loads the page of the timeline around it
  // (the entries view's ?at=), in place of what the timeline showed.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-search-hit]");
    var scope = link && link.closest("[data-thread]");
    if (!scope || !window.htmx || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    var id = "entry-" + link.dataset.searchHit;
    var entry = scope.querySelector("#timeline-entries #" + id);
    if (entry) return focusEntry(scope, entry, link);
    var container = scope.querySelector("#timeline-entries");
    htmx.ajax("GET", link.dataset.entriesUrl, { target: container, swap: "innerHTML" }).then(function () {
      var loaded = scope.querySelector("#timeline-entries #" + id);
      if (loaded) focusEntry(scope, loaded, link);
    });
  });
})();
