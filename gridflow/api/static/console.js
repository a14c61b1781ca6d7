// The dispatch board, live: when /api/v1/events reports a change, reload the worklist fragment.
// Served by the app itself (no CDN, no build step). The stream authenticates with the session cookie.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("worklist");
    if (!box || !window.EventSource) { return; }
    var status = document.getElementById("live-status");
    var pending = null;
    function reload() {
      pending = null;
      var url = box.getAttribute("data-live-src") + window.location.search;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401) { window.location.href = "/signin"; return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null && html !== undefined) { box.innerHTML = html; } })
        .catch(function () { /* the next event tries again */ });
    }
    var source = new EventSource(box.getAttribute("data-events"), { withCredentials: true });
    source.addEventListener("open", function () { if (status) { status.hidden = false; } });
    source.addEventListener("error", function () { if (status) { status.hidden = true; } });
    source.addEventListener("case", function () {
      if (pending === null) { pending = window.setTimeout(reload, 300); }  // a burst of changes, one reload
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
