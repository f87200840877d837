/* The alarm view: red screen, ticking time since raised, sound until acknowledged,
   browser notification, acknowledge/resolve with "sent" then "confirmed by the office". */
"use strict";

const Alarms = (function () {
  const { el } = OS;
  const list = document.getElementById("alarms");
  const body = document.body;
  const cards = new Map();      // alarm_id -> card element
  const local = new Map();      // alarm_id -> {cmd, status, text}: what this screen sent
  const notified = new Set();   // alarm ids already announced by a Notification
  let current = [];

  // ------------------------------------------------------------------ sound
  // Browsers block audio until one user gesture; the banner asks for it, any click unlocks.
  const Sound = {
    ctx: null, osc: null, gain: null, timer: null, step: 0, until: 0, wanted: false, drill: false,
    unlock() {
      try {
        if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
        const done = () => { this.updateBanner(); this.apply(); };
        if (this.ctx.state !== "running") this.ctx.resume().then(done, done); else done();
      } catch (_e) { /* no Web Audio: the red screen and the notification remain */ }
      if ("Notification" in window && Notification.permission === "default") {
        try { Notification.requestPermission(); } catch (_e) { /* old browsers */ }
      }
    },
    ready() { return !!this.ctx && this.ctx.state === "running"; },
    updateBanner() {
      const banner = document.getElementById("sound-banner");
      if (banner) banner.classList.toggle("hidden", this.ready());
      body.dataset.audio = this.ready() ? "enabled" : "blocked";
    },
    set(wanted, drill) {
      const changed = this.drill !== drill;
      this.wanted = wanted;
      this.drill = drill;
      if (changed && this.osc) this.stop(); // a real alarm during a drill: switch the tone now
      this.apply();
    },
    apply() {
      body.dataset.sound = this.wanted ? (this.ready() ? "playing" : "blocked") : "off";
      if (this.wanted && this.ready() && !this.osc) this.start();
      if (!this.wanted && this.osc) this.stop();
    },
    start() {
      const ctx = this.ctx;
      this.gain = ctx.createGain();
      this.gain.gain.value = 0;
      this.osc = ctx.createOscillator();
      this.osc.type = "square";
      this.osc.connect(this.gain).connect(ctx.destination);
      this.osc.start();
      this.until = ctx.currentTime;
      this.step = 0;
      this.schedule();
      // Background tabs throttle timers (down to once a minute), so the pattern is laid out
      // on the audio clock well ahead and topped up: the tone never pauses behind a timer.
      this.timer = setInterval(() => this.schedule(), 1000);
    },
    schedule() {
      if (!this.osc) return;
      const ctx = this.ctx;
      const AHEAD_S = 90;
      const STEP_S = 0.25;
      const hi = this.drill ? 520 : 960;
      const lo = this.drill ? 440 : 720;
      const level = this.drill ? 0.05 : 0.18;
      let t = Math.max(this.until, ctx.currentTime + 0.02);
      while (t < ctx.currentTime + AHEAD_S) {
        // two-tone, 0.25 s steps, every fourth step silent; a drill is softer and lower
        this.osc.frequency.setValueAtTime(this.step % 2 ? lo : hi, t);
        this.gain.gain.setValueAtTime(this.step % 4 === 3 ? 0 : level, t);
        this.step += 1;
        t += STEP_S;
      }
      this.until = t;
    },
    stop() {
      clearInterval(this.timer);
      this.timer = null;
      try {
        this.gain.gain.cancelScheduledValues(0);
        this.gain.gain.value = 0;
        this.osc.stop();
        this.osc.disconnect();
        this.gain.disconnect();
      } catch (_e) { /* gone */ }
      this.osc = null;
      this.gain = null;
    },
  };

  function notify(alarm) {
    if (notified.has(alarm.alarm_id)) return;
    notified.add(alarm.alarm_id);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const loc = alarm.location || {};
    try {
      const n = new Notification((alarm.test ? "DRILL: " : "ALARM: ") + (loc.label || alarm.office), {
        body: OS.where(loc), tag: alarm.alarm_id, requireInteraction: !alarm.test,
      });
      n.onclick = () => { window.focus(); n.close(); };
    } catch (_e) { /* notifications unavailable (e.g. insecure context) */ }
  }

  // -------------------------------------------------------------- commands
  async function command(alarm, cmd, button) {
    const verb = cmd === "ack" ? "Acknowledgement" : "Resolution";
    local.set(alarm.alarm_id, { cmd, status: "pending", text: verb + " sent \u2014 waiting for the office\u2026" });
    button.disabled = true;
    render(current);
    // until the resolve dialog (issue 13) exists, this button records the plain outcome
    const result = await OS.post("/api/alarms/" + encodeURIComponent(alarm.alarm_id) + "/" + cmd,
      cmd === "resolve" ? { outcome: alarm.test ? "drill" : "handled" } : undefined);
    if (result.ok) {
      local.set(alarm.alarm_id, { cmd, status: "confirmed", text: verb + " confirmed by the office" });
    } else {
      local.set(alarm.alarm_id, { cmd, status: "failed", text: verb + " not confirmed: " + OS.errorText(result) });
    }
    render(current);
  }

  /** The command progress the station recorded (seen by every screen, not just the sender). */
  function serverCommand(alarm) {
    const status = String(alarm.command_status || "");
    if (!status || !alarm.command) return null;
    const verb = alarm.command === "ack" ? "Acknowledgement" : alarm.command === "resolve" ? "Resolution" : alarm.command;
    const by = alarm.command_by ? " by " + alarm.command_by : "";
    if (status.startsWith("confirmed")) return { status: "confirmed", text: verb + by + " confirmed by the office" };
    if (status === "sent") return { status: "pending", text: verb + " sent" + by + " \u2014 waiting for the office\u2026" };
    return { status: "failed", text: verb + by + ": " + status };
  }

  // ---------------------------------------------------------------- render
  function build(alarm) {
    const card = el("article", { class: "alarm-card", "data-alarm-id": alarm.alarm_id, role: "alert" },
      el("div", { class: "alarm-head" },
        el("span", { class: "badge kind" }),
        el("span", { class: "badge escalated hidden", text: "ESCALATED" }),
        el("h2", { class: "alarm-label" })),
      el("p", { class: "alarm-where" }),
      el("p", { class: "alarm-since" }, "raised ", el("span", { class: "ticker" }), " ago at ",
        el("span", { class: "raised-at" }), el("span", { class: "presses" })),
      el("p", { class: "alarm-status" }),
      el("p", { class: "alarm-cmd", "aria-live": "polite" }),
      el("div", { class: "alarm-actions" },
        el("button", { class: "btn ack-btn", type: "button", text: "Acknowledge" }),
        el("button", { class: "btn resolve-btn", type: "button", text: "Resolve" })));
    card.querySelector(".ack-btn").addEventListener("click", (e) => command(card._alarm, "ack", e.currentTarget));
    card.querySelector(".resolve-btn").addEventListener("click", (e) => command(card._alarm, "resolve", e.currentTarget));
    return card;
  }

  function fill(card, alarm) {
    card._alarm = alarm;
    const loc = alarm.location || {};
    const acked = alarm.state === "acknowledged";
    card.classList.toggle("drill", !!alarm.test);
    card.classList.toggle("acknowledged", acked);
    card.classList.toggle("escalated", !!alarm.escalated_at);
    card.dataset.state = alarm.state;
    const kind = card.querySelector(".badge.kind");
    kind.textContent = alarm.test ? "DRILL" : acked ? "ACKNOWLEDGED" : "ALARM";
    kind.className = "badge kind " + (alarm.test ? "drill" : acked ? "ack" : "alarm");
    card.querySelector(".badge.escalated").classList.toggle("hidden", !alarm.escalated_at);
    card.querySelector(".alarm-label").textContent = loc.label || alarm.office;
    card.querySelector(".alarm-where").textContent = OS.where(loc) || alarm.office;
    card.querySelector(".ticker").dataset.since = alarm.raised_at;
    card.querySelector(".ticker").textContent = OS.since(alarm.raised_at);
    card.querySelector(".raised-at").textContent = OS.clock(alarm.raised_at);
    card.querySelector(".presses").textContent = alarm.presses > 1 ? " \u00b7 pressed " + alarm.presses + " times" : "";
    card.querySelector(".alarm-status").textContent = acked
      ? "Acknowledged by " + (alarm.acknowledged_by || "a guard") + (alarm.acknowledged_at ? " at " + OS.clock(alarm.acknowledged_at) : "") + " \u2014 the office sees \u201chelp is coming\u201d"
      : alarm.guard_ack_by
        ? "Taken by " + alarm.guard_ack_by + " at the station \u2014 the office has NOT confirmed yet (office " + alarm.office + ")"
        : "Not acknowledged yet \u2014 office " + alarm.office;
    const mine = local.get(alarm.alarm_id);
    const cmd = mine && !(mine.cmd === "ack" && acked && mine.status === "failed") ? mine : serverCommand(alarm);
    const line = card.querySelector(".alarm-cmd");
    line.textContent = cmd ? cmd.text : "";
    line.className = "alarm-cmd" + (cmd ? " " + cmd.status : "");
    const pending = !!(mine && mine.status === "pending");
    const ack = card.querySelector(".ack-btn");
    const resolve = card.querySelector(".resolve-btn");
    ack.classList.toggle("hidden", acked);
    ack.disabled = pending;
    resolve.classList.toggle("hidden", !acked);
    resolve.disabled = pending;
  }

  /** Show exactly these open alarms (newest first); returns nothing, updates sound and screen. */
  function render(alarms) {
    current = alarms.filter((a) => a.state !== "resolved" && a.state !== "closed");
    const seen = new Set();
    current.forEach((alarm, index) => {
      seen.add(alarm.alarm_id);
      let card = cards.get(alarm.alarm_id);
      if (!card) { card = build(alarm); cards.set(alarm.alarm_id, card); }
      fill(card, alarm);
      if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
      if (alarm.state === "active") notify(alarm);
    });
    for (const [id, card] of cards) {
      if (!seen.has(id)) { card.remove(); cards.delete(id); local.delete(id); }
    }
    const active = current.filter((a) => a.state === "active");
    // the tone calls for a guard: once one has taken the alarm at the station it stops, even
    // while the office has not confirmed yet (the card stays red and says so)
    const unowned = active.filter((a) => !a.guard_ack_by);
    const real = unowned.some((a) => !a.test);
    body.classList.toggle("alarm-active", current.some((a) => !a.test && a.state === "active"));
    body.classList.toggle("drill-active", current.some((a) => a.test));
    body.dataset.openAlarms = String(current.length);
    Sound.set(unowned.length > 0, !real);
    document.title = (active.length ? "(" + active.length + ") ALARM \u2014 " : "") + "officesec guard station";
  }

  setInterval(() => {
    for (const ticker of list.querySelectorAll(".ticker")) ticker.textContent = OS.since(ticker.dataset.since);
  }, 1000);

  const banner = document.getElementById("sound-banner");
  if (banner) banner.querySelector("button").addEventListener("click", () => Sound.unlock());
  // "click", not "pointerdown": hiding the banner between press and release would shift the
  // page under the pointer and the guard's click would miss its button
  document.addEventListener("click", () => { if (!Sound.ready()) Sound.unlock(); }, true);
  document.addEventListener("keydown", () => { if (!Sound.ready()) Sound.unlock(); }, true);
  Sound.updateBanner();
  Sound.apply();

  return { render, Sound };
})();
