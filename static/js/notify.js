// The notifications badge, live: the server sends {"type": "unread", "count": N} on
// ws/notifications/ whenever the member's unread count changes (docs/chat-protocol.md).
// Only a number travels; the notifications themselves are read on their page.
(function () {
  "use strict";

  var link = document.querySelector("a[data-notify-socket]");
  var status = document.getElementById("notify-status");
  if (!link || !window.WebSocket) return;
  var path = link.getAttribute("data-notify-socket");
  var delay = 1000;
  var STABLE_OPEN_MS = 2000; // an open this long is a working socket
  var socket = null;
  var shown = badgeCount();

  function badgeCount() {
    var badge = link.querySelector(".badge");
    return badge ? parseInt(badge.textContent, 10) || 0 : 0;
  }

  function show(count) {
    var badge = link.querySelector(".badge");
    if (count > 0) {
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "badge";
        link.appendChild(document.createTextNode(" "));
        link.appendChild(badge);
      }
      badge.textContent = String(count);
      badge.setAttribute("aria-label", count + " unread");
      link.classList.add("has-unread");
    } else {
      if (badge) {
        if (badge.previousSibling && badge.previousSibling.nodeType === 3) {
          link.removeChild(badge.previousSibling);
        }
        link.removeChild(badge);
      }
      link.classList.remove("has-unread");
    }
    // Announce new arrivals politely; a count going down (read elsewhere) is not news.
    if (status && count > shown) status.textContent = count + " unread notifications";
    shown = count;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + path);
    var stable = null;
    socket.addEventListener("open", function () {
      // While Redis is down the server opens and closes at once (1013): only a socket that
      // stays open resets the backoff, so an outage is not knocked on every second.
      stable = setTimeout(function () { delay = 1000; }, STABLE_OPEN_MS);
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && frame.type === "unread" && typeof frame.count === "number") show(frame.count);
    });
    socket.addEventListener("close", function (event) {
      clearTimeout(stable);
      socket = null;
      // Signed out or no longer allowed: the next page load says so; stop knocking.
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(connect, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    });
  }

  // A tab coming back into view asks for the count again (a broadcast may have been lost).
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: "sync" }));
    }
  });

  connect();
})();
