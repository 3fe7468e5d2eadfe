/*
 * Kinship: a session page's countdown to the room opening.
 *
 * <p id="session-countdown" data-opens-at="ISO" data-server-now="ISO"> holds the time the
 * room opens; the difference between the server's clock and this one is allowed for. The
 * remaining time shows in .session-countdown-value; at zero the page reloads once, so the
 * session's room appears. No dependencies; loaded with <script src defer>.
 */
(function () {
  "use strict";

  var RELOAD_KEY = "kinship.session-reloaded";

  function remembered() {
    try {
      return Number(sessionStorage.getItem(RELOAD_KEY + ":" + location.pathname) || 0);
    } catch (e) {
      return 0;
    }
  }

  function remember(when) {
    try {
      sessionStorage.setItem(RELOAD_KEY + ":" + location.pathname, String(when));
    } catch (e) { /* storage off: reload anyway, the half-minute pause is lost */ }
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function describe(seconds) {
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var secs = seconds % 60;
    if (days > 0) { return plural(days, "day") + (hours ? " " + plural(hours, "hour") : ""); }
    if (hours > 0) { return plural(hours, "hour") + (minutes ? " " + plural(minutes, "minute") : ""); }
    if (minutes > 0) { return plural(minutes, "minute") + " " + plural(secs, "second"); }
    return plural(secs, "second");
  }

  function init() {
    var el = document.getElementById("session-countdown");
    if (!el) { return; }
    var opensAt = Date.parse(el.dataset.opensAt);
    var serverNow = Date.parse(el.dataset.serverNow);
    if (isNaN(opensAt)) { return; }
    // How far this computer's clock is ahead of the server's.
    var skew = isNaN(serverNow) ? 0 : Date.now() - serverNow;
    var left = el.querySelector(".session-countdown-left");
    var value = el.querySelector(".session-countdown-value");
    var timer = null;
    var console_ = document.getElementById("session-console");
    if (console_) {
      // Leaders see the live console before the start: it opens the room by itself (or
      // early, on their word), so the countdown steps aside once anything happens there.
      document.getElementById("chat").addEventListener("kinship:frame", function (event) {
        var frame = event.detail;
        if (frame && frame.type === "session" && frame.session && frame.session.phase !== "scheduled") {
          el.hidden = true;
          clearInterval(timer);
        }
      });
    }

    function tick() {
      var seconds = Math.ceil((opensAt - (Date.now() - skew)) / 1000);
      if (seconds <= 0) {
        clearInterval(timer);
        value.textContent = "a moment";
        if (console_) { el.hidden = true; return; } // the console opens by itself: no reload
        // At most every half minute: if the server still shows "not open" (its clock
        // disagrees with ours by more than we measured), the page must not reload in a loop.
        var last = remembered();
        setTimeout(function () {
          remember(Date.now());
          location.reload();
        }, Math.max(0, last + 30000 - Date.now()));
        return;
      }
      value.textContent = describe(seconds);
    }

    if (left && value) {
      left.hidden = false;
      tick();
      timer = setInterval(tick, 1000);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
