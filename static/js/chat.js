/*
 * Kinship live chat: the browser side of docs/chat-protocol.md.
 *
 * Plain JavaScript, no build step, no libraries. It runs under
 * `script-src 'self'; style-src 'self'; connect-src 'self'`: no inline styles,
 * no eval, and the only HTML ever inserted is a message's `html`, which the
 * server has already sanitised. Everything a person typed is inserted with
 * textContent.
 *
 * The page (templates/partials/chat_panel.html) renders the latest messages;
 * this script opens the room's WebSocket from `data-latest-seq`, applies every
 * change by message id, fills gaps it notices (a version jump, a heartbeat ahead
 * of what it has), and keeps unacknowledged sends in sessionStorage so neither
 * a dropped connection nor a reload loses them.
 */
(function () {
  "use strict";

  var MAX_BODY = 2000; // characters, as the protocol says
  var MAX_FRAME_BYTES = 8192; // larger frames close the socket with 1009
  var ACK_TIMEOUT_MS = 10000;
  var OP_TIMEOUT_MS = 10000; // edit / delete answered by a message_updated / message_removed
  var TYPING_EVERY_MS = 3000;
  var TYPING_SHOWN_MS = 6000;
  var READ_DEBOUNCE_MS = 2000;
  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var STABLE_OPEN_MS = 10000; // an open this long resets the backoff
  var MAX_FAILED_HANDSHAKES = 5;
  var SILENCE_LIMIT_MS = 50000; // heartbeats come every 20 s
  var RESUME_TIMEOUT_MS = 15000;
  var GAP_GRACE_MS = 1000;
  var STALE_OUTBOX_MS = 10 * 60 * 1000; // older unsent messages come back as "not sent"
  var NEAR_BOTTOM_PX = 80;
  // The server's default chat limit (docs/chat-protocol.md): queued messages are resent
  // one at a time and no faster than this, so a long queue does not trip it.
  var RATE_COUNT = 10;
  var RATE_WINDOW_MS = 10000;
  var RATE_MARGIN_MS = 250; // retry_after is whole seconds, rounded down
  // The reasons a member can flag a message for (moderation/models.py FlagReason).
  var FLAG_REASONS = [
    ["harassment", "Harassment or disruptive behaviour"],
    ["misinformation", "Misinformation or dangerous advice"],
    ["spam", "Spam or solicitation (including treatment-centre referrals)"],
    ["triggering", "Triggering content without a warning"],
    ["crisis", "I'm worried about this person (alerts moderators to reach out)"],
    ["other", "Something else (tell us what)"]
  ];
  var FLAG_THANKS = "Thanks \u2014 a moderator will look at it.";
  // A crisis concern's `flagged` frame carries the crisis resources (docs/chat-protocol.md).
  var CRISIS_INTRO = "If they, or you, need help now, these services are there:";
  var CRISIS_ANNOUNCE = "Crisis resources are listed under the message.";
  // A sender whose words suggest they may be at risk gets `support` in the ack (or a
  // `support` frame after an edit): the same resources, under their own message.
  var SUPPORT_INTRO = "It sounds like things may be really hard right now. You don't have to " +
    "go through it alone: these services are there for you, any time.";
  var SUPPORT_ANNOUNCE = "Your message is posted. Support is there if you want it: " +
    "crisis resources are listed under your message.";

  function init(root) {
    var $ = function (id) { return document.getElementById(id); };
    var els = {
      root: root,
      log: $("chat-log"),
      list: $("chat-messages"),
      empty: $("chat-empty"),
      jump: $("chat-jump"),
      status: $("chat-status"),
      presence: $("chat-presence"),
      typing: $("chat-typing"),
      stateNote: $("chat-state-note"),
      form: $("chat-composer"),
      input: $("chat-input"),
      send: $("chat-send"),
      count: $("chat-count"),
      unavailable: $("chat-unavailable"),
      hint: $("chat-hint"),
      error: $("chat-error"),
      announcer: $("chat-announcer")
    };
    if (!els.list || !els.form || !els.input) {
      return;
    }
    els.statusText = els.status.querySelector(".chat-status-text");
    els.statusAction = els.status.querySelector(".chat-status-action");
    els.errorText = els.error.querySelector(".chat-error-text");
    els.errorCountdown = els.error.querySelector(".chat-error-countdown");

    var me = root.dataset.me || "";
    // Members this reader blocked: their messages stay, folded behind a click.
    var blocked = {};
    (root.dataset.blocked || "").split(" ").forEach(function (h) { if (h) { blocked[h] = true; } });
    var wsPath = root.dataset.wsPath;
    var healthUrl = root.dataset.healthUrl || "";
    var crisisUrl = root.dataset.crisisUrl || "";
    var canModerate = root.dataset.canModerate === "true";
    var canWrite = root.dataset.canWrite === "true";
    var renderedState = root.dataset.roomState || "open";
    var roomState = renderedState;
    var sessionRefusal = null; // set by a live session's script: see kinshipSetWritable
    var storageKey = "kinship.chat.outbox:" + me + ":" + wsPath;

    // ---- sequence tracking -------------------------------------------------
    // lastSeen: every change up to it has been applied (what `after` asks from).
    // maxApplied: the highest version applied at all (a live frame may jump a gap).
    var lastSeen = toInt(root.dataset.latestSeq, 0);
    var maxApplied = lastSeen;
    var confirmedLatest = lastSeen; // latest_seq of the last complete history
    var liveAhead = {}; // versions applied live above lastSeen + 1, waiting for the gap to fill
    var gapTimer = null;
    var resumeInFlight = false;
    var resumeSentAt = 0;
    var oldestSeq = null; // messages older than the oldest shown are not drawn

    // ---- connection --------------------------------------------------------
    var ws = null;
    var opened = false;
    var openedAt = 0;
    var attempt = 0;
    var failedHandshakes = 0;
    var reconnectAt = 0;
    var reconnectTimer = null;
    var stopped = false;
    var lastFrameAt = 0;
    var lastSentClientId = null;
    var connSerial = 0; // counts opened sockets: which one a queued send went out on
    var awaitingHistory = false; // opened, and the first history has not arrived yet

    // ---- sends, edits, deletes ---------------------------------------------
    // Outbox items: {cid, body, at, state: "pending"|"sent"|"failed", reason, sentAt, id,
    // queued, sentOn}. A queued item waits its turn (see pumpQueue); the others were sent
    // the moment they were written, on an open socket.
    var outbox = [];
    var ownSource = {}; // message id -> the text typed here (a fallback when there is no `source`)
    var ops = {}; // message id -> {kind: "edit"|"delete", at}
    var flagging = {}; // message id -> true while a flag frame awaits its answer
    var flagged = {}; // message id -> crisis resources (often none) once the server confirmed the flag
    var supported = {}; // own message id -> crisis resources the server offered its sender
    var rateLimitedUntil = 0;
    var sendTimes = []; // when each send frame went out, for pacing the queue
    var queueHoldUntil = 0; // a rate limit answered a queued send: wait until then
    var queueTimer = null;
    var lastTypingSent = 0;
    var typers = {}; // handle -> expiry (ms)
    var readTimer = null;
    var lastReadSent = -1; // the first history after connecting marks the room read
    var presenceMembers = null;

    // =========================================================================
    // Small helpers
    // =========================================================================
    function toInt(value, fallback) {
      var n = parseInt(value, 10);
      return isNaN(n) ? fallback : n;
    }

    function now() { return Date.now(); }

    function el(tag, className, text) {
      var node = document.createElement(tag);
      if (className) { node.className = className; }
      if (text !== undefined && text !== null) { node.textContent = text; }
      return node;
    }

    function button(label, hiddenLabel, className, onClick) {
      var b = el("button", className || "link-button");
      b.type = "button";
      b.appendChild(document.createTextNode(label));
      if (hiddenLabel) {
        b.appendChild(el("span", "visually-hidden", " " + hiddenLabel));
      }
      b.addEventListener("click", onClick);
      return b;
    }

    function uuid() {
      if (window.crypto && typeof window.crypto.randomUUID === "function") {
        return window.crypto.randomUUID();
      }
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      bytes[6] = (bytes[6] & 0x0f) | 0x40;
      bytes[8] = (bytes[8] & 0x3f) | 0x80;
      var hex = [];
      for (var i = 0; i < 16; i++) {
        hex.push((bytes[i] + 0x100).toString(16).slice(1));
      }
      return hex.slice(0, 4).join("") + "-" + hex.slice(4, 6).join("") + "-" +
        hex.slice(6, 8).join("") + "-" + hex.slice(8, 10).join("") + "-" + hex.slice(10).join("");
    }

    /** Plain text of server-sanitised HTML, parsed inert (a <template> runs nothing, loads nothing). */
    function plainText(html) {
      var t = document.createElement("template");
      t.innerHTML = html || "";
      return (t.content.textContent || "").replace(/\s+/g, " ").trim();
    }

    /** Best-effort source text of a rendered message, to prefill the editor. */
    function editableText(bodyNode) {
      var parts = [];
      function walk(node) {
        for (var child = node.firstChild; child; child = child.nextSibling) {
          if (child.nodeType === 3) {
            parts.push(child.nodeValue);
          } else if (child.nodeType === 1) {
            var tag = child.tagName;
            if (tag === "BR") { parts.push("\n"); continue; }
            if (tag === "LI") { parts.push("- "); }
            walk(child);
            if (/^(P|DIV|LI|BLOCKQUOTE|PRE|H[1-6]|UL|OL)$/.test(tag)) { parts.push("\n\n"); }
          }
        }
      }
      walk(bodyNode);
      return parts.join("").replace(/\n{3,}/g, "\n\n").trim();
    }

    function formatTime(iso) {
      var d = new Date(iso);
      if (isNaN(d.getTime())) { return null; }
      var today = new Date();
      var time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      if (d.toDateString() === today.toDateString()) { return { short: time, full: d.toLocaleString() }; }
      var day = d.toLocaleDateString([], { day: "numeric", month: "short" });
      return { short: day + ", " + time, full: d.toLocaleString() };
    }

    function setTime(timeNode, iso) {
      var f = formatTime(iso);
      if (!f) { return; }
      timeNode.textContent = f.short;
      timeNode.title = f.full;
    }

    function frameBytes(obj) {
      var json = JSON.stringify(obj);
      return window.TextEncoder ? new TextEncoder().encode(json).length : json.length * 3;
    }

    function announce(text, messageId) {
      var p = el("p", null, text);
      if (messageId !== undefined) { p.dataset.messageId = String(messageId); }
      els.announcer.appendChild(p);
      while (els.announcer.childNodes.length > 5) {
        els.announcer.removeChild(els.announcer.firstChild);
      }
    }

    /** A removed message's text must leave the page: the announcer's copy too. */
    function unannounce(messageId) {
      var said = els.announcer.querySelectorAll("p[data-message-id]");
      for (var i = 0; i < said.length; i++) {
        if (said[i].dataset.messageId === String(messageId)) { els.announcer.removeChild(said[i]); }
      }
    }

    // =========================================================================
    // Scrolling
    // =========================================================================
    function nearBottom() {
      return els.log.scrollHeight - els.log.scrollTop - els.log.clientHeight < NEAR_BOTTOM_PX;
    }

    function scrollToBottom() {
      els.log.scrollTop = els.log.scrollHeight;
      els.jump.hidden = true;
    }

    function afterInsert(wasNearBottom, mine) {
      els.empty.hidden = els.list.children.length > 0;
      if (wasNearBottom || mine) {
        scrollToBottom();
      } else {
        els.jump.hidden = false;
      }
    }

    els.jump.addEventListener("click", function () {
      scrollToBottom();
      els.log.focus();
    });
    els.log.addEventListener("scroll", function () {
      if (nearBottom()) { els.jump.hidden = true; }
    });

    // =========================================================================
    // Rendering messages
    // =========================================================================
    function messageNodes() {
      return els.list.querySelectorAll("li.chat-message");
    }

    function findById(id) {
      return document.getElementById("msg-" + id);
    }

    function findLocal(cid) {
      var items = els.list.querySelectorAll("li.is-local");
      for (var i = 0; i < items.length; i++) {
        if (items[i].dataset.clientId === cid) { return items[i]; }
      }
      return null;
    }

    /** Insert li so that messages stay in seq order, unsent ones (no seq yet) last. */
    function placeBySeq(li, seq) {
      var items = messageNodes();
      var before = null;
      for (var i = items.length - 1; i >= 0; i--) {
        var other = items[i];
        if (other === li) { continue; }
        if (toInt(other.dataset.seq, Infinity) > seq) { before = other; } else { break; }
      }
      if (before) {
        if (li.nextElementSibling !== before) { els.list.insertBefore(li, before); }
      } else if (li.parentNode !== els.list || li !== els.list.lastElementChild) {
        els.list.appendChild(li);
      }
    }

    function removedText(removedBy) {
      if (removedBy === "moderator") { return "[removed by a moderator]"; }
      if (removedBy === "review") { return "[hidden while a moderator reviews it]"; }
      return "[message removed]";
    }

    function describe(li) {
      var t = li.querySelector("time");
      return t ? "from " + t.textContent : "";
    }

    /** Draw (or redraw) a stored message from a protocol message object. */
    function drawMessage(li, m) {
      var editor = li.querySelector(".chat-editor");
      var flagForm = li.querySelector(".chat-flag-form");
      li.className = "chat-message";
      li.id = "msg-" + m.id;
      li.dataset.id = String(m.id);
      li.dataset.seq = String(m.seq);
      li.dataset.version = String(m.version);
      li.dataset.author = m.author || "";
      li.dataset.createdAt = m.created_at || "";
      li.dataset.edited = m.edited ? "true" : "false";
      li.dataset.removed = m.removed ? (m.removed_by || "author") : "";
      if (m.client_id && me && m.author === me) {
        li.dataset.clientId = m.client_id;
      } else {
        delete li.dataset.clientId;
      }
      if (me && m.author === me) { li.classList.add("is-mine"); }
      if (m.removed) { li.classList.add("is-removed"); }
      // What the author wrote (Markdown, plain text), to fill the editor; kept in a data
      // attribute, never parsed as HTML.
      if (me && m.author === me && !m.removed && typeof m.source === "string") {
        li.dataset.source = m.source;
      } else {
        delete li.dataset.source;
      }

      while (li.firstChild) { li.removeChild(li.firstChild); }
      var meta = el("p", "chat-meta");
      meta.appendChild(el("span", "chat-author", m.author || "a former member"));
      meta.appendChild(document.createTextNode(" "));
      var time = el("time", "chat-time", m.created_at || "");
      time.dateTime = m.created_at || "";
      meta.appendChild(time);
      setTime(time, m.created_at);
      if (m.edited && !m.removed) {
        meta.appendChild(document.createTextNode(" "));
        meta.appendChild(el("span", "chat-edited", "(edited)"));
      }
      li.appendChild(meta);
      if (m.removed && m.removed_by === "review" && me && m.author === me && ownSource[m.id] !== undefined) {
        // Held for review: its author still sees what they wrote (as plain text), and why.
        li.appendChild(el("p", "chat-body chat-held", ownSource[m.id]));
        li.appendChild(el("p", "chat-held-note",
          "Only you can see this for now: a moderator will look at it soon, then it will appear for everyone."));
      } else if (m.removed) {
        li.appendChild(el("p", "chat-removed", removedText(m.removed_by)));
      } else {
        var body = el("div", "chat-body");
        body.innerHTML = m.html || ""; // server-sanitised (forum/sanitize.py): the only HTML inserted
        li.appendChild(body);
        if (m.context) { li.appendChild(contextNote(m.context)); }
        foldIfBlocked(li, m.author);
        if (editor && !ops[m.id]) {
          // Someone (another tab) changed it while it is open here: keep the draft.
          body.hidden = true;
          li.appendChild(editor);
        }
        if (flagForm) { li.appendChild(flagForm); } // an edit elsewhere keeps a flag being written
      }
      drawActions(li);
    }

    /** The moderators' context note under a message (a correction of a risky claim). */
    function contextNote(context) {
      var aside = el("aside", "context-note");
      aside.setAttribute("aria-label", "Context from the moderators");
      var lead = el("p");
      lead.appendChild(el("strong", null, "Context from the moderators:"));
      aside.appendChild(lead);
      var text = el("div");
      text.innerHTML = context.html || ""; // sanitised by the server when moderators wrote it
      aside.appendChild(text);
      var sources = Array.isArray(context.sources) ? context.sources : [];
      if (sources.length) {
        var line = el("p", "context-sources", "Sources: ");
        sources.forEach(function (source, i) {
          if (i) { line.appendChild(document.createTextNode("; ")); }
          if (/^https?:\/\/\S+$/.test(source)) {
            var link = el("a", null, source);
            link.href = source;
            link.rel = "nofollow noopener noreferrer";
            line.appendChild(link);
          } else {
            line.appendChild(document.createTextNode(source));
          }
        });
        aside.appendChild(line);
      }
      return aside;
    }

    /** Fold a blocked member's message body behind a "show" toggle. */
    function foldIfBlocked(li, author) {
      var body = li.querySelector(".chat-body");
      if (!author || !blocked[author] || !body || body.parentNode.tagName === "DETAILS") { return; }
      var fold = el("details", "chat-blocked");
      fold.appendChild(el("summary", null, "You blocked " + author + ": show this message"));
      li.insertBefore(fold, body);
      fold.appendChild(body);
    }

    /** Take over a server-rendered <li>: local times and buttons. */
    function adoptRendered(li) {
      var t = li.querySelector("time");
      if (t) { setTime(t, t.getAttribute("datetime")); }
      foldIfBlocked(li, li.dataset.author);
      drawActions(li);
    }

    function composerAllowed() {
      if (stopped) { return false; }
      if (sessionRefusal !== null) { return !sessionRefusal; } // a live session's phase decides
      if (!canWrite) { return false; }
      if (roomState === "open") { return true; }
      return roomState === "read_only" && canModerate;
    }

    function drawActions(li) {
      drawActionBar(li);
      drawCrisisResources(li);
    }

    function drawActionBar(li) {
      var old = li.querySelector(".chat-actions");
      if (old) { li.removeChild(old); }
      if (li.classList.contains("is-local") || li.dataset.removed || !me || stopped) { return; }
      if (li.querySelector(".chat-editor") || li.querySelector(".chat-flag-form")) { return; }
      var mine = li.dataset.author === me;
      var id = toInt(li.dataset.id, 0);
      var actions = el("div", "chat-actions");
      var what = describe(li);
      if (ops[id]) {
        actions.appendChild(el("span", "chat-op-state", ops[id].kind === "edit" ? "Saving…" : "Removing…"));
      } else if (mine) {
        if (composerAllowed()) {
          actions.appendChild(button("Edit", "your message " + what, "link-button", function () { openEditor(li); }));
        }
        actions.appendChild(button("Delete", "your message " + what, "link-button", function () {
          confirmRemove(li, "Delete this message?", "Delete");
        }));
      } else {
        if (canModerate) {
          actions.appendChild(button("Remove", (li.dataset.author || "a former member") + "'s message " + what,
            "link-button", function () {
              confirmRemove(li, "Remove this message for everyone?", "Remove");
            }));
        }
        if (flagged[id]) {
          actions.appendChild(el("span", "chat-flagged", FLAG_THANKS));
        } else {
          actions.appendChild(button("Flag", (li.dataset.author || "a former member") + "'s message " + what,
            "link-button chat-flag-button", function () { openFlagForm(li); }));
        }
      }
      if (root.kinshipMessageActions) { root.kinshipMessageActions(li, actions); } // e.g. "Pin"
      li.appendChild(actions);
    }

    /** Under the thanks for a crisis concern: the crisis resources, to pass on or to use. */
    function drawCrisisResources(li) {
      var old = li.querySelector(".chat-crisis");
      if (old) { li.removeChild(old); }
      var id = toInt(li.dataset.id, 0);
      var own = !flagged[id] && supported[id];
      var resources = flagged[id] || supported[id];
      if (!resources || !resources.length) { return; }
      var box = el("div", own ? "chat-crisis chat-support" : "chat-crisis");
      box.appendChild(el("p", "chat-crisis-intro", own ? SUPPORT_INTRO : CRISIS_INTRO));
      var list = el("ul", "chat-crisis-resources");
      for (var i = 0; i < resources.length; i++) {
        var r = resources[i] || {};
        var item = el("li");
        var name;
        if (typeof r.url === "string" && /^https?:\/\//i.test(r.url)) {
          name = el("a", null, r.name || r.url);
          name.href = r.url;
          name.rel = "noopener noreferrer";
        } else {
          name = el("strong", null, r.name || "");
        }
        item.appendChild(name);
        var reach = [r.contact, r.region].filter(function (part) { return typeof part === "string" && part; });
        if (reach.length) { item.appendChild(document.createTextNode(": " + reach.join(" \u00b7 "))); }
        if (r.description) { item.appendChild(el("span", "chat-crisis-about", r.description)); }
        list.appendChild(item);
      }
      box.appendChild(list);
      if (crisisUrl) {
        var all = el("a", null, "All crisis resources");
        all.href = crisisUrl;
        box.appendChild(el("p")).appendChild(all);
      }
      li.appendChild(box);
    }

    /** A small inline form to flag someone else's message to the moderators. */
    function openFlagForm(li) {
      var id = toInt(li.dataset.id, 0);
      if (li.querySelector(".chat-flag-form")) { return; }
      var form = el("form", "chat-flag-form");
      var reasonId = "chat-flag-reason-" + id;
      var detailsId = "chat-flag-details-" + id;
      var reasonLabel = el("label", null, "Why are you flagging this message?");
      reasonLabel.htmlFor = reasonId;
      var select = el("select");
      select.id = reasonId;
      select.appendChild(el("option", null, "Choose a reason…"));
      select.firstChild.value = "";
      for (var i = 0; i < FLAG_REASONS.length; i++) {
        var option = el("option", null, FLAG_REASONS[i][1]);
        option.value = FLAG_REASONS[i][0];
        select.appendChild(option);
      }
      var detailsLabel = el("label", null, "Anything a moderator should know (optional; needed for \u201cSomething else\u201d)");
      detailsLabel.htmlFor = detailsId;
      var details = el("textarea");
      details.id = detailsId;
      details.rows = 2;
      details.maxLength = 1000;
      var note = el("p", "chat-flag-error error");
      note.hidden = true;
      note.setAttribute("role", "alert");
      var help = el("p", "help", "Only moderators see flags. The author is not told who flagged.");
      var row = el("div", "chat-editor-row");
      var send = el("button", "small", "Send");
      send.type = "submit";
      var cancel = button("Cancel", null, "secondary small", function () { closeFlagForm(li, true); });
      row.appendChild(send);
      row.appendChild(cancel);
      form.appendChild(reasonLabel);
      form.appendChild(select);
      form.appendChild(detailsLabel);
      form.appendChild(details);
      form.appendChild(help);
      form.appendChild(note);
      form.appendChild(row);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (!select.value) {
          showFlagError(li, "Choose a reason from the list.");
          select.focus();
          return;
        }
        if (select.value === "other" && !details.value.trim()) {
          showFlagError(li, "Tell the moderators what is wrong.");
          details.focus();
          return;
        }
        if (!sendFrame({ type: "flag", id: id, reason: select.value, details: details.value })) {
          showFlagError(li, "Not connected right now. Try again once chat reconnects.");
          return;
        }
        flagging[id] = true;
        select.disabled = details.disabled = send.disabled = true;
        send.textContent = "Sending…";
        note.hidden = true;
      });
      form.addEventListener("keydown", function (event) {
        if (event.key === "Escape") {
          event.preventDefault();
          closeFlagForm(li, true);
        }
      });
      var actions = li.querySelector(".chat-actions");
      if (actions) { li.removeChild(actions); }
      li.appendChild(form);
      select.focus();
    }

    function showFlagError(li, text) {
      var form = li.querySelector(".chat-flag-form");
      if (!form) { showError(text); return; }
      var note = form.querySelector(".chat-flag-error");
      note.textContent = text;
      note.hidden = false;
      var fields = form.querySelectorAll("select, textarea, button");
      for (var i = 0; i < fields.length; i++) { fields[i].disabled = false; }
      var send = form.querySelector("button[type=submit]");
      if (send) { send.textContent = "Send"; }
    }

    function closeFlagForm(li, restoreFocus) {
      var form = li.querySelector(".chat-flag-form");
      if (form) { li.removeChild(form); }
      drawActions(li);
      if (restoreFocus) {
        var flagButton = li.querySelector(".chat-flag-button");
        if (flagButton) { flagButton.focus(); } else { focusMessage(li); }
      }
    }

    function onFlagged(frame) {
      var id = toInt(frame.id, 0);
      delete flagging[id];
      flagged[id] = Array.isArray(frame.resources) ? frame.resources : [];
      var li = findById(id);
      if (li) {
        var hadFocus = li.contains(document.activeElement);
        closeFlagForm(li, false);
        if (hadFocus) { focusMessage(li); }
      }
      announce(flagged[id].length && li ? FLAG_THANKS + " " + CRISIS_ANNOUNCE : FLAG_THANKS);
    }

    function redrawAllActions() {
      var items = messageNodes();
      for (var i = 0; i < items.length; i++) {
        if (!items[i].classList.contains("is-local")) { drawActions(items[i]); }
      }
    }

    /** Apply one message object (history, message, message_updated, message_removed). */
    function applyMessage(m, isLive, sink) {
      if (!m || typeof m.id !== "number") { return; }
      if (m.removed) { unannounce(m.id); }
      var version = toInt(m.version, 0);
      var existing = findById(m.id);
      var local = null;
      if (m.client_id && me && m.author === me) {
        local = findLocal(m.client_id);
        if (local) { forgetOutbox(m.client_id); }
      }
      var wasNearBottom = nearBottom();
      var mine = me && m.author === me;
      if (existing && !existing.classList.contains("is-local")) {
        if (toInt(existing.dataset.version, 0) >= version) {
          if (local) { local.parentNode.removeChild(local); }
          return; // stale or repeated
        }
        var hadFocus = existing.contains(document.activeElement);
        drawMessage(existing, m);
        if (ops[m.id] && (m.removed || ops[m.id].kind === "edit")) { finishOp(m.id, existing); }
        if (local && local !== existing) { local.parentNode.removeChild(local); }
        if (hadFocus && !existing.contains(document.activeElement)) { focusMessage(existing); }
        if (m.removed) { clearTyping(m.author); }
        return;
      }
      var li = local || existing;
      var arriving = !li;
      if (li && li.dataset.clientId) { forgetOutbox(li.dataset.clientId); }
      if (!li) {
        // Older than the page's first message (an edit of an old one, after a resume): not drawn.
        if (oldestSeq !== null && m.seq < oldestSeq) { return; }
        li = el("li", "chat-message");
        if (sink && !mine && !m.removed) { sink.push(m); }
      }
      drawMessage(li, m);
      if (arriving) { li.classList.add("is-new"); }
      placeBySeq(li, m.seq);
      if (isLive) { clearTyping(m.author); }
      afterInsert(wasNearBottom, local !== null);
    }

    function noteVersion(version, isLive) {
      version = toInt(version, 0);
      if (version > maxApplied) { maxApplied = version; }
      if (!isLive || version <= lastSeen) { return; }
      liveAhead[version] = true;
      advanceLastSeen();
      if (maxApplied > lastSeen && gapTimer === null) {
        // Two workers' broadcasts can overtake each other: give the missing one a moment
        // to arrive before asking the server for it.
        gapTimer = window.setTimeout(function () {
          gapTimer = null;
          if (maxApplied > lastSeen) { requestResume(); }
        }, GAP_GRACE_MS);
      }
    }

    // Move lastSeen over every version already applied live just above it.
    function advanceLastSeen() {
      while (liveAhead[lastSeen + 1]) { lastSeen += 1; }
      Object.keys(liveAhead).forEach(function (key) {
        if (toInt(key, 0) <= lastSeen) { delete liveAhead[key]; }
      });
    }

    // =========================================================================
    // Editing and removing
    // =========================================================================
    function focusMessage(li) {
      li.tabIndex = -1;
      li.focus();
    }

    function openEditor(li) {
      var id = toInt(li.dataset.id, 0);
      var body = li.querySelector(".chat-body");
      if (!body || li.querySelector(".chat-editor")) { return; }
      var form = el("form", "chat-editor");
      var fieldId = "chat-edit-" + id;
      var label = el("label", null, "Edit your message");
      label.htmlFor = fieldId;
      var area = el("textarea");
      area.id = fieldId;
      area.maxLength = MAX_BODY;
      area.rows = 3;
      // The server's `source` first; without it (an older server), what was typed here,
      // or else the text of the rendered HTML.
      area.value = li.dataset.source !== undefined ? li.dataset.source
        : ownSource[id] !== undefined ? ownSource[id] : editableText(body);
      var initial = area.value;
      var note = el("p", "chat-editor-error error");
      note.hidden = true;
      note.setAttribute("role", "alert");
      var row = el("div", "chat-editor-row");
      var save = el("button", "small", "Save");
      save.type = "submit";
      var cancel = button("Cancel", null, "secondary small", function () { closeEditor(li, true); });
      row.appendChild(save);
      row.appendChild(cancel);
      form.appendChild(label);
      form.appendChild(area);
      form.appendChild(note);
      form.appendChild(row);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var text = area.value;
        if (text.trim() === initial.trim()) {
          closeEditor(li, true); // unchanged: the server would store nothing and answer nothing
          return;
        }
        if (!text.trim()) {
          showEditorError(li, "A message can't be empty. To take it back, use Delete.");
          return;
        }
        var frame = { type: "edit", id: id, body: text };
        if (frameBytes(frame) > MAX_FRAME_BYTES) {
          showEditorError(li, "This message is too long to send. Please shorten it.");
          return;
        }
        if (!sendFrame(frame)) {
          showEditorError(li, "Not connected right now. Your text is still here; save again once chat reconnects.");
          return;
        }
        ownSource[id] = text;
        ops[id] = { kind: "edit", at: now() };
        area.disabled = true;
        save.disabled = true;
        save.textContent = "Saving…";
        note.hidden = true;
      });
      area.addEventListener("keydown", function (event) {
        if (event.key === "Escape") {
          event.preventDefault();
          closeEditor(li, true);
        } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
          event.preventDefault();
          if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { save.click(); }
        }
      });
      body.hidden = true;
      var actions = li.querySelector(".chat-actions");
      if (actions) { li.removeChild(actions); }
      li.appendChild(form);
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
    }

    function showEditorError(li, text) {
      var note = li.querySelector(".chat-editor-error");
      if (!note) { showError(text); return; }
      note.textContent = text;
      note.hidden = false;
      var area = li.querySelector(".chat-editor textarea");
      var save = li.querySelector(".chat-editor button[type=submit]");
      if (area) { area.disabled = false; }
      if (save) { save.disabled = false; save.textContent = "Save"; }
    }

    function closeEditor(li, restoreFocus) {
      var editor = li.querySelector(".chat-editor");
      if (editor) { li.removeChild(editor); }
      var body = li.querySelector(".chat-body");
      if (body) { body.hidden = false; }
      drawActions(li);
      if (restoreFocus) {
        var edit = li.querySelector(".chat-actions button");
        if (edit) { edit.focus(); } else { focusMessage(li); }
      }
    }

    function confirmRemove(li, question, verb) {
      var id = toInt(li.dataset.id, 0);
      var actions = li.querySelector(".chat-actions");
      if (!actions) { return; }
      while (actions.firstChild) { actions.removeChild(actions.firstChild); }
      actions.classList.add("is-wide");
      actions.appendChild(el("span", "chat-confirm", question));
      var yes = button(verb, null, "danger small", function () {
        if (!sendFrame({ type: "delete", id: id })) {
          drawActions(li);
          showError("Not connected right now. Try again once chat reconnects.");
          var again = li.querySelector(".chat-actions button");
          if (again) { again.focus(); }
          return;
        }
        ops[id] = { kind: "delete", at: now() };
        drawActions(li);
        focusMessage(li);
      });
      var no = button("Cancel", null, "secondary small", function () {
        drawActions(li);
        var first = li.querySelector(".chat-actions button");
        if (first) { first.focus(); }
      });
      actions.appendChild(yes);
      actions.appendChild(no);
      no.focus();
    }

    function finishOp(id, li) {
      var op = ops[id];
      delete ops[id];
      if (!li) { return; }
      if (op && op.kind === "edit") {
        var hadFocus = li.contains(document.activeElement);
        closeEditor(li, false);
        if (hadFocus || document.activeElement === document.body) {
          var b = li.querySelector(".chat-actions button");
          if (b) { b.focus(); } else { focusMessage(li); }
        }
      } else {
        drawActions(li);
      }
    }

    function failOp(id, text) {
      var op = ops[id];
      if (!op) { return; }
      delete ops[id];
      var li = findById(id);
      if (!li) { return; }
      if (op.kind === "edit" && li.querySelector(".chat-editor")) {
        showEditorError(li, text);
      } else {
        drawActions(li);
        showError(text);
      }
    }

    // =========================================================================
    // Sending (the outbox)
    // =========================================================================
    function saveOutbox() {
      try {
        var keep = [];
        for (var i = 0; i < outbox.length; i++) {
          if (outbox[i].state !== "sent") {
            keep.push({ cid: outbox[i].cid, body: outbox[i].body, at: outbox[i].at,
              state: outbox[i].state, reason: outbox[i].reason || "" });
          }
        }
        if (keep.length) {
          window.sessionStorage.setItem(storageKey, JSON.stringify(keep));
        } else {
          window.sessionStorage.removeItem(storageKey);
        }
      } catch (e) { /* storage full or disabled: the in-memory queue still works */ }
    }

    function loadOutbox() {
      var saved = [];
      try {
        saved = JSON.parse(window.sessionStorage.getItem(storageKey) || "[]");
      } catch (e) { saved = []; }
      if (!Array.isArray(saved)) { return; }
      var cutoff = now() - STALE_OUTBOX_MS;
      for (var i = 0; i < saved.length; i++) {
        var s = saved[i];
        if (!s || typeof s.cid !== "string" || typeof s.body !== "string") { continue; }
        if (els.list.querySelector('li[data-client-id="' + s.cid.replace(/[^0-9a-zA-Z-]/g, "") + '"]')) {
          continue; // it was stored before the reload: the page already shows it
        }
        var item = { cid: s.cid, body: s.body, at: toInt(s.at, now()), state: s.state === "failed" ? "failed" : "pending",
          reason: s.reason || "", sentAt: 0 };
        if (item.state === "pending" && item.at < cutoff) {
          item.state = "failed";
          item.reason = "Not sent before the page was reloaded.";
        }
        outbox.push(item);
        drawLocal(item);
      }
      saveOutbox();
    }

    function outboxItem(cid) {
      for (var i = 0; i < outbox.length; i++) {
        if (outbox[i].cid === cid) { return outbox[i]; }
      }
      return null;
    }

    function forgetOutbox(cid) {
      for (var i = 0; i < outbox.length; i++) {
        if (outbox[i].cid === cid) { outbox.splice(i, 1); break; }
      }
      saveOutbox();
      pumpQueue(); // if it was the queued one in flight, the next may go
    }

    /** Draw a message that the server has not stored (pending or failed) or not yet sent us. */
    function drawLocal(item) {
      var li = findLocal(item.cid);
      var wasNearBottom = nearBottom();
      var isNew = !li;
      if (!li) {
        li = el("li");
        li.dataset.clientId = item.cid;
        li.id = "pending-" + item.cid;
      }
      li.className = "chat-message is-mine is-local" + (isNew ? " is-new" : "");
      li.classList.add(item.state === "sent" ? "is-sent" : "is-pending");
      if (item.state === "failed") { li.classList.add("is-failed"); }
      while (li.firstChild) { li.removeChild(li.firstChild); }
      var meta = el("p", "chat-meta");
      meta.appendChild(el("span", "chat-author", me));
      meta.appendChild(document.createTextNode(" "));
      var time = el("time", "chat-time");
      var iso = new Date(item.at).toISOString();
      time.dateTime = iso;
      setTime(time, iso);
      meta.appendChild(time);
      meta.appendChild(document.createTextNode(" "));
      var stateText = item.state === "sent" ? "sent" : item.state === "failed" ? "not sent"
        : item.waiting || !opened ? "waiting to send…" : "sending…";
      meta.appendChild(el("span", "chat-send-state", stateText));
      li.appendChild(meta);
      var body = el("div", "chat-body chat-plain");
      body.textContent = item.body; // what the person typed: text, never HTML
      li.appendChild(body);
      if (item.state === "failed") {
        var actions = el("div", "chat-actions chat-failed is-wide");
        actions.appendChild(el("span", "chat-failed-reason", item.reason || "Not sent."));
        if (item.quietHours) {
          // The member's own quiet hours held it: their choice to post this one anyway.
          actions.appendChild(button("I know, post anyway", "this message, despite your quiet hours", "small", function () {
            item.postAnyway = true;
            retry(item.cid);
          }));
        } else {
          actions.appendChild(button("Retry", "sending this message", "small", function () { retry(item.cid); }));
        }
        actions.appendChild(button("Discard", "this unsent message", "secondary small", function () { discard(item.cid); }));
        li.appendChild(actions);
      }
      if (isNew) {
        els.list.appendChild(li);
        afterInsert(wasNearBottom, true);
      } else if (wasNearBottom) {
        scrollToBottom(); // a "not sent" note makes it taller: keep it in view
      }
      return li;
    }

    function trySend(item) {
      item.sentAt = now();
      item.sentOn = connSerial;
      lastSentClientId = item.cid;
      var frame = { type: "send", client_id: item.cid, body: item.body };
      if (item.postAnyway) { frame.post_anyway = true; }
      if (!sendFrame(frame)) { return false; }
      sendTimes.push(now());
      return true;
    }

    // ---- the queue ----------------------------------------------------------
    // Messages written while disconnected (or restored after a reload, or unconfirmed when
    // the connection dropped) are resent after reconnecting in the order they were written,
    // one at a time: the next goes when the previous one is acknowledged, and never more
    // than RATE_COUNT in RATE_WINDOW_MS. If the server still says rate_limited (another tab
    // may be writing too), the queue waits retry_after and carries on: nothing is marked
    // failed for it. Messages written while the queue is still busy join its end.

    function queueBusy() {
      for (var i = 0; i < outbox.length; i++) {
        if (outbox[i].state === "pending" && outbox[i].queued) { return true; }
      }
      return false;
    }

    /** Milliseconds until one more send keeps within RATE_COUNT per RATE_WINDOW_MS. */
    function paceDelay() {
      var t = now();
      while (sendTimes.length && t - sendTimes[0] >= RATE_WINDOW_MS) { sendTimes.shift(); }
      if (sendTimes.length < RATE_COUNT) { return 0; }
      return sendTimes[sendTimes.length - RATE_COUNT] + RATE_WINDOW_MS + RATE_MARGIN_MS - t;
    }

    function setWaiting(item, waiting) {
      if (!!item.waiting === waiting) { return; }
      item.waiting = waiting;
      drawLocal(item);
    }

    function pumpQueue() {
      window.clearTimeout(queueTimer);
      queueTimer = null;
      if (!opened || stopped || awaitingHistory) { return; }
      var next = null;
      for (var i = 0; i < outbox.length && !next; i++) {
        var item = outbox[i];
        if (item.state !== "pending" || !item.queued) { continue; }
        if (item.sentOn === connSerial) { return; } // in flight: wait for its ack or error
        next = item;
      }
      if (!next) { return; }
      var wait = Math.max(queueHoldUntil - now(), paceDelay());
      if (wait > 0) {
        for (var j = 0; j < outbox.length; j++) {
          if (outbox[j].state === "pending" && outbox[j].queued) { setWaiting(outbox[j], true); }
        }
        queueTimer = window.setTimeout(pumpQueue, wait);
        return;
      }
      setWaiting(next, false);
      trySend(next);
    }

    /**
     * Send now if connected and nothing is queued ahead of it; otherwise it waits its turn.
     * (A message written on an open socket goes at once: if it is one too many, the server
     * says rate_limited and the person sees it, with Retry, rather than a silent wait.)
     */
    function sendOrQueue(item) {
      item.sentOn = 0;
      if (opened && !queueBusy() && rateLimitedUntil <= now()) {
        item.queued = false;
        trySend(item);
      } else {
        item.queued = true;
        if (rateLimitedUntil > now()) { queueHoldUntil = Math.max(queueHoldUntil, rateLimitedUntil); }
        pumpQueue();
      }
    }

    function submitComposer() {
      var text = els.input.value;
      if (!text.trim()) { return; }
      if (!composerAllowed()) { return; }
      if (rateLimitedUntil > now()) { return; }
      if (text.length > MAX_BODY) {
        showError("Messages can be at most " + MAX_BODY + " characters.");
        return;
      }
      var item = { cid: uuid(), body: text, at: now(), state: "pending", reason: "", sentAt: 0 };
      if (frameBytes({ type: "send", client_id: item.cid, body: text }) > MAX_FRAME_BYTES) {
        showError("This message is too long to send. Please shorten it.");
        return;
      }
      outbox.push(item);
      saveOutbox();
      els.input.value = "";
      updateCount();
      hideError();
      drawLocal(item);
      scrollToBottom();
      sendOrQueue(item);
    }

    function retry(cid) {
      var item = outboxItem(cid);
      if (!item) { return; }
      item.state = "pending";
      item.reason = "";
      item.sentAt = 0;
      saveOutbox();
      var li = drawLocal(item);
      sendOrQueue(item);
      focusMessage(li);
    }

    function discard(cid) {
      var li = findLocal(cid);
      forgetOutbox(cid);
      if (li) { li.parentNode.removeChild(li); }
      els.empty.hidden = els.list.children.length > 0;
      els.input.focus();
    }

    function markFailed(cid, reason, automatic) {
      var item = outboxItem(cid);
      if (!item || item.state === "sent") { return; }
      item.state = "failed";
      item.reason = reason;
      item.retryOnReconnect = !!automatic;
      item.queued = false;
      item.waiting = false;
      saveOutbox();
      drawLocal(item);
      pumpQueue();
    }

    /** A send was refused with rate_limited. Returns true if the queue takes care of it. */
    function holdQueue(cid, waitSeconds) {
      var item = outboxItem(cid);
      if (!item || item.state !== "pending" || !item.queued) { return false; }
      item.sentOn = 0;
      item.sentAt = 0;
      queueHoldUntil = Math.max(queueHoldUntil, now() + waitSeconds * 1000 + RATE_MARGIN_MS);
      pumpQueue();
      return true;
    }

    /** The server offers support to the sender of words that suggest risk. */
    function offerSupport(id, support) {
      if (!id || !support || !Array.isArray(support.resources) || !support.resources.length) { return; }
      var fresh = !supported[id];
      supported[id] = support.resources;
      var shown = findById(id);
      if (shown) { drawCrisisResources(shown); }
      if (fresh) { announce(SUPPORT_ANNOUNCE); }
    }

    function onSupport(frame) {
      offerSupport(toInt(frame.id, 0), frame.support);
    }

    function onAck(frame) {
      var item = outboxItem(frame.client_id);
      var li = findLocal(frame.client_id);
      if (frame.support) {
        // Set before the message is drawn, so whichever node shows it carries the resources.
        window.setTimeout(function () { offerSupport(toInt(frame.id, 0), frame.support); }, 0);
      }
      if (!item && !li) { return; }
      if (item) {
        ownSource[frame.id] = item.body;
        item.state = "sent";
        item.id = frame.id;
        item.queued = false;
        item.waiting = false;
      }
      saveOutbox(); // sent ones are no longer kept for a reload
      var real = findById(frame.id);
      if (real && !real.classList.contains("is-local")) {
        if (li) { li.parentNode.removeChild(li); }
        forgetOutbox(frame.client_id);
        return;
      }
      if (li && item) {
        drawLocal(item);
        li.id = "msg-" + frame.id;
        li.dataset.id = String(frame.id);
        li.dataset.seq = String(frame.seq);
        placeBySeq(li, toInt(frame.seq, Infinity));
      }
      pumpQueue();
      // The broadcast usually follows; if it was lost, fetch the message.
      window.setTimeout(function () {
        var shown = findById(frame.id);
        if (shown && shown.classList.contains("is-local")) { requestResume(); }
      }, 3000);
    }

    /** After (re)connecting: everything unconfirmed goes back in the queue, in order. */
    function flushOutbox() {
      for (var i = 0; i < outbox.length; i++) {
        var item = outbox[i];
        if (item.state === "pending" || (item.state === "failed" && item.retryOnReconnect)) {
          item.state = "pending";
          item.reason = "";
          item.queued = true;
          item.sentOn = 0;
          item.sentAt = 0;
          drawLocal(item);
        }
      }
      saveOutbox();
      pumpQueue();
    }

    // =========================================================================
    // The composer
    // =========================================================================
    function updateComposer() {
      var allowed = composerAllowed();
      els.input.disabled = !allowed;
      els.send.disabled = !allowed || rateLimitedUntil > now();
      var reason = "";
      if (stopped) {
        reason = "Chat is disconnected. Reload the page to try again; anything you wrote and didn't send is kept.";
      } else if (sessionRefusal !== null) {
        reason = sessionRefusal;
      } else if (roomState === "archived") {
        reason = "This room is archived, so nobody can write here.";
      } else if (roomState === "read_only" && !canModerate) {
        reason = "This room is read-only: only leaders and moderators can write here right now.";
      } else if (!canWrite && roomState === "open" && renderedState !== "open") {
        reason = "This room is open again. Reload the page to join in.";
      } else if (!canWrite) {
        reason = root.dataset.writeRefusal || "You can read this room, but you can't write in it.";
      }
      els.unavailable.textContent = reason;
      els.unavailable.hidden = !reason;

      // The composer explains itself when it is off; this note is for those who still write.
      var note = "";
      if (roomState === "read_only" && allowed) {
        note = "This room is read-only: only leaders and moderators write here, and you are one of them.";
      }
      els.hint.hidden = !allowed;
      els.stateNote.textContent = note;
      els.stateNote.hidden = !note;
    }

    function updateCount() {
      var n = els.input.value.length;
      if (n >= MAX_BODY - 200) {
        els.count.textContent = n + " / " + MAX_BODY;
        els.count.hidden = false;
      } else {
        els.count.hidden = true;
      }
    }

    var errorTimer = null;
    function showError(text, retryAfter) {
      els.errorText.textContent = text;
      els.errorCountdown.textContent = "";
      els.error.hidden = false;
      window.clearInterval(errorTimer);
      errorTimer = null;
      if (retryAfter) {
        rateLimitedUntil = now() + retryAfter * 1000;
        updateComposer();
        var tick = function () {
          var left = Math.ceil((rateLimitedUntil - now()) / 1000);
          if (left <= 0) {
            window.clearInterval(errorTimer);
            errorTimer = null;
            rateLimitedUntil = 0;
            hideError();
            updateComposer();
            return;
          }
          els.errorCountdown.textContent = "(" + left + " s)";
        };
        tick();
        errorTimer = window.setInterval(tick, 1000);
      }
    }

    function hideError() {
      if (rateLimitedUntil > now()) { return; }
      els.error.hidden = true;
      els.errorText.textContent = "";
      els.errorCountdown.textContent = "";
    }

    els.form.addEventListener("submit", function (event) {
      event.preventDefault();
      submitComposer();
      els.input.focus();
    });
    els.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submitComposer();
      }
    });
    els.input.addEventListener("input", function () {
      updateCount();
      if (els.input.value.trim() && opened && now() - lastTypingSent >= TYPING_EVERY_MS) {
        lastTypingSent = now();
        sendFrame({ type: "typing" });
      }
    });

    // =========================================================================
    // Presence and typing
    // =========================================================================
    function drawPresence() {
      if (!presenceMembers) { els.presence.hidden = true; return; }
      var names = presenceMembers.map(function (h) { return h === me ? h + " (you)" : h; });
      var shown = names.slice(0, 8);
      var text = "Here now: " + (shown.length ? shown.join(", ") : "nobody else");
      if (names.length > shown.length) { text += " and " + (names.length - shown.length) + " more"; }
      els.presence.textContent = text;
      els.presence.hidden = false;
    }

    function clearTyping(handle) {
      if (handle && typers[handle]) {
        delete typers[handle];
        drawTyping();
      }
    }

    function drawTyping() {
      var t = now();
      var names = [];
      for (var h in typers) {
        if (Object.prototype.hasOwnProperty.call(typers, h)) {
          if (typers[h] > t) { names.push(h); } else { delete typers[h]; }
        }
      }
      names.sort();
      var text = "";
      if (names.length === 1) {
        text = names[0] + " is typing…";
      } else if (names.length === 2) {
        text = names[0] + " and " + names[1] + " are typing…";
      } else if (names.length > 2) {
        text = "Several people are typing…";
      }
      els.typing.textContent = text;
      els.typing.hidden = !text;
    }

    // =========================================================================
    // Reading
    // =========================================================================
    function scheduleRead() {
      if (document.visibilityState !== "visible") { return; }
      window.clearTimeout(readTimer);
      readTimer = window.setTimeout(function () {
        readTimer = null;
        var seq = Math.max(lastSeen, maxApplied);
        if (seq > lastReadSent && document.visibilityState === "visible" && sendFrame({ type: "read", seq: seq })) {
          lastReadSent = seq;
        }
      }, READ_DEBOUNCE_MS);
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        scheduleRead();
        if (!opened && !stopped && reconnectTimer) { connectSoon(0); }
      }
    });

    // =========================================================================
    // Connection status
    // =========================================================================
    var statusTimer = null;
    function setStatus(state, text, actionLabel, action) {
      els.status.hidden = false;
      els.status.dataset.state = state;
      els.statusText.textContent = text;
      els.statusAction.hidden = !actionLabel;
      els.statusAction.textContent = actionLabel || "";
      els.statusAction.onclick = action || null;
    }

    function showReconnecting() {
      window.clearInterval(statusTimer);
      var tick = function () {
        var left = Math.max(0, Math.ceil((reconnectAt - now()) / 1000));
        if (left <= 0) {
          window.clearInterval(statusTimer);
          setStatus("connecting", "Reconnecting…");
          return;
        }
        setStatus("waiting", "Reconnecting in " + left + " s…", "Try now", function () {
          (els.input.disabled ? els.log : els.input).focus();
          connectSoon(0);
        });
      };
      tick();
      statusTimer = window.setInterval(tick, 1000);
    }

    function stop(message) {
      stopped = true;
      window.clearTimeout(reconnectTimer);
      reconnectTimer = null;
      window.clearInterval(statusTimer);
      setStatus("stopped", message, "Reload page", function () { window.location.reload(); });
      announce(message);
      updateComposer();
      redrawAllActions();
    }

    // =========================================================================
    // The socket
    // =========================================================================
    function socketUrl() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      return scheme + window.location.host + wsPath + "?after=" + encodeURIComponent(String(lastSeen));
    }

    // Extensions send their own frames on this socket (false: not connected now).
    root.kinshipSend = function (obj) { return sendFrame(obj); };

    // A live session (static/js/session.js) decides from its phase who writes: a reason
    // turns the composer off and says why, "" turns it on (the server still has the last word).
    root.kinshipSetWritable = function (reason) {
      sessionRefusal = reason || "";
      updateComposer();
      redrawAllActions();
    };

    function sendFrame(obj) {
      if (!ws || !opened || ws.readyState !== 1) { return false; }
      try {
        ws.send(JSON.stringify(obj));
        return true;
      } catch (e) {
        return false;
      }
    }

    function requestResume() {
      if (!opened) { return; } // the reconnect asks with ?after=
      if (resumeInFlight && now() - resumeSentAt < RESUME_TIMEOUT_MS) { return; }
      if (sendFrame({ type: "resume", after: lastSeen })) {
        resumeInFlight = true;
        resumeSentAt = now();
      }
    }

    function connect() {
      if (stopped) { return; }
      reconnectTimer = null;
      window.clearInterval(statusTimer);
      setStatus("connecting", attempt === 0 ? "Connecting…" : "Reconnecting…");
      opened = false;
      resumeInFlight = true; // the server answers every connection with a history frame
      resumeSentAt = now();
      var socket;
      try {
        socket = new WebSocket(socketUrl());
      } catch (e) {
        onClose(null, { code: 1006 });
        return;
      }
      ws = socket;
      socket.onopen = function () {
        if (ws !== socket) { return; }
        if (stopped) { dropSocket(); return; }
        opened = true;
        openedAt = now();
        lastFrameAt = now();
        failedHandshakes = 0;
        connSerial += 1;
        awaitingHistory = true; // the queue waits for it: it may show some were stored
        window.clearInterval(statusTimer);
        setStatus("open", "Connected");
        if (attempt > 0) { announce("Chat reconnected."); }
        updateComposer();
        redrawAllActions();
        flushOutbox();
      };
      socket.onmessage = function (event) {
        if (ws !== socket) { return; }
        lastFrameAt = now();
        var frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (frame && typeof frame === "object") { onFrame(frame); }
      };
      socket.onclose = function (event) { onClose(socket, event); };
      socket.onerror = function () { /* onclose follows */ };
    }

    function dropSocket() {
      if (!ws) { return; }
      var socket = ws;
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try { socket.close(4000, "client reconnecting"); } catch (e) { /* already closed */ }
      onClose(socket, { code: 4000 });
    }

    function onClose(socket, event) {
      if (socket && ws !== socket) { return; }
      var wasOpen = opened;
      ws = null;
      opened = false;
      awaitingHistory = false;
      window.clearTimeout(queueTimer);
      queueTimer = null;
      for (var k = 0; k < outbox.length; k++) {
        if (outbox[k].state === "pending") { drawLocal(outbox[k]); } // "waiting to send…"
      }
      resumeInFlight = false;
      presenceMembers = null;
      drawPresence();
      typers = {};
      drawTyping();
      // Edits, deletes and flags in flight get no answer on a closed socket.
      for (var fid in flagging) {
        if (Object.prototype.hasOwnProperty.call(flagging, fid)) {
          delete flagging[fid];
          var fli = findById(toInt(fid, 0));
          if (fli) { showFlagError(fli, "The connection dropped before this was sent. Please try again."); }
        }
      }
      for (var id in ops) {
        if (Object.prototype.hasOwnProperty.call(ops, id)) {
          failOp(toInt(id, 0), "The connection dropped before this was confirmed. Please try again.");
        }
      }
      var code = event ? event.code : 1006;
      if (wasOpen && (code === 4401 || code === 4403 || code === 4404)) {
        var why = code === 4401
          ? "You've been signed out, so chat has stopped. Sign in again to rejoin."
          : code === 4403
            ? "You can no longer take part in this room, so chat has stopped. Reload the page to see why."
            : "This room is no longer available. Reload the page to see why.";
        stop(why);
        return;
      }
      if (code === 1009) {
        if (lastSentClientId) { markFailed(lastSentClientId, "Too large to send. Please shorten it.", false); }
        showError("A message was too large to send, so the connection was reset. Please shorten it.");
      }
      if (wasOpen) {
        if (now() - openedAt >= STABLE_OPEN_MS) { attempt = 0; }
      } else {
        countFailedHandshake();
      }
      if (wasOpen) { announce("Chat connection lost. Reconnecting…"); }
      updateComposer();
      redrawAllActions();
      var base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, attempt));
      var delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
      attempt += 1;
      connectSoon(delay);
    }

    /**
     * A browser sees a refused handshake and a server that is down (restarting) alike. Only
     * refusals count towards giving up, so a restart longer than a few attempts does not
     * stop chat for good: the health check (no socket, no session) tells them apart.
     */
    function countFailedHandshake() {
      var count = function () {
        if (stopped || opened) { return; }
        failedHandshakes += 1;
        if (failedHandshakes >= MAX_FAILED_HANDSHAKES) {
          stop("You can't join this room right now. Reload the page to see why.");
        }
      };
      if (!healthUrl || typeof window.fetch !== "function") { count(); return; }
      window.fetch(healthUrl, { cache: "no-store", credentials: "omit", redirect: "error" }).then(
        function (response) { if (response.ok) { count(); } }, // up and well: it was a refusal
        function () { /* unreachable: it is down, keep trying with backoff */ }
      );
    }

    function connectSoon(delay) {
      if (stopped) { return; }
      if (ws && delay === 0) { return; }
      window.clearTimeout(reconnectTimer);
      reconnectAt = now() + delay;
      if (delay <= 0) {
        connect();
        return;
      }
      reconnectTimer = window.setTimeout(connect, delay);
      showReconnecting();
    }

    window.addEventListener("online", function () {
      if (!ws && !stopped) { connectSoon(0); }
    });

    // =========================================================================
    // Server frames
    // =========================================================================
    function onFrame(frame) {
      switch (frame.type) {
        case "history": onHistory(frame); break;
        case "message":
        case "message_updated":
        case "message_removed":
          if (frame.message) {
            if (frame.type === "message_updated") { confirmUnchangedEdit(frame.message); }
            var sink = frame.type === "message" ? [] : null;
            applyMessage(frame.message, true, sink);
            noteVersion(frame.message.version, true);
            if (sink && sink.length) { announceMessages(sink); }
            scheduleRead();
          }
          break;
        case "ack": onAck(frame); break;
        case "presence":
          presenceMembers = Array.isArray(frame.members) ? frame.members.slice() : [];
          drawPresence();
          emit(frame);
          break;
        case "typing":
          if (frame.handle && frame.handle !== me) {
            typers[frame.handle] = now() + TYPING_SHOWN_MS;
            drawTyping();
          }
          break;
        case "heartbeat": {
          var latest = toInt(frame.latest_seq, 0);
          if (latest > lastSeen && latest > confirmedLatest) { requestResume(); }
          break;
        }
        case "room": onRoom(frame); break;
        case "error": onError(frame); break;
        case "flagged": onFlagged(frame); break;
        case "support": onSupport(frame); break;
        case "session":
          // A live session's state takes a room sequence number like a message does.
          if (frame.session) { noteVersion(frame.session.version, true); }
          emit(frame);
          break;
        default: emit(frame); break; // others are for extensions (session.js) or ignored
      }
    }

    /**
     * An edit that changed nothing is answered to its sender alone with a message_updated
     * carrying the version already shown: that confirms the edit (nothing to redraw).
     */
    function confirmUnchangedEdit(m) {
      if (!m || typeof m.id !== "number" || !ops[m.id] || ops[m.id].kind !== "edit") { return; }
      var li = findById(m.id);
      if (!li || li.classList.contains("is-local")) { return; }
      if (toInt(li.dataset.version, 0) < toInt(m.version, 0)) { return; } // a real change: applyMessage
      if (me && m.author === me && !m.removed && typeof m.source === "string") { li.dataset.source = m.source; }
      finishOp(m.id, li);
    }

    function onHistory(frame) {
      var messages = Array.isArray(frame.messages) ? frame.messages : [];
      var fresh = [];
      var highest = 0;
      for (var i = 0; i < messages.length; i++) {
        applyMessage(messages[i], false, fresh);
        noteVersion(messages[i].version, false);
        highest = Math.max(highest, toInt(messages[i].version, 0));
      }
      // A history holds every change after `after` up to its last version.
      if (highest > lastSeen) { lastSeen = highest; }
      advanceLastSeen();
      resumeInFlight = false;
      if (awaitingHistory) {
        awaitingHistory = false;
        pumpQueue(); // what the history showed as stored has left the queue; send the rest
      }
      if (frame.has_more) {
        if (messages.length) { requestResume(); }
      } else if (!messages.length) {
        // "Nothing after lastSeen that you can see": versions up to here are not for us.
        lastSeen = Math.max(lastSeen, maxApplied);
        confirmedLatest = Math.max(confirmedLatest, toInt(frame.latest_seq, 0));
      } else if (maxApplied > lastSeen) {
        requestResume(); // live frames ran ahead of this history: fill what lies between
      }
      if (fresh.length) { announceMessages(fresh); }
      scheduleRead();
    }

    function announceMessages(list) {
      list = list.filter(function (m) { return !blocked[m.author]; }); // not read out either
      if (list.length > 3) {
        announce(list.length + " new messages.");
        return;
      }
      for (var i = 0; i < list.length; i++) {
        var text = plainText(list[i].html);
        if (text.length > 300) { text = text.slice(0, 300) + "…"; }
        announce((list[i].author || "a former member") + ": " + text, list[i].id);
      }
    }

    function onRoom(frame) {
      if (typeof frame.slow_mode === "number") { showSlowMode(frame.slow_mode); }
      if (typeof frame.name === "string" && frame.name) {
        var names = root.querySelectorAll(".chat-room-name");
        for (var i = 0; i < names.length; i++) { names[i].textContent = frame.name; }
      }
      if (frame.state && frame.state !== roomState) {
        roomState = frame.state;
        root.dataset.roomState = roomState;
        announce(roomState === "open" ? "This room is open again."
          : roomState === "read_only" ? "This room is now read-only."
            : "This room has been archived.");
        updateComposer();
        redrawAllActions();
        var editors = els.list.querySelectorAll(".chat-editor");
        if (!composerAllowed()) {
          for (var j = 0; j < editors.length; j++) {
            var li = editors[j].parentNode;
            if (!ops[toInt(li.dataset.id, 0)]) { closeEditor(li, false); }
          }
        }
      }
    }

    /** Slow mode set on this room by its leaders or moderators (docs/chat-protocol.md). */
    function showSlowMode(seconds) {
      var note = root.querySelector("#chat-slow-note");
      if (!note) { return; }
      var text = seconds > 0 ? "Slow mode: one message every " + seconds + " seconds." : "";
      if (note.textContent === text || (!text && note.hidden)) { return; }
      note.textContent = text;
      note.hidden = !text;
      if (text || note.dataset.announced) { announce(text || "Slow mode is off."); }
      note.dataset.announced = "1";
    }

    /** Hand a frame to extensions of the panel (static/js/session.js listens). */
    function emit(frame) {
      root.dispatchEvent(new CustomEvent("kinship:frame", { detail: frame }));
    }

    function onError(frame) {
      if (typeof frame.op === "string") { emit(frame); return; } // a session control's answer
      var text = typeof frame.message === "string" && frame.message ? frame.message : "That didn't work.";
      var limited = frame.code === "rate_limited";
      var wait = limited ? Math.max(1, toInt(frame.retry_after, 10)) : 0;
      var cid = typeof frame.client_id === "string" && frame.client_id ? frame.client_id : null;
      if (cid) {
        // It answers a send.
        if (limited) {
          if (holdQueue(cid, wait)) { return; } // a queued resend: wait and carry on
          markFailed(cid, "Not sent: too many messages at once.", false);
          showError("You're sending messages quickly. Please wait a moment, then retry.", wait);
          return;
        }
        var failed = outboxItem(cid);
        if (failed) { failed.quietHours = frame.code === "quiet_hours"; }
        markFailed(cid, "Not sent: " + text, false);
        showError(text);
        return;
      }
      if (typeof frame.id === "number" && flagging[frame.id]) {
        // It answers a flag of that message: say why in its form.
        delete flagging[frame.id];
        var flaggedLi = findById(frame.id);
        if (flaggedLi) { showFlagError(flaggedLi, text); } else { showError(text); }
        return;
      }
      if (typeof frame.id === "number") {
        // It answers an edit or a delete of that message.
        if (ops[frame.id]) {
          failOp(frame.id, text);
        } else {
          showError(text); // it was already given up on (timed out)
        }
        return;
      }
      showError(text, wait || undefined);
    }

    // =========================================================================
    // Timers: ack timeouts, edit/delete timeouts, silent sockets, typing expiry
    // =========================================================================
    window.setInterval(function () {
      var t = now();
      if (opened) {
        for (var i = 0; i < outbox.length; i++) {
          var item = outbox[i];
          if (item.state === "pending" && item.sentAt && t - item.sentAt > ACK_TIMEOUT_MS) {
            markFailed(item.cid, "Not confirmed yet.", true);
          }
        }
        for (var id in ops) {
          if (Object.prototype.hasOwnProperty.call(ops, id) && t - ops[id].at > OP_TIMEOUT_MS) {
            failOp(toInt(id, 0), "Not confirmed. Please try again.");
          }
        }
        if (awaitingHistory && t - openedAt > RESUME_TIMEOUT_MS) {
          awaitingHistory = false; // no history after all: send anyway (a repeat is harmless)
          pumpQueue();
        }
        if (t - lastFrameAt > SILENCE_LIMIT_MS) {
          dropSocket(); // no heartbeat for a long while: the connection is dead
        }
      }
      if (Object.keys(typers).length) { drawTyping(); }
    }, 1000);

    // =========================================================================
    // Start
    // =========================================================================
    var rendered = messageNodes();
    for (var r = 0; r < rendered.length; r++) {
      adoptRendered(rendered[r]);
      var s = toInt(rendered[r].dataset.seq, null);
      if (s !== null && (oldestSeq === null || s < oldestSeq)) { oldestSeq = s; }
    }
    els.form.hidden = false;
    els.status.hidden = false;
    updateComposer();
    loadOutbox();
    scrollToBottom();
    connect();
  }

  function start() {
    var root = document.getElementById("chat");
    if (root && window.WebSocket) { init(root); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
