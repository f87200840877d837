/* Demo mode only: a hardware simulator panel in every office card. Presses go out on the
   office's sim topics (through the guard's /demo/sim endpoint); lamps show the office's
   retained sim/output, so what you see is what the office daemon really did. It runs in the
   console page, so its words come from the console's catalog (`_`, the station's language). */
"use strict";

(function () {
  if (!OS.demo) return;
  const { el } = OS;
  const MIN_HOLD_MS = 400; // a quick click is still a real press (debounce/hold filters see it)
  const lampsByOffice = new Map();

  const chains = new Map(); // one promise chain per office input: sends never overtake

  function post(office, input, value) {
    return OS.post("/demo/sim/" + encodeURIComponent(office) + "/" + input, { value }).then((r) => {
      if (!r.ok) Offices.flash(_("Simulator: {error}", { error: OS.errorText(r) }), true);
      return r;
    });
  }

  // consecutive changes of one input stay further apart than the office's 50 ms debounce,
  // so a quick second click is a second press, not contact chatter
  const GAP_MS = 150;
  const pause = () => new Promise((resolve) => setTimeout(resolve, GAP_MS));

  function send(office, input, value) {
    const key = office + "/" + input;
    const next = (chains.get(key) || Promise.resolve())
      .then(() => post(office, input, value)).then((r) => pause().then(() => r));
    chains.set(key, next);
    return next;
  }

  /** A momentary button: press on pointer/key down, release on up (held at least MIN_HOLD_MS).
      Sends of one button are chained so the office always sees press, release, press, ... */
  function momentary(office, input, label, cls) {
    const button = el("button", { class: "btn " + cls, type: "button", text: label, "data-sim": input });
    let downAt = 0;
    let pendingRelease = null;
    function queue(value) { send(office, input, value); }
    function releaseNow() {
      clearTimeout(pendingRelease);
      pendingRelease = null;
      button.classList.remove("down");
      queue("release");
    }
    function down(e) {
      if (downAt) return;
      e.preventDefault();
      if (pendingRelease) releaseNow(); // a quick second click: finish the first press first
      downAt = performance.now();
      button.classList.add("down");
      queue("press");
    }
    function up() {
      if (!downAt) return;
      const wait = Math.max(0, MIN_HOLD_MS - (performance.now() - downAt));
      downAt = 0;
      pendingRelease = setTimeout(releaseNow, wait);
    }
    button.addEventListener("pointerdown", down);
    button.addEventListener("pointerup", up);
    button.addEventListener("pointercancel", up);
    button.addEventListener("pointerleave", up);
    button.addEventListener("keydown", (e) => { if (e.key === " " || e.key === "Enter") down(e); });
    button.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") up(); });
    return button;
  }

  function doorToggle(office) {
    const button = el("button", { class: "btn door", type: "button", text: _("Open door"), "data-sim": "door" });
    button.dataset.door = "closed";
    button.addEventListener("click", () => {
      const open = button.dataset.door !== "open";
      button.dataset.door = open ? "open" : "closed";
      button.textContent = open ? _("Close door") : _("Open door");
      button.classList.toggle("down", open);
      send(office, "door", open ? "open" : "close");
    });
    return button;
  }

  function lamp(name, label) {
    return el("span", { class: "lamp " + name, "data-lamp": name, "data-on": "false", text: label });
  }

  Offices.setCardHook((card, office) => {
    const lamps = el("div", { class: "lamps" },
      lamp("relay", _("door relay")), lamp("ack_led", _("help-coming LED")), lamp("neighbor_led", _("neighbour LED")));
    lampsByOffice.set(office, lamps);
    card.append(el("div", { class: "sim", "data-sim-office": office },
      el("div", { class: "sim-title", text: _("Simulated hardware") }),
      el("div", { class: "sim-buttons" },
        momentary(office, "panic", _("Panic button"), "panic"),
        momentary(office, "release", _("Release button"), "release"),
        doorToggle(office),
        momentary(office, "rex", _("Exit button (REX)"), "rex")),
      lamps));
  });

  async function poll() {
    try {
      const outputs = await OS.getJSON("/demo/sim/outputs");
      for (const [office, lamps] of lampsByOffice) {
        const out = outputs[office] || {};
        for (const node of lamps.querySelectorAll(".lamp")) {
          const on = !!out[node.dataset.lamp];
          node.classList.toggle("on", on);
          node.dataset.on = String(on);
        }
      }
    } catch (_e) { /* next round */ }
    setTimeout(poll, 400);
  }
  poll();
})();
