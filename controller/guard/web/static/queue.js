/* The alarm queue: one compact row per open alarm, most urgent first (panic, fault, drill;
   oldest first within each), built so that the pointer never lies:
   - while the pointer is over the queue (or below its top edge) nothing moves: new alarms
     wait behind a "N new" notice, closed ones stay greyed in place;
   - after a click the rows keep size and place for HOLD_MS;
   - a double or triple click acts once, on the alarm first clicked (CLICK_GUARD_MS);
   - Acknowledge and Resolve never share a place; Resolve opens a dialog (dialogs.js). */
"use strict";

const Queue = (function () {
  const { el } = OS;
  const list = document.getElementById("alarms");
  const head = document.getElementById("queue-head");
  const announcer = document.getElementById("announce");
  const rows = new Map();      // alarm_id -> row element
  const local = new Map();     // alarm_id -> {cmd, status, text}: what this screen sent
  const announced = new Set(); // alarm ids told to screen readers / notifications once
  const HOLD_MS = 1500;
  const CLICK_GUARD_MS = 1000;
  let wanted = [];             // the open alarms as they should be shown
  let firstRender = true;

  // ------------------------------------------------------------------ freeze
  const pointer = { inside: false, x: -1, y: -1, holdUntil: 0 };
  const track = (e) => { pointer.inside = true; pointer.x = e.clientX; pointer.y = e.clientY; };
  document.addEventListener("pointermove", track, { passive: true });
  document.addEventListener("pointerdown", (e) => {
    track(e);
    if (list.contains(e.target)) pointer.holdUntil = Date.now() + HOLD_MS;
  }, true);
  document.addEventListener("pointerout", (e) => { if (!e.relatedTarget) pointer.inside = false; });
  window.addEventListener("blur", () => { pointer.inside = false; });
  const empty = document.querySelector("#queue .q-empty");

  /** The queue holds still while the pointer is over it (its rows, or the free first row). */
  function frozen() {
    if (Date.now() < pointer.holdUntil) return true;
    if (!pointer.inside) return false;
    const r = (list.children.length ? list : empty).getBoundingClientRect();
    return pointer.x >= r.left && pointer.x <= r.right && pointer.y >= r.top - 3 && pointer.y <= r.bottom + 3;
  }
  OS.layout.frozen = frozen;
  let wasFrozen = false;
  setInterval(() => {
    const now = frozen();
    if (wasFrozen && !now) { OS.layout.flush(); render(wanted); }
    wasFrozen = now;
  }, 150);

  // ------------------------------------------------------------ click guard
  let lastAction = 0;
  /** One action per deliberate click: the second click of a double click does nothing. */
  function allowed(event) {
    if (event && event.detail > 1) return false;
    const now = Date.now();
    if (now - lastAction < CLICK_GUARD_MS) return false;
    lastAction = now;
    return true;
  }

  // --------------------------------------------------------------- texts
  const KIND_LABEL = { panic: () => _("ALARM"), fault: () => _("FAULT"), drill: () => _("DRILL") };
  const { kindOf, faultText } = Incident;
  function title(a) { return (a.location || {}).label || a.office; }

  function announce(a) {
    if (announced.has(a.alarm_id)) return;
    announced.add(a.alarm_id);
    if (firstRender) return;
    const kind = kindOf(a);
    const what = kind === "fault" ? _("New fault: {label}, {fault}", { label: title(a), fault: faultText(a) })
      : kind === "drill" ? _("New drill alarm: {label}", { label: title(a) })
        : _("New alarm: {label}, {where}", { label: title(a), where: OS.where(a.location) });
    // one announcement per new alarm: tickers and countdowns are outside any live region
    announcer.textContent = what;
    if (kind !== "fault" && "Notification" in window && Notification.permission === "granted") {
      try {
        const n = new Notification((kind === "drill" ? _("DRILL") : _("ALARM")) + ": " + title(a),
          { body: OS.where(a.location), tag: a.alarm_id, requireInteraction: kind === "panic" });
        n.onclick = () => { window.focus(); n.close(); };
      } catch (_e) { /* notifications unavailable (e.g. insecure context) */ }
    }
  }

  // -------------------------------------------------------------- commands
  async function acknowledge(alarm) {
    if (!alarm || alarm.state !== "active" || (local.get(alarm.alarm_id) || {}).status === "pending") return;
    const id = alarm.alarm_id;
    local.set(id, { cmd: "ack", status: "pending", text: _("Acknowledgement sent \u2014 waiting for the office\u2026") });
    refresh(id);
    const started = performance.now();
    const result = await OS.post("/api/alarms/" + encodeURIComponent(id) + "/ack");
    window.__lastAckMs = performance.now() - started;
    const d = result.data || {};
    if (result.ok && d.already_acknowledged_by) {
      const at = d.already_acknowledged_at ? OS.hhmm(d.already_acknowledged_at) : "";
      local.set(id, { cmd: "ack", status: "confirmed", text: at
        ? _("already acknowledged by {by} at {at}", { by: d.already_acknowledged_by, at })
        : _("already acknowledged by {by}", { by: d.already_acknowledged_by }) });
    } else if (result.ok) {
      local.set(id, { cmd: "ack", status: "confirmed", text: kindOf(alarm) === "fault"
        ? _("Acknowledged") : _("Acknowledgement confirmed by the office") });
    } else {
      local.set(id, { cmd: "ack", status: "failed", text: _("Acknowledgement not confirmed: {error}", { error: OS.errorText(result) }) });
    }
    refresh(id);
  }

  async function respond(alarm) {
    const id = alarm.alarm_id;
    local.set(id, { cmd: "respond", status: "pending", text: _("Sending \u201cI am going too\u201d\u2026") });
    refresh(id);
    const result = await OS.post("/api/alarms/" + encodeURIComponent(id) + "/respond");
    local.set(id, result.ok ? { cmd: "respond", status: "confirmed", text: _("You are on the way (shown on every screen)") }
      : { cmd: "respond", status: "failed", text: _("\u201cI am going too\u201d failed: {error}", { error: OS.errorText(result) }) });
    refresh(id);
  }

  // the station stores a command's progress in English ("rejected by the office: CODE")
  const STATUS_WORDS = {
    "confirmed by the office": () => _("confirmed by the office"),
    "rejected by the office": () => _("rejected by the office"),
    "no confirmation from the office": () => _("no confirmation from the office"),
    "the office did not confirm in time": () => _("the office did not confirm in time"),
    "the MQTT queue is full": () => _("the MQTT queue is full"),
    "not sent": () => _("not sent"), "not sent (no key)": () => _("not sent (no key)"),
    "no confirmation seen (the station restarted)": () => _("no confirmation seen (the station restarted)"),
  };
  function statusText(s) { return s.split(": ").map((p) => (STATUS_WORDS[p] ? STATUS_WORDS[p]() : p)).join(": "); }

  /** The command progress the station recorded (seen by every screen, not just the sender). */
  function serverCommand(a) {
    const status = String(a.command_status || "");
    if (!status || !a.command) return null;
    const by = a.command_by || "?";
    const verb = a.command === "resolve" ? _("Resolution") : _("Acknowledgement");
    if (status.startsWith("confirmed")) return { status: "confirmed", text: _("{verb} by {by} confirmed by the office", { verb, by }) };
    if (status === "sent") return { status: "pending", text: _("{verb} by {by} sent \u2014 waiting for the office\u2026", { verb, by }) };
    return { status: "failed", text: _("{verb} by {by}: {status}", { verb, by, status: statusText(status) }) };
  }

  // ---------------------------------------------------------------- rows
  function build(a) {
    const id = a.alarm_id;
    const label = el("div", { class: "q-label alarm-label", id: "ql-" + id });
    const row = el("article", { class: "alarm-card qrow", "data-alarm-id": id, tabindex: "0", "aria-labelledby": "ql-" + id },
      el("div", { class: "q-kind" }, el("span", { class: "badge kind" }), el("span", { class: "badge escalated hidden" })),
      el("div", { class: "q-what" }, label, el("div", { class: "q-where alarm-where" })),
      el("div", { class: "q-time" }, el("div", { class: "ticker" }), el("div", { class: "q-raised" })),
      el("div", { class: "q-status" }, el("div", { class: "alarm-status" }), el("div", { class: "alarm-cmd" })),
      el("div", { class: "q-ack" },
        el("button", { class: "btn ack-btn", type: "button", text: _("Acknowledge") }),
        el("span", { class: "acked-note hidden" })),
      el("div", { class: "q-going" }, el("button", { class: "btn going-btn", type: "button", text: _("I am going too") })),
      el("div", { class: "q-more" }, el("button", { class: "btn details-btn", type: "button", text: _("Details") })),
      el("div", { class: "q-resolve" }, el("button", { class: "btn resolve-btn", type: "button", text: _("Resolve\u2026") })));
    const on = (sel, fn) => row.querySelector(sel).addEventListener("click", (e) => {
      e.stopPropagation();
      if (e.currentTarget.disabled || !allowed(e)) return;
      fn(row._alarm);
    });
    on(".ack-btn", acknowledge);
    on(".going-btn", respond);
    on(".details-btn", (a) => Dialogs.details(a));
    on(".resolve-btn", (a) => Dialogs.resolve(a, () => refresh(a.alarm_id)));
    row.addEventListener("dblclick", (e) => e.preventDefault());
    // Enter on the focused row acknowledges it (focus order follows the queue)
    row.addEventListener("keydown", (e) => {
      if (e.target !== row || e.key !== "Enter" || e.repeat) return;
      e.preventDefault();
      if (allowed(null)) acknowledge(row._alarm);
    });
    return row;
  }

  function statusText(a, kind) {
    const acked = a.state === "acknowledged" || a.state === "closed";
    const by = _("acknowledged by {by} at {at}", { by: a.acknowledged_by || "?", at: OS.hhmm(a.acknowledged_at) });
    if (kind === "fault") {
      const title = faultText(a);
      if (a.cleared_at && !acked) return title + " \u2014 " + _("cleared at {at}, please acknowledge", { at: OS.hhmm(a.cleared_at) });
      return acked ? title + " \u00b7 " + by : title;
    }
    if (acked) return by;
    if (a.guard_ack_by) return _("taken by {by} at the station \u2014 the office has NOT confirmed yet", { by: a.guard_ack_by });
    return _("not acknowledged");
  }

  /** "Room 101 · Floor EG · Haus A · Site": the room first, it is where the guard goes. */
  function place(loc) {
    loc = loc || {};
    return [loc.room && _("Room {room}", { room: loc.room }), loc.floor && _("Floor {floor}", { floor: loc.floor }),
      loc.building, loc.site].filter(Boolean).join(" \u00b7 ");
  }

  function escalationText(a) {
    if (a.escalated_at) return "";
    if (a.state !== "active" || !a.escalates_at) return "";
    const left = (Date.parse(a.escalates_at) - Date.now()) / 1000;
    if (Number.isNaN(left)) return "";
    return left > 0 ? _("escalates in {t}", { t: OS.duration(left) }) : _("escalating\u2026");
  }

  function fill(row, a, closed) {
    row._alarm = a;
    const kind = kindOf(a);
    const acked = a.state === "acknowledged";
    const mineGoing = (a.responders || []).some((r) => r.by === OS.user);
    row.className = "alarm-card qrow kind-" + kind + " st-" + (closed ? "closed" : a.state) +
      (a.escalated_at ? " escalated" : "") + (kind === "drill" ? " drill" : "") + (acked ? " acknowledged" : "") +
      (a.cleared_at ? " cleared" : "");
    row.dataset.state = closed ? "closed" : a.state;
    row.dataset.kind = kind;
    const badge = row.querySelector(".badge.kind");
    badge.textContent = KIND_LABEL[kind] ? KIND_LABEL[kind]() : kind;
    badge.className = "badge kind " + kind;
    const esc = row.querySelector(".badge.escalated");
    esc.textContent = a.escalated_at ? _("ESCALATED") : "";
    esc.title = a.escalated_at ? _("escalated at {at}", { at: OS.clock(a.escalated_at) }) : "";
    esc.classList.toggle("hidden", !a.escalated_at);
    row.querySelector(".q-label").textContent = title(a) + (a.presses > 1 ? " \u00b7 " + _("{n}\u00d7 pressed", { n: a.presses }) : "");
    // one span per part: a narrow row wraps between the parts, never inside one ("Haus A")
    const parts = place(a.location).split(" \u00b7 ").filter(Boolean);
    row.querySelector(".q-where").replaceChildren(...(parts.length ? parts : [a.office]).flatMap((p, i) =>
      [i ? document.createTextNode(" \u00b7 ") : null, el("span", { class: "nb", text: p })].filter(Boolean)));
    const ticker = row.querySelector(".ticker");
    ticker.dataset.since = a.raised_at;
    ticker.textContent = OS.since(a.raised_at);
    row.querySelector(".q-raised").textContent = _("since {at}", { at: OS.clock(a.raised_at) });
    const status = row.querySelector(".alarm-status");
    status.textContent = closed ? _("closed") : statusText(a, kind);
    const countdown = escalationText(a);
    const mine = local.get(a.alarm_id);
    const cmd = mine && !(mine.cmd === "ack" && acked && mine.status === "failed") ? mine : serverCommand(a);
    const going = (a.responders || []).map((r) => r.by + " " + OS.hhmm(r.at)).join(", ");
    const line = row.querySelector(".alarm-cmd");
    // what needs attention first: a failed or pending command; then who is on the way
    // (the same on every screen); then this screen's own confirmation
    // (the same on every screen); while unacknowledged the escalation countdown
    const showCmd = cmd && (cmd.status !== "confirmed" || !going);
    const failed = cmd && cmd.status === "failed";
    if (countdown && !failed && !(cmd && cmd.status === "pending")) {
      line.textContent = countdown;
      line.className = "alarm-cmd escalation";
    } else {
      line.textContent = showCmd ? cmd.text : going ? _("going: {who}", { who: going }) : "";
      line.className = "alarm-cmd" + (showCmd ? " " + cmd.status : going ? " going" : "");
    }
    line.title = going ? _("going: {who}", { who: going }) : "";
    // the Acknowledge slot: a button while unacknowledged, a plain note afterwards (a second
    // click there can never do something else)
    const pending = !!(mine && mine.status === "pending");
    const ackBtn = row.querySelector(".ack-btn");
    const note = row.querySelector(".acked-note");
    const showAck = a.state === "active" && !closed;
    ackBtn.classList.toggle("hidden", !showAck);
    ackBtn.disabled = pending && mine.cmd === "ack";
    ackBtn.textContent = ackBtn.disabled ? _("sending\u2026") : _("Acknowledge");
    note.classList.toggle("hidden", showAck);
    note.textContent = closed ? "" : "\u2714 " + _("acknowledged");
    const goingBtn = row.querySelector(".going-btn");
    goingBtn.classList.toggle("invisible", closed || kind === "fault");
    goingBtn.disabled = mineGoing || (pending && mine.cmd === "respond");
    goingBtn.textContent = mineGoing ? _("you are going") : _("I am going too");
    const resolve = row.querySelector(".resolve-btn");
    // faults close by themselves once acknowledged and cleared; panic/drill need a resolve
    resolve.classList.toggle("invisible", closed || kind === "fault" || a.state !== "acknowledged");
    row.querySelector(".details-btn").setAttribute("aria-label", _("Details of {label}", { label: title(a) }));
    ackBtn.setAttribute("aria-label", _("Acknowledge {label}", { label: title(a) }));
  }

  function refresh(id) {
    const row = rows.get(id);
    if (row && row._alarm) fill(row, row._alarm, row.dataset.state === "closed");
  }

  /** Show these open alarms (already sorted); while frozen only update rows in place. */
  function render(alarms) {
    wanted = alarms;
    const byId = new Map(alarms.map((a) => [a.alarm_id, a]));
    for (const a of alarms) if (a.state === "active") announce(a);
    const hold = frozen() && !firstRender;
    let fresh = 0;
    if (hold) {
      for (const [id, row] of rows) {
        const a = byId.get(id);
        fill(row, a || row._alarm, !a);
      }
      // an empty queue keeps one row's place free (.q-empty): the first alarm takes it at once
      let slot = rows.size === 0;
      for (const a of alarms) {
        if (rows.has(a.alarm_id)) continue;
        if (slot) { const row = build(a); rows.set(a.alarm_id, row); fill(row, a, false); list.append(row); slot = false; } else fresh += 1;
      }
    } else {
      const focused = document.activeElement;
      for (const [id, row] of rows) if (!byId.has(id)) { row.remove(); rows.delete(id); local.delete(id); }
      alarms.forEach((a, index) => {
        let row = rows.get(a.alarm_id);
        if (!row) { row = build(a); rows.set(a.alarm_id, row); }
        fill(row, a, false);
        if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
      });
      if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus();
    }
    firstRender = false;
    instructions(alarms);
    counters(alarms, fresh);
    tone(alarms);
  }

  function counters(alarms, fresh) {
    const open = alarms.length;
    const unacked = alarms.filter((a) => a.state === "active").length;
    let oldest = null;
    for (const a of alarms) if (!oldest || String(a.raised_at) < oldest) oldest = String(a.raised_at);
    head.querySelector(".c-open").textContent = OS.ngettext("{n} open", "{n} open", open);
    head.querySelector(".c-unacked").textContent = OS.ngettext("{n} unacknowledged", "{n} unacknowledged", unacked);
    const age = head.querySelector(".c-oldest");
    age.dataset.since = oldest || "";
    age.textContent = oldest ? _("oldest {t}", { t: OS.since(oldest) }) : "";
    head.classList.toggle("has-unacked", unacked > 0);
    const more = head.querySelector(".c-new");
    more.classList.toggle("invisible", !fresh);
    more.textContent = fresh ? OS.ngettext("{n} new alarm \u2014 show", "{n} new alarms \u2014 show", fresh) : "";
    document.body.dataset.openAlarms = String(open);
    document.body.dataset.pendingNew = String(fresh);
    document.title = (unacked ? "(" + unacked + ") " + _("ALARM") + " \u2014 " : "") + _("officesec guard station");
  }

  /** The site instructions for every open alarm's place, once each, under the queue. */
  const panel = document.getElementById("instructions-panel");
  function instructions(alarms) {
    if (!panel) return;
    const seen = new Map();
    for (const a of alarms) {
      for (const i of Instructions.matching(a)) {
        const key = i.text;
        if (!seen.has(key)) seen.set(key, { text: i.text, where: new Set() });
        seen.get(key).where.add(title(a));
      }
    }
    const items = [...seen.values()].map((i) => el("li", { class: "instruction" },
      el("span", { class: "instruction-where", text: [...i.where].join(", ") + ": " }), i.text));
    panel.classList.toggle("hidden", !items.length);
    panel.querySelector("ul").replaceChildren(...items);
  }

  function tone(alarms) {
    // the tone calls for a guard: once one took the alarm at the station it stops
    const unowned = alarms.filter((a) => a.state === "active" && !a.guard_ack_by);
    const kinds = new Set(unowned.map((a) => (kindOf(a) === "fault" && a.cleared_at ? "cleared" : kindOf(a))));
    Sound.set(kinds.has("panic") ? "panic" : kinds.has("fault") ? "fault" : kinds.has("drill") ? "drill" : null);
    const body = document.body;
    body.classList.toggle("alarm-active", alarms.some((a) => kindOf(a) === "panic" && a.state === "active"));
    body.classList.toggle("fault-active", alarms.some((a) => kindOf(a) === "fault" && a.state === "active"));
    body.classList.toggle("drill-active", alarms.some((a) => kindOf(a) === "drill"));
  }

  head.querySelector(".c-new").addEventListener("click", () => {
    pointer.holdUntil = 0; pointer.inside = false; OS.layout.flush(); render(wanted);
  });

  setInterval(() => {
    for (const t of list.querySelectorAll(".ticker")) t.textContent = OS.since(t.dataset.since);
    for (const row of rows.values()) if (row._alarm && row._alarm.escalates_at) fill(row, row._alarm, row.dataset.state === "closed");
    const age = head.querySelector(".c-oldest");
    if (age.dataset.since) age.textContent = _("oldest {t}", { t: OS.since(age.dataset.since) });
  }, 1000);

  return { render, kindOf, faultText, frozen };
})();
