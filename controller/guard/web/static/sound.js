/* The alarm tone. One tone per priority: panic (loud two-tone, repeats until a guard takes
   the alarm), fault (quieter single beep every few seconds), drill (soft, low).
   Browsers block audio until a user gesture unless the kiosk is started with
   --autoplay-policy=no-user-gesture-required; a blocked tone is shown by a banner that
   cannot be missed, never silently. */
"use strict";

const Sound = (function () {
  const body = document.body;
  const STEP_S = 0.25;
  const AHEAD_S = 90;
  // per tone: [high Hz, low Hz, level, pattern of 0.25 s steps (1 = sound, 2 = low tone)]
  const TONES = {
    panic: { hi: 960, lo: 720, level: 0.18, pattern: [1, 2, 1, 0] },
    fault: { hi: 620, lo: 620, level: 0.07, pattern: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
    drill: { hi: 520, lo: 440, level: 0.05, pattern: [1, 2, 1, 0] },
  };

  const S = {
    ctx: null, osc: null, gain: null, timer: null, step: 0, until: 0, tone: null, testing: false,

    /** Create the audio context at load: its state tells whether autoplay is allowed. */
    init() {
      try {
        this.ctx = new (window.AudioContext || window.webkitAudioContext)();
        this.ctx.onstatechange = () => { this.updateBanner(); this.apply(); };
      } catch (_e) { this.ctx = null; }
      this.updateBanner();
      this.apply();
    },
    /** Called from a user gesture: the one moment browsers let audio start. */
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
      const ready = this.ready();
      // showing is urgent; hiding shifts the queue up, so it waits until the pointer is off it
      if (banner && !ready) banner.classList.remove("hidden");
      if (banner && ready) OS.layout.defer("sound-banner", () => banner.classList.toggle("hidden", this.ready()));
      body.dataset.audio = this.ready() ? "enabled" : "blocked";
    },
    /** Which tone the open alarms call for: "panic", "fault", "drill" or null. */
    set(tone) {
      if (tone !== this.tone && this.osc && !this.testing) this.stop();
      this.tone = tone;
      this.apply();
    },
    apply() {
      if (this.testing) return;
      body.dataset.sound = this.tone ? (this.ready() ? "playing" : "blocked") : "off";
      body.dataset.tone = this.tone || "none";
      if (this.tone && this.ready() && !this.osc) this.start(this.tone);
      if (!this.tone && this.osc) this.stop();
    },
    start(tone) {
      const ctx = this.ctx;
      this.gain = ctx.createGain();
      this.gain.gain.value = 0;
      this.osc = ctx.createOscillator();
      this.osc.type = tone === "fault" ? "sine" : "square";
      this.osc.connect(this.gain).connect(ctx.destination);
      this.osc.start();
      this.until = ctx.currentTime;
      this.step = 0;
      this.playing = tone;
      this.schedule();
      // Background tabs throttle timers (down to once a minute), so the pattern is laid out
      // on the audio clock well ahead and topped up: the tone never pauses behind a timer.
      this.timer = setInterval(() => this.schedule(), 1000);
    },
    schedule() {
      if (!this.osc) return;
      const ctx = this.ctx;
      const t0 = TONES[this.playing] || TONES.panic;
      let t = Math.max(this.until, ctx.currentTime + 0.02);
      while (t < ctx.currentTime + AHEAD_S) {
        const p = t0.pattern[this.step % t0.pattern.length];
        this.osc.frequency.setValueAtTime(p === 2 ? t0.lo : t0.hi, t);
        this.gain.gain.setValueAtTime(p ? t0.level : 0, t);
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
      this.playing = null;
    },
    /** Two seconds of the panic tone, so a guard can check the speakers at shift start. */
    test() {
      this.unlock();
      const run = () => {
        if (!this.ready()) return;
        if (this.osc) this.stop();
        this.testing = true;
        body.dataset.sound = "test";
        this.start("panic");
        setTimeout(() => { this.stop(); this.testing = false; this.apply(); }, 2000);
      };
      if (this.ready()) run(); else setTimeout(run, 150);
    },
  };

  const banner = document.getElementById("sound-banner");
  if (banner) banner.querySelector(".enable-sound").addEventListener("click", () => S.unlock());
  for (const button of document.querySelectorAll(".test-sound")) {
    button.addEventListener("click", () => S.test());
  }
  // "click", not "pointerdown": hiding the banner between press and release would shift the
  // page under the pointer and the guard's click would miss its button
  document.addEventListener("click", () => { if (!S.ready()) S.unlock(); }, true);
  document.addEventListener("keydown", () => { if (!S.ready()) S.unlock(); }, true);
  S.init();
  return S;
})();
