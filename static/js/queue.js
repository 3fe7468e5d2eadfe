// The review queue, live; and the "Show content" toggle on an item page.
// Vanilla JS under CSP script-src 'self': no inline handlers, no innerHTML of user text
// (the refreshed list is parsed by DOMParser from the server's escaped HTML and moved in).
(function () {
  "use strict";

  // --- distressing content: blurred until the moderator chooses to look ------------------
  // Without JS the <details> element hides it; with JS it shows blurred, behind a button.
  document.querySelectorAll("details[data-sensitive]").forEach(function (details) {
    var body = details.querySelector(".review-sensitive-body");
    if (!body) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small review-reveal";
    button.textContent = "Show content";
    button.setAttribute("aria-expanded", "false");
    details.open = true;
    details.classList.add("review-enhanced", "review-blurred");
    body.setAttribute("aria-hidden", "true");
    details.parentNode.insertBefore(button, details);
    button.addEventListener("click", function () {
      var blurred = details.classList.toggle("review-blurred");
      button.textContent = blurred ? "Show content" : "Hide content";
      button.setAttribute("aria-expanded", blurred ? "false" : "true");
      if (blurred) body.setAttribute("aria-hidden", "true");
      else body.removeAttribute("aria-hidden");
    });
  });

  // --- the live queue ---------------------------------------------------------------------
  var live = document.getElementById("queue-live");
  if (!live || !window.WebSocket) return;
  var path = live.getAttribute("data-socket");
  var delay = 1000;
  var STABLE_OPEN_MS = 2000; // an open this long is a working socket
  var fetching = false;
  var again = false;

  // Urgent changes (someone's words suggest they may be at risk) are announced at once,
  // assertively, and stay visible until the moderator dismisses them. The region exists
  // from page load, empty, so screen readers announce what is put in it later.
  var urgent = document.createElement("div");
  urgent.id = "queue-urgent";
  urgent.setAttribute("role", "alert");
  urgent.setAttribute("aria-live", "assertive");
  live.parentNode.insertBefore(urgent, live);

  function alertUrgent() {
    while (urgent.firstChild) urgent.removeChild(urgent.firstChild);
    var box = document.createElement("div");
    box.className = "notice review-crisis review-urgent-alert";
    var text = document.createElement("p");
    text.textContent = "Urgent: someone may need support. Their item is at the top of the queue.";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "secondary small";
    close.textContent = "Dismiss this alert";
    close.addEventListener("click", function () {
      while (urgent.firstChild) urgent.removeChild(urgent.firstChild);
    });
    box.appendChild(text);
    box.appendChild(close);
    urgent.appendChild(box);
  }

  function listUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    url.hash = "";
    return url.toString();
  }

  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(listUrl(), {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var parsed = new DOMParser().parseFromString(html, "text/html");
        var fresh = parsed.getElementById("queue-list");
        var current = document.getElementById("queue-list");
        if (fresh && current) {
          current.replaceWith(document.importNode(fresh, true));
          live.textContent = "The queue changed.";
        }
      })
      .catch(function () {
        live.textContent = "The queue may have changed; reload the page to see it.";
      })
      .then(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + path);
    var stable = null;
    socket.addEventListener("open", function () {
      live.setAttribute("data-state", "open");
      // While Redis is down the server opens and closes at once (1013): only a socket that
      // stays open counts as back, catching up and resetting the backoff.
      stable = setTimeout(function () {
        if (delay > 1000) refresh(); // we were away: catch up on what we missed
        delay = 1000;
      }, STABLE_OPEN_MS);
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame && frame.type === "queue_changed") {
        if (frame.urgent === true) alertUrgent();
        refresh();
      }
    });
    socket.addEventListener("close", function (event) {
      clearTimeout(stable);
      live.setAttribute("data-state", "closed");
      // 4401/4403: not signed in or not a moderator any more; no point retrying.
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(connect, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    });
  }

  connect();
})();
