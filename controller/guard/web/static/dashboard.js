/* The dashboard page: holds the live picture (offices, open alarms), applies stream
   changes as they come and re-reads everything on every (re)connect of the stream. */
"use strict";

(function () {
  const offices = new Map();
  const alarms = new Map();
  let frame = 0;

  function draw() {
    frame = 0;
    // what needs a guard first: unacknowledged real alarms, then drills, then the rest;
    // newest first within each group
    const rank = (a) => (a.state === "active" ? 0 : 2) + (a.test ? 1 : 0);
    const openAlarms = [...alarms.values()]
      // fault alarms (issue 14) get their own, quieter rendering in the console rework (C);
      // until then this page keeps to panics and drills
      .filter((a) => a.state !== "resolved" && a.state !== "closed" && a.kind !== "fault")
      .sort((a, b) => rank(a) - rank(b) || String(b.raised_at).localeCompare(String(a.raised_at)));
    Alarms.render(openAlarms);
    Offices.render([...offices.values()].sort((a, b) => a.id.localeCompare(b.id)));
  }
  // setTimeout, not requestAnimationFrame: a background tab gets no animation frames, and an
  // alarm must still turn the screen red and start the tone there
  function schedule() { if (!frame) frame = setTimeout(draw, 30); }

  function listOf(data, key) {
    if (Array.isArray(data)) return data;
    return (data && (data[key] || data.items)) || [];
  }

  let version = 0; // bumped by every stream change: a fetch that raced one is repeated

  async function reload() {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const before = version;
      try {
        const [officeData, alarmData] = await Promise.all([
          OS.getJSON("/api/offices"), OS.getJSON("/api/alarms?open=true")]);
        if (version !== before) continue;
        offices.clear();
        for (const o of listOf(officeData, "offices")) offices.set(o.id, o);
        alarms.clear();
        for (const a of listOf(alarmData, "alarms")) alarms.set(a.alarm_id, a);
        document.body.dataset.loaded = "true";
        schedule();
        return;
      } catch (err) {
        Offices.flash("Could not load the current picture: " + err.message, true);
        return;
      }
    }
  }
  const reloadSoon = OS.throttle(reload, 500);

  function onMessage(kind, data) {
    version += 1;
    if (kind === "office" && data && data.id) {
      offices.set(data.id, data);
      schedule();
    } else if (kind === "alarm" && data && data.alarm_id) {
      if (data.state === "resolved" || data.state === "closed") alarms.delete(data.alarm_id); else alarms.set(data.alarm_id, data);
      clearTimeout(frame);
      draw(); // alarms are drawn at once
    } else if (kind === "snapshot" && data && Array.isArray(data.offices)) {
      // the stream starts with the whole picture: replace, do not merge (a reconnect may have missed changes)
      offices.clear();
      for (const o of data.offices) offices.set(o.id, o);
      alarms.clear();
      for (const a of data.alarms || []) alarms.set(a.alarm_id, a);
      document.body.dataset.loaded = "true";
      schedule();
    } else if (kind === "escalation" || kind === "gap") {
      reloadSoon();
    }
  }

  // A screen that cannot receive alarms must say so loudly, not just grey out a badge.
  const banner = document.getElementById("health-banner");
  let brokerUp = true;
  let streamUp = false;
  let streamDownSince = Date.now();
  function showHealth() {
    let text = "";
    if (!streamUp && Date.now() - streamDownSince > 4000) {
      text = "This screen has lost its connection to the guard station and is NOT live. Reconnecting\u2026";
    } else if (!brokerUp) {
      text = "The guard station has lost its connection to the MQTT broker: new alarms cannot arrive. Check the broker.";
    }
    banner.textContent = text;
    banner.classList.toggle("hidden", !text);
    document.body.dataset.health = text ? "degraded" : "ok";
  }
  function onHealth(data) {
    if (data && data.broker) brokerUp = !!data.broker.connected;
    showHealth();
  }
  async function checkHealth() {
    try { onHealth(await OS.getJSON("/healthz")); } catch (_e) { /* the stream state says enough */ }
  }
  setInterval(showHealth, 1000);
  setInterval(() => { if (streamUp) checkHealth(); }, 30000);

  OS.stream(function (kind, data) {
    if (kind === "health") onHealth(data); else onMessage(kind, data);
  }, function () { streamUp = true; checkHealth(); });
  document.addEventListener("officesec:stream-down", () => {
    if (streamUp) streamDownSince = Date.now();
    streamUp = false;
    showHealth();
  });
})();
