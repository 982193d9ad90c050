// Palisade console: progressive enhancement only. Every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var csrf = function () { return document.body ? document.body.dataset.csrf : ""; };

  // htmx requests carry the session's CSRF token in a header.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // The handling dialog: htmx loads its content, then it opens as a modal (the page behind it
  // inert, Escape closes it). Tab and Shift+Tab cycle inside it rather than leaving for the
  // browser's own controls, and closing it gives focus back to what opened it, so a keyboard
  // user keeps their place in the table.
  var opener = null;
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "dialog-body") {
      var dialog = document.getElementById("dialog");
      if (!dialog.open) {
        opener = document.activeElement;
        dialog.showModal();
      }
      var first = focusable(dialog)[0];
      if (first) { first.focus(); }
    }
  });
  function focusable(container) {
    var candidates = container.querySelectorAll(
      "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])");
    return Array.prototype.filter.call(candidates, function (element) {
      return !element.disabled && element.getClientRects().length > 0;
    });
  }
  function trapFocus(dialog) {
    dialog.addEventListener("keydown", function (event) {
      if (event.key !== "Tab") { return; }
      var elements = focusable(dialog);
      if (elements.length === 0) { return; }
      var first = elements[0];
      var last = elements[elements.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        last.focus();
        event.preventDefault();
      } else if (!event.shiftKey && document.activeElement === last) {
        first.focus();
        event.preventDefault();
      }
    });
    dialog.addEventListener("close", function () {
      if (opener && document.contains(opener)) { opener.focus(); }
      opener = null;
    });
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.handle");
    if (link && window.htmx) { event.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var dialog = document.getElementById("dialog");
    if (dialog) { trapFocus(dialog); }

    // Copy buttons (shown only when scripts run).
    document.querySelectorAll("button.copy").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        if (source && navigator.clipboard) {
          navigator.clipboard.writeText(source.textContent).then(function () {
            button.textContent = "Copied";
          });
        }
      });
    });

    // Live updates: new alerts arrive as rows over server-sent events.
    var table = document.getElementById("findings");
    if (table && table.dataset.live && window.EventSource) {
      var events = new EventSource(table.dataset.live);
      events.addEventListener("alert", function (event) {
        var body = table.querySelector("tbody");
        var empty = body.querySelector("tr.empty");
        if (empty) { empty.remove(); }
        var holder = document.createElement("tbody");
        holder.innerHTML = event.data;
        var rows = Array.prototype.slice.call(holder.children);
        rows.reverse().forEach(function (row) {
          if (!document.getElementById(row.id)) {
            row.classList.add("new");
            body.insertBefore(row, body.firstChild);
            if (window.htmx) { window.htmx.process(row); }
          }
        });
        var status = document.getElementById("live-status");
        if (status) { status.textContent = rows.length + " new alert" + (rows.length === 1 ? "" : "s"); }
      });
    }
  });
})();
