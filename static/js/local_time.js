/*
 * Kinship: times in the reader's own zone.
 *
 * The server writes <time class="local-time" datetime="ISO" data-zone="Europe/London"
 * [data-end="ISO"]> with the text in the session's own zone. Here each is rewritten into
 * the browser's zone (Intl.DateTimeFormat), saying which zone it is; the original text
 * stays as the title. A schedule form marked data-zone-from-browser starts on the
 * browser's zone. No dependencies; loaded with <script src defer> (CSP: no inline scripts).
 */
(function () {
  "use strict";

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return "";
    }
  }

  var zone = browserZone();
  var dayFormat = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", year: "numeric"
  });
  var clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function rewrite(el) {
    var start = new Date(el.getAttribute("datetime"));
    if (isNaN(start.getTime())) { return; }
    var end = el.dataset.end ? new Date(el.dataset.end) : null;
    var text = dayFormat.format(start) + ", " + clockFormat.format(start);
    if (end && !isNaN(end.getTime())) {
      text += " to " + (dayFormat.format(end) === dayFormat.format(start)
        ? clockFormat.format(end)
        : dayFormat.format(end) + ", " + clockFormat.format(end));
    }
    el.title = el.textContent.trim();
    el.textContent = text + " (your time, " + zone.replace(/_/g, " ") + ")";
    el.classList.add("is-local");
  }

  function chooseZone(select) {
    var option = Array.prototype.find.call(select.options, function (o) { return o.value === zone; });
    if (!option) {
      option = new Option(zone.replace(/_/g, " "), zone);
      select.insertBefore(option, select.firstChild);
    }
    select.value = zone;
  }

  function init() {
    if (!zone) { return; }
    var times = document.querySelectorAll("time.local-time[datetime]");
    for (var i = 0; i < times.length; i++) {
      // Already the reader's zone: the server's text says it better (with its zone name).
      if (times[i].dataset.zone !== zone) { rewrite(times[i]); }
    }
    var select = document.querySelector("form[data-zone-from-browser] select[data-zone-select]");
    if (select) { chooseZone(select); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
