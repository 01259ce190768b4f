/* kalepool dashboard: refresh the page's live parts ([data-live] with an id) every few
   seconds by fetching the same page and swapping those elements. Optional: every page
   reads and works without it (forms are plain HTML forms). */
(function () {
  "use strict";
  if (!document.querySelector("[data-live]") || !window.fetch || !window.DOMParser) {
    return;
  }
  var seconds = Number(document.body.getAttribute("data-refresh-seconds")) || 5;
  var stamp = document.getElementById("live-stamp");
  var busy = false;

  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.pathname + window.location.search, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Requested-With": "kalepool-live" }
    }).then(function (response) {
      if (!response.ok || response.redirected) {
        throw new Error("status " + response.status);
      }
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (region) {
        var next = region.id && fresh.getElementById(region.id);
        if (next) {
          region.replaceWith(document.importNode(next, true));
        }
      });
      if (stamp) {
        stamp.textContent = "updated " + new Date().toLocaleTimeString();
        stamp.classList.remove("stale");
      }
    }).catch(function () {
      if (stamp) {
        stamp.textContent = "not updated (offline?)";
        stamp.classList.add("stale");
      }
    }).then(function () {
      busy = false;
    });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
})();
