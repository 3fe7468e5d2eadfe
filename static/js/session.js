/*
 * Kinship live sessions: the console around a session's chat
 * (templates/partials/session_console.html).
 *
 * The state (forum/live.py session_payload) comes first from the page's json_script, then
 * as a whole `session` frame after every change, which static/js/chat.js hands on as a
 * "kinship:frame" event on #chat; controls go out on the same socket through
 * root.kinshipSend. Plain JavaScript under `script-src 'self'; style-src 'self'`: no inline
 * styles, and everything drawn is text, except the server-sanitised `html` of the pinned
 * message and of the welcome.
 */
(function () {
  "use strict";

  var WARN_AT_SECONDS = 30;
  var PENDING_MS = 10000; // a control unanswered this long may be pressed again
  var NOT_CONNECTED = "Not connected \u2014 trying again. Press it again once the chat is back.";
  var STOPPED = "The chat has stopped, so this was not sent. Reload the page to see why.";
  var PHASES = {
    scheduled: "Not open yet",
    open: "Open",
    closed: "Closed for now",
    ended: "Ended",
    cancelled: "Cancelled"
  };
  // Controls the facilitator panel sends: their errors are shown in the panel.
  var PANEL_OPS = {
    open_room: true, close_room: true, lock: true, pin: true, reading: true, share_timer: true,
    end_session: true, hand_over: true, remove_participant: true, mute_participant: true
  };

  function init(consoleEl, chat) {
    var $ = function (id) { return document.getElementById(id); };
    var me = consoleEl.dataset.me || "";
    var leader = consoleEl.dataset.leader || "";
    var isFacilitator = consoleEl.dataset.facilitator === "true";
    var els = {
      phase: $("session-phase"),
      locked: $("session-locked"),
      present: $("session-present"),
      facilitator: $("session-facilitator"),
      floor: $("session-floor"),
      floorText: $("session-floor-text"),
      timer: $("session-timer"),
      timerValue: $("session-timer-value"),
      warning: $("session-timer-warning"),
      ended: $("session-ended"),
      endedText: $("session-ended-text"),
      fellowship: $("session-fellowship"),
      fellowshipLink: $("session-fellowship-link"),
      welcome: $("session-welcome"),
      welcomeBody: $("session-welcome-body"),
      welcomeClose: $("session-welcome-close"),
      pinned: $("session-pinned"),
      pinnedAuthor: $("session-pinned-author"),
      pinnedBody: $("session-pinned-body"),
      unpin: $("session-unpin"),
      composerNote: $("session-composer-note"),
      floorRule: $("session-floor-rule"),
      turn: $("session-turn"),
      turnText: $("session-turn-text"),
      pass: $("session-pass"),
      queue: $("session-queue-list"),
      queueEmpty: $("session-queue-empty"),
      queueActions: $("session-queue-actions"),
      hand: $("session-hand"),
      next: $("session-next"),
      takeBack: $("session-take-back"),
      error: $("session-error"),
      panel: $("session-panel"),
      panelError: $("session-panel-error"),
      room: $("session-room"),
      lock: $("session-lock"),
      readings: $("session-readings"),
      opening: $("session-opening"),
      closing: $("session-closing"),
      timerForm: $("session-timer-form"),
      timerSelect: $("session-timer-select"),
      handoverForm: $("session-handover-form"),
      handoverSelect: $("session-handover-select"),
      handoverNone: $("session-handover-none"),
      muteForm: $("session-mute-form"),
      removeForm: $("session-remove-form"),
      removeSubmit: $("session-remove-submit"),
      removeConfirm: $("session-remove-confirm"),
      removeConfirmText: $("session-remove-confirm-text"),
      removeYes: $("session-remove-yes"),
      removeNo: $("session-remove-no"),
      end: $("session-end"),
      endConfirm: $("session-end-confirm"),
      endYes: $("session-end-yes"),
      endNo: $("session-end-no"),
      chatError: $("chat-error"),
      announcer: $("session-announcer")
    };

    var state = null;
    var phase = "scheduled"; // the state's phase, or "open" once opens_at passed here
    var clockOffset = 0; // server clock minus this one, in ms
    var renderedCanWrite = consoleEl.dataset.canWrite === "true";
    var lastingRefusal = null; // why this member may not write whatever the phase (set once)
    var people = []; // handles present, from chat presence frames
    var pending = {}; // op -> when it was sent, answered by done or error
    var sentFrom = {}; // op -> the error box its answer belongs in
    var targets = {}; // op -> the handle it was sent about
    var warned = {}; // "<floor since>:30" / ":0" -> true once the sharer was warned
    var ticker = null;
    var writableReason = null; // what the composer was last told (null: nothing yet)

    // ---- small helpers -----------------------------------------------------------
    function el(tag, className, text) {
      var node = document.createElement(tag);
      if (className) { node.className = className; }
      if (text !== undefined && text !== null) { node.textContent = text; }
      return node;
    }

    function show(node, visible) { if (node) { node.hidden = !visible; } }

    function serverNow() { return Date.now() + clockOffset; }

    function time(iso) {
      var d = new Date(iso);
      return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }

    function clock(seconds) {
      var s = Math.max(0, seconds);
      var m = Math.floor(s / 60);
      var r = s % 60;
      return m + ":" + (r < 10 ? "0" : "") + r;
    }

    function announce(text) {
      els.announcer.appendChild(el("p", null, text));
      while (els.announcer.childNodes.length > 5) { els.announcer.removeChild(els.announcer.firstChild); }
    }

    function running() { return phase !== "ended" && phase !== "cancelled"; }

    // ---- sending controls --------------------------------------------------------
    function errorBox(op) {
      return sentFrom[op] === "panel" && els.panelError ? els.panelError : els.error;
    }

    function showError(box, text) {
      box.textContent = text;
      box.hidden = false;
    }

    function clearErrors() {
      [els.error, els.panelError].forEach(function (box) {
        if (box) { box.hidden = true; box.textContent = ""; }
      });
    }

    /**
     * Send a control from the queue or the panel (whose error box shows the answer); a
     * repeat while the first is unanswered is dropped; with no socket, say so.
     */
    function send(frame, from) {
      var op = frame.type;
      if (pending[op] && Date.now() - pending[op] < PENDING_MS) { return; }
      sentFrom[op] = from || (PANEL_OPS[op] && isFacilitator ? "panel" : "queue");
      clearErrors();
      if (typeof chat.kinshipSend !== "function" || !chat.kinshipSend(frame)) {
        var status = chat.querySelector("#chat-status");
        showError(errorBox(op), status && status.dataset.state === "stopped" ? STOPPED : NOT_CONNECTED);
        return;
      }
      pending[op] = Date.now();
      if (frame.handle) { targets[op] = frame.handle; }
    }

    function onDone(frame) {
      delete pending[frame.op];
      if (frame.op === "remove_participant" && els.removeForm) {
        els.removeForm.reset();
        announce(targets[frame.op] + " was removed from the session.");
      } else if (frame.op === "mute_participant" && els.muteForm) {
        els.muteForm.reset();
        announce(targets[frame.op] + " is muted.");
      } else if (frame.op === "hand_over") {
        announce("You handed facilitation to " + targets[frame.op] + ".");
      }
    }

    function onError(frame) {
      delete pending[frame.op];
      var text = typeof frame.message === "string" && frame.message ? frame.message : "That didn't work.";
      showError(errorBox(frame.op), text);
    }

    // ---- drawing the state ---------------------------------------------------------
    function localPhase(s) {
      if (s.phase === "scheduled" && serverNow() >= Date.parse(s.opens_at)) { return "open"; }
      return s.phase;
    }

    function drawStrip(s) {
      var label = PHASES[phase] || phase;
      if (phase === "scheduled") { label += ": the room opens at " + time(s.opens_at); }
      els.phase.textContent = label;
      els.phase.dataset.phase = phase;
      show(els.locked, s.locked && phase === "open");
      var present = typeof s.present === "number" ? s.present : 0;
      els.present.textContent = s.capacity ? present + " of " + s.capacity + " here" : present + " here";
      show(els.present, running());
      els.facilitator.textContent = s.facilitator ? "Facilitator: " + (s.facilitator === me ? "you" : s.facilitator) : "";
      show(els.facilitator, !!s.facilitator && running());
      // The ended notice, and the fellowship room if the session has one.
      show(els.ended, !running());
      els.endedText.textContent = phase === "cancelled" ? "This session was cancelled." : "This session is over.";
      var fellowship = typeof s.fellowship_url === "string" && s.fellowship_url.charAt(0) === "/";
      if (fellowship) { els.fellowshipLink.href = s.fellowship_url; }
      show(els.fellowship, fellowship && phase === "ended");
      if (s.transcript_purged) { dropTranscript(); }
    }

    /** The group chose to erase what was said: this screen lets it go too. */
    function dropTranscript() {
      var list = document.getElementById("chat-messages");
      if (!list || !list.children.length) { return; }
      while (list.firstChild) { list.removeChild(list.firstChild); }
      var empty = document.getElementById("chat-empty");
      if (empty) {
        empty.textContent = "What was said in this session has been deleted, as the group chose.";
        empty.hidden = false;
      }
    }

    function drawFloor(s) {
      var holder = s.floor && s.floor.handle;
      show(els.floor, !!holder && phase === "open");
      els.floorText.textContent = holder ? (holder === me ? "You have the floor" : holder + " has the floor") : "";
      show(els.turn, holder === me && phase === "open");
      if (els.takeBack) { show(els.takeBack, !!holder && phase === "open"); }
      tick();
      // Above the composer: who may post now, before anyone types.
      var rule = "";
      if (phase === "open") {
        if (isFacilitator) {
          if (s.locked) { rule = "The chat is locked: only the leaders speak."; }
          else if (holder && holder !== me) { rule = holder + " has the floor: members wait their turn; leaders can still post."; }
        } else if (s.locked) {
          rule = "A leader has locked the chat: only the leaders speak for now.";
        } else if (holder === me) {
          rule = "You have the floor: share when you're ready.";
        } else if (holder) {
          var place = (s.queue || []).indexOf(me);
          rule = holder + " has the floor: only they and the leaders post until they pass it back. " +
            (place < 0 ? "Raise your hand to share next." : place === 0 ? "Your hand is up: you're next."
              : "Your hand is up: you're number " + (place + 1) + " in the queue.");
        }
      }
      els.floorRule.textContent = rule;
      show(els.floorRule, !!rule);
    }

    function drawQueue(s) {
      var queue = Array.isArray(s.queue) ? s.queue : [];
      var focused = document.activeElement;
      var refocus = focused && els.queue.contains(focused) ? focused.dataset.focusKey : null;
      while (els.queue.firstChild) { els.queue.removeChild(els.queue.firstChild); }
      queue.forEach(function (handle) {
        var li = el("li", "session-queue-item" + (handle === me ? " is-me" : ""));
        li.dataset.handle = handle;
        li.appendChild(el("span", "session-queue-handle", handle));
        if (handle === me) { li.appendChild(el("span", "session-queue-you", " (you)")); }
        if (isFacilitator && phase === "open") {
          var actions = el("span", "session-queue-item-actions");
          actions.appendChild(control("Give floor", "to " + handle, "small", "give:" + handle, function () {
            send({ type: "give_floor", handle: handle }, "queue");
          }));
          actions.appendChild(control("Lower", handle + "'s hand", "secondary small", "lower:" + handle, function () {
            send({ type: "lower_hand", handle: handle }, "queue");
          }));
          li.appendChild(actions);
        }
        els.queue.appendChild(li);
      });
      show(els.queueEmpty, !queue.length);
      if (refocus) {
        var again = els.queue.querySelector('[data-focus-key="' + cssEscape(refocus) + '"]');
        if (again) { again.focus(); }
      }

      var mine = queue.indexOf(me) >= 0;
      var holder = s.floor && s.floor.handle;
      if (els.hand) {
        // One button that turns from "Raise hand" into "Lower hand", so focus stays put.
        els.hand.textContent = mine ? "Lower hand" : "Raise hand";
        els.hand.dataset.op = mine ? "lower_hand" : "raise_hand";
        els.hand.className = mine ? "secondary" : "";
        show(els.hand, phase === "open" && holder !== me);
      }
      if (els.next) {
        els.next.setAttribute("aria-disabled", queue.length ? "false" : "true");
      }
      show(els.queueActions, phase === "open");
    }

    function control(label, hidden, className, key, onClick) {
      var b = el("button", className);
      b.type = "button";
      b.appendChild(document.createTextNode(label));
      if (hidden) { b.appendChild(el("span", "visually-hidden", " " + hidden)); }
      b.dataset.focusKey = key;
      b.addEventListener("click", onClick);
      return b;
    }

    function cssEscape(value) {
      return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/["\\]/g, "\\$&");
    }

    function drawPinned(s) {
      var p = s.pinned;
      var shown = p && !p.removed ? p.id + ":" + p.version : "";
      if (shown !== els.pinned.dataset.shown) { // redrawn only when it changed
        els.pinned.dataset.shown = shown;
        els.pinnedAuthor.textContent = shown && p.author ? "from " + p.author : "";
        if (shown) {
          els.pinnedBody.innerHTML = p.html || ""; // server-sanitised (forum/sanitize.py)
        } else {
          els.pinnedBody.textContent = "";
        }
        els.pinned.hidden = !shown;
      }
      if (els.unpin) { show(els.unpin, running()); }
      var buttons = chat.querySelectorAll(".session-pin-button");
      for (var i = 0; i < buttons.length; i++) { labelPin(buttons[i]); }
    }

    function pinnedId() { return state && state.pinned ? state.pinned.id : null; }

    function labelPin(b) {
      var pinnedHere = String(pinnedId()) === b.dataset.id;
      b.firstChild.nodeValue = pinnedHere ? "Unpin" : "Pin";
    }

    /** chat.js asks for extra buttons on each message it draws (static/js/chat.js). */
    function messageActions(li, actions) {
      if (!isFacilitator || !running() || li.dataset.removed || !li.dataset.id) { return; }
      var b = el("button", "link-button session-pin-button");
      b.type = "button";
      b.dataset.id = li.dataset.id;
      b.appendChild(document.createTextNode("Pin"));
      b.appendChild(el("span", "visually-hidden", " " + (li.dataset.author || "a former member") + "'s message"));
      labelPin(b);
      b.addEventListener("click", function () {
        var id = parseInt(b.dataset.id, 10);
        send({ type: "pin", id: String(pinnedId()) === b.dataset.id ? null : id }, "panel");
      });
      actions.appendChild(b);
    }

    function drawPanel(s) {
      if (!els.panel) { return; }
      els.panel.hidden = false;
      var live = running();
      var controls = els.panel.querySelectorAll(".session-controls, .session-form, .session-end, .session-pin-help");
      for (var i = 0; i < controls.length; i++) { controls[i].hidden = !live; }
      if (!live) { return; }
      var isOpen = phase === "open";
      els.room.textContent = isOpen ? "Close room" : "Open room";
      els.room.dataset.op = isOpen ? "close_room" : "open_room";
      els.room.className = isOpen ? "secondary" : "";
      els.lock.textContent = s.locked ? "Unlock chat" : "Lock chat";
      els.lock.hidden = !isOpen;
      show(els.opening, isOpen && s.has_opening);
      show(els.closing, isOpen && s.has_closing);
      els.readings.hidden = !(isOpen && (s.has_opening || s.has_closing));
      // The timer select follows the state only when the state changed it.
      var seconds = String(s.share_seconds || 0);
      if (els.timerSelect.dataset.shown !== seconds) {
        if (!els.timerSelect.querySelector('option[value="' + seconds + '"]')) {
          var custom = el("option", null, Math.round(s.share_seconds / 60) + " minutes");
          custom.value = seconds;
          els.timerSelect.appendChild(custom);
        }
        els.timerSelect.value = seconds;
        els.timerSelect.dataset.shown = seconds;
      }
      // Hand over to the session's leader or a co-leader, not to whoever facilitates now.
      var choices = [];
      [leader].concat(Array.isArray(s.co_leaders) ? s.co_leaders : []).forEach(function (h) {
        if (h && h !== s.facilitator && choices.indexOf(h) < 0) { choices.push(h); }
      });
      fillSelect(els.handoverSelect, choices);
      els.handoverSelect.parentNode.hidden = !choices.length;
      show(els.handoverNone, !choices.length);
      drawPeople();
    }

    /** Options for handles; with a prompt first, nobody is chosen until the leader chooses. */
    function fillSelect(select, handles, prompt) {
      var current = select.value;
      var values = (prompt ? [""] : []).concat(handles);
      var same = select.options.length === values.length;
      for (var i = 0; same && i < values.length; i++) { same = select.options[i].value === values[i]; }
      if (same) { return; }
      while (select.firstChild) { select.removeChild(select.firstChild); }
      if (prompt) {
        var first = el("option", null, prompt);
        first.value = "";
        select.appendChild(first);
      }
      handles.forEach(function (h) {
        var option = el("option", null, h);
        option.value = h;
        select.appendChild(option);
      });
      if (handles.indexOf(current) >= 0) { select.value = current; }
    }

    function drawPeople() {
      if (!els.panel) { return; }
      var others = people.filter(function (h) { return h !== me; }).sort();
      var selects = els.panel.querySelectorAll("select.session-people");
      for (var i = 0; i < selects.length; i++) {
        fillSelect(selects[i], others, others.length ? "Choose who\u2026" : "Nobody else is here");
        selects[i].disabled = !others.length;
      }
    }

    /**
     * The composer follows the phase; within an open room the server has the last word.
     * Only a change is passed on: chat.js then redraws every message's buttons, which
     * must not happen (taking focus away) each time someone raises a hand.
     */
    function drawComposer() {
      if (typeof chat.kinshipSetWritable !== "function") { return; }
      var reason = "";
      if (phase === "ended") { reason = "This session is over: its room is read-only."; }
      else if (phase === "cancelled") { reason = "This session was cancelled."; }
      else if (phase === "scheduled") { reason = "The session's room is not open yet."; }
      else if (phase === "closed") { reason = "A leader has closed the room for now."; }
      else { reason = lastingRefusal || ""; }
      if (reason !== writableReason) {
        writableReason = reason;
        chat.kinshipSetWritable(reason);
      }
    }

    function render() {
      var s = state;
      var active = document.activeElement;
      // Once it is over, the queue and the controls have nothing left to do: the chat
      // (read-only) takes the width.
      consoleEl.classList.toggle("is-over", !running());
      if (!running()) { els.welcome.hidden = true; }
      drawStrip(s);
      drawFloor(s);
      drawQueue(s);
      drawPinned(s);
      drawPanel(s);
      drawComposer();
      if (!running()) { stopTicker(); }
      keepFocus(active);
    }

    /** A control that just disappeared had focus: put it somewhere sensible, not on <body>. */
    function keepFocus(active) {
      if (!active || active === document.body || !consoleEl.contains(active)) { return; }
      var current = document.activeElement;
      if (current && current !== document.body && current.offsetParent !== null) { return; }
      var inPanel = els.panel && els.panel.contains(active);
      var candidates = (inPanel ? [els.room, els.panel] : [els.hand, els.next, els.queue]).concat(els.ended);
      for (var i = 0; i < candidates.length; i++) {
        var c = candidates[i];
        if (c && c.offsetParent !== null) {
          if (c.tabIndex < 0 && !c.hasAttribute("tabindex")) { c.tabIndex = -1; }
          c.focus();
          return;
        }
      }
    }

    // ---- changes, and what they mean to this person -----------------------------
    function announceChanges(before, after, beforePhase) {
      var was = before.floor && before.floor.handle;
      var now = after.floor && after.floor.handle;
      if (beforePhase !== phase) {
        if (phase !== "open" && els.chatError) { els.chatError.hidden = true; } // a refusal of then
        if (phase === "open") { announce(beforePhase === "closed" ? "The room is open again." : "The room is open."); }
        else if (phase === "closed") { announce("A leader has closed the room for now."); }
        else if (phase === "ended") { announce("This session is over."); }
        else if (phase === "cancelled") { announce("This session was cancelled."); }
      }
      if (was !== now) {
        if (now === me) {
          announce("It's your turn: you have the floor. Share when you're ready, and press \u201cI'm done sharing\u201d when you finish.");
        } else if (now) {
          announce(now + " has the floor.");
        } else if (was && running()) {
          announce(was === me ? "You passed the floor." : "The floor is open.");
        }
      }
      if (!!before.locked !== !!after.locked && running()) {
        announce(after.locked ? "The chat is locked: only the leaders speak for now." : "The chat is unlocked.");
      }
      var pinnedBefore = before.pinned && before.pinned.id;
      var pinnedAfter = after.pinned && after.pinned.id;
      if (pinnedBefore !== pinnedAfter && running()) {
        announce(pinnedAfter ? "A message was pinned above the chat." : "The pinned message was taken down.");
      }
      var queueBefore = before.queue || [];
      var queueAfter = after.queue || [];
      var mine = queueAfter.indexOf(me);
      if (mine >= 0 && queueBefore.indexOf(me) < 0) {
        announce("Your hand is up: you are number " + (mine + 1) + " in the queue.");
      }
      if (isFacilitator) {
        queueAfter.forEach(function (h) {
          if (queueBefore.indexOf(h) < 0 && h !== me) { announce(h + " raised their hand."); }
        });
      }
      if (before.facilitator !== after.facilitator && after.facilitator) {
        announce(after.facilitator === me ? "You facilitate this session now." : after.facilitator + " facilitates this session now.");
      }
      if (before.share_seconds !== after.share_seconds && running()) {
        announce(after.share_seconds ? "Each share now lasts " + Math.round(after.share_seconds / 60) + " minutes." : "The share timer is off.");
      }
    }

    function applyState(next, fresh) {
      if (!next || typeof next !== "object") { return; }
      if (state && typeof next.version === "number" && next.version < state.version) { return; } // overtaken
      var parsed = Date.parse(next.server_time);
      if (!isNaN(parsed)) { clockOffset = parsed - Date.now(); }
      var before = state;
      var beforePhase = phase;
      state = next;
      phase = localPhase(next);
      if (lastingRefusal === null) {
        // The page leaves the floor and the lock out of its refusal, so a refusal while the
        // room is open outlasts them (a mute, say); the server refuses sends in any case.
        lastingRefusal = !renderedCanWrite && phase === "open"
          ? (chat.dataset.writeRefusal || "You can read this session, but you can't write in it.") : "";
      }
      render();
      if (before && !fresh) { announceChanges(before, next, beforePhase); }
      if (running()) { startTicker(); }
    }

    // ---- the clock: the share timer, and the room opening at its time ------------
    function tick() {
      if (!state) { return; }
      if (state.phase === "scheduled" && phase === "scheduled" && localPhase(state) === "open") {
        phase = "open";
        render();
        announce("The room is open.");
      }
      var floor = state.floor;
      var ends = floor && floor.ends_at ? Date.parse(floor.ends_at) : NaN;
      if (isNaN(ends) || phase !== "open") {
        els.timer.hidden = true;
        els.warning.hidden = true;
        return;
      }
      var left = Math.ceil((ends - serverNow()) / 1000);
      els.timerValue.textContent = clock(left) + " left";
      els.timer.hidden = false;
      els.timer.classList.toggle("is-warning", left <= WARN_AT_SECONDS && left > 0);
      els.timer.classList.toggle("is-over", left <= 0);
      var mine = floor.handle === me;
      var key = floor.since + ":";
      var warning = "";
      if (left <= 0) {
        warning = mine ? "Time's up \u2014 please wrap up." : "";
        if (mine && !warned[key + "0"]) { warned[key + "0"] = true; announce("Time's up \u2014 please wrap up."); }
      } else if (left <= WARN_AT_SECONDS) {
        warning = mine ? "Less than " + WARN_AT_SECONDS + " seconds left in your share." : "";
        if (mine && !warned[key + "30"]) {
          warned[key + "30"] = true;
          announce(WARN_AT_SECONDS + " seconds left in your share.");
        }
      }
      els.warning.textContent = warning;
      els.warning.classList.toggle("is-over", left <= 0);
      els.warning.hidden = !warning;
    }

    function startTicker() {
      if (ticker === null) { ticker = window.setInterval(tick, 500); }
    }

    function stopTicker() {
      window.clearInterval(ticker);
      ticker = null;
    }

    // ---- wiring --------------------------------------------------------------------
    /** Only facilitators' sockets get these: words in the room that suggest risk. */
    function showCrisisAlert(frame) {
      var box = document.getElementById("session-crisis");
      var list = document.getElementById("session-crisis-list");
      if (!box || !list) { return; }
      var who = typeof frame.author === "string" && frame.author ? frame.author : "A former member";
      var what = Array.isArray(frame.categories) ? frame.categories.join(", ") : "";
      var item = document.createElement("li");
      item.textContent = who + "'s message suggests they may be at risk" + (what ? " (" + what + ")." : ".");
      if (typeof frame.id === "number") {
        var link = document.createElement("a");
        link.href = "#msg-" + frame.id;
        link.textContent = " See the message";
        item.appendChild(link);
      }
      list.appendChild(item);
      box.hidden = false;
    }
    var crisisClose = document.getElementById("session-crisis-close");
    if (crisisClose) {
      crisisClose.addEventListener("click", function () {
        document.getElementById("session-crisis").hidden = true;
        var list = document.getElementById("session-crisis-list");
        while (list.firstChild) { list.removeChild(list.firstChild); }
      });
    }

    chat.addEventListener("kinship:frame", function (event) {
      var frame = event.detail || {};
      switch (frame.type) {
        case "session": applyState(frame.session, false); break;
        case "welcome":
          if (typeof frame.html === "string" && frame.html) {
            els.welcomeBody.innerHTML = frame.html; // server-sanitised (forum/sanitize.py)
            els.welcome.hidden = false;
            announce("A welcome for your first session here is shown above the chat.");
          }
          break;
        case "crisis_alert": showCrisisAlert(frame); break;
        case "presence":
          people = Array.isArray(frame.members) ? frame.members.slice() : [];
          drawPeople();
          break;
        case "done": onDone(frame); break;
        case "error": if (typeof frame.op === "string") { onError(frame); } break;
        default: break;
      }
    });

    els.welcomeClose.addEventListener("click", function () {
      els.welcome.hidden = true;
      var input = chat.querySelector("#chat-input");
      (input && !input.disabled ? input : chat.querySelector("#chat-log")).focus();
    });

    if (els.hand) {
      els.hand.addEventListener("click", function () { send({ type: els.hand.dataset.op }, "queue"); });
    }
    els.pass.addEventListener("click", function () { send({ type: "pass_floor" }, "queue"); });
    if (els.next) {
      els.next.addEventListener("click", function () {
        if (els.next.getAttribute("aria-disabled") === "true") {
          showError(els.error, "Nobody has a hand up.");
          return;
        }
        send({ type: "give_floor" }, "queue");
      });
    }
    if (els.takeBack) {
      els.takeBack.addEventListener("click", function () { send({ type: "pass_floor" }, "queue"); });
    }

    if (els.panel) {
      els.room.addEventListener("click", function () { send({ type: els.room.dataset.op }); });
      els.lock.addEventListener("click", function () { send({ type: "lock", locked: !state.locked }); });
      els.opening.addEventListener("click", function () { send({ type: "reading", which: "opening" }); });
      els.closing.addEventListener("click", function () { send({ type: "reading", which: "closing" }); });
      if (els.unpin) { els.unpin.addEventListener("click", function () { send({ type: "pin", id: null }); }); }
      els.timerForm.addEventListener("submit", function (event) {
        event.preventDefault();
        send({ type: "share_timer", seconds: parseInt(els.timerSelect.value, 10) || 0 });
      });
      els.handoverForm.addEventListener("submit", function (event) {
        event.preventDefault();
        if (els.handoverSelect.value) { send({ type: "hand_over", handle: els.handoverSelect.value }); }
      });
      els.muteForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var f = els.muteForm.elements;
        if (!f.handle.value) { showError(els.panelError, "Choose who to mute."); f.handle.focus(); return; }
        if (!f.reason.value.trim()) {
          showError(els.panelError, "Give a reason for the mute: the member sees it.");
          f.reason.focus();
          return;
        }
        send({ type: "mute_participant", handle: f.handle.value, minutes: parseInt(f.minutes.value, 10), reason: f.reason.value });
      });
      els.removeForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var f = els.removeForm.elements;
        if (!f.handle.value) { showError(els.panelError, "Choose who to remove."); f.handle.focus(); return; }
        if (!f.reason.value.trim()) {
          showError(els.panelError, "Give a reason for the removal: the member sees it.");
          f.reason.focus();
          return;
        }
        els.removeConfirmText.textContent = "Remove " + f.handle.value + " from this session? They cannot come back to it.";
        els.removeSubmit.hidden = true;
        els.removeConfirm.hidden = false;
        els.removeNo.focus();
      });
      var closeRemove = function () {
        els.removeConfirm.hidden = true;
        els.removeSubmit.hidden = false;
        els.removeSubmit.focus();
      };
      els.removeYes.addEventListener("click", function () {
        var f = els.removeForm.elements;
        send({ type: "remove_participant", handle: f.handle.value, reason: f.reason.value });
        closeRemove();
      });
      els.removeNo.addEventListener("click", closeRemove);
      els.end.addEventListener("click", function () {
        els.end.hidden = true;
        els.endConfirm.hidden = false;
        els.endNo.focus();
      });
      var closeEnd = function () {
        els.endConfirm.hidden = true;
        els.end.hidden = false;
        els.end.focus();
      };
      els.endYes.addEventListener("click", function () {
        send({ type: "end_session" });
        els.endConfirm.hidden = true;
        els.end.hidden = false;
        els.end.focus();
      });
      els.endNo.addEventListener("click", closeEnd);
    }

    chat.kinshipMessageActions = messageActions;

    // The note on what happens to the transcript (and who may post now) sits right above the
    // composer, and the composer names it, so everyone meets it before they speak.
    var composer = chat.querySelector("#chat-composer");
    var input = chat.querySelector("#chat-input");
    if (composer && els.composerNote) {
      composer.parentNode.insertBefore(els.composerNote, composer);
      if (input) {
        var described = (input.getAttribute("aria-describedby") || "").split(" ");
        if (described.indexOf("session-composer-note") < 0) { described.push("session-composer-note"); }
        input.setAttribute("aria-describedby", described.join(" ").trim());
      }
    }

    var initial = null;
    try {
      initial = JSON.parse(($("session-state") || {}).textContent || "null");
    } catch (e) { initial = null; }
    applyState(initial, true);

    // chat.js may start after this script: once both have, the composer and the messages'
    // buttons follow the session.
    var sync = function () { if (state) { render(); } };
    if (document.readyState === "complete") {
      window.setTimeout(sync, 0);
    } else {
      document.addEventListener("DOMContentLoaded", sync);
      window.addEventListener("load", sync);
    }
  }

  function start() {
    var consoleEl = document.getElementById("session-console");
    var chat = document.getElementById("chat");
    if (consoleEl && chat) { init(consoleEl, chat); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
