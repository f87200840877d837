/* The dashboard page: holds the live picture (offices, open alarms), applies stream
   changes as they come and re-reads everything on every (re)connect of the stream. */
"use strict";

(function () {
  const RANK = { panic: 0, fault: 1, drill: 2 };
  const isOpen = (a) => a.state !== "resolved" && a.state !== "closed";
  const offices = new Map();
  const alarms = new Map();
  let frame = 0;

  function draw() {
    frame = 0;
    // contract section 7: panic, then fault, then drill; oldest first within each (the
    // oldest alarm is the one most likely forgotten). Acknowledging never moves a row.
    const openAlarms = [...alarms.values()].filter(isOpen)
      .sort((a, b) => RANK[Incident.kindOf(a)] - RANK[Incident.kindOf(b)] ||
        String(a.raised_at).localeCompare(String(b.raised_at)) || String(a.alarm_id).localeCompare(String(b.alarm_id)));
    Queue.render(openAlarms);
    // each office with its open fault alarms as they are now (they arrive as alarms, not offices)
    const faultsOf = new Map();
    for (const a of openAlarms) {
      if (Incident.kindOf(a) === "fault") faultsOf.set(a.office, [...(faultsOf.get(a.office) || []), a]);
    }
    for (const o of offices.values()) o.fault_alarms = faultsOf.get(o.id) || [];
    const sorted = [...offices.values()].sort((a, b) => a.id.localeCompare(b.id));
    Offices.render(sorted);
    Plans.update(sorted);
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
        Offices.flash(_("Could not load the current picture: {error}", { error: err.message }), true);
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
      if (isOpen(data)) alarms.set(data.alarm_id, data); else alarms.delete(data.alarm_id);
      Dialogs.changed(data.alarm_id);
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

  OS.stream(onMessage, function () { /* the stream opens with a snapshot */ });
  // a console in use keeps its session in use (the station's idle limit slides), and finds
  // out when it ended anyway: then it says so loudly instead of showing a calm login page
  setInterval(() => { OS.getJSON("/api/me").catch(() => {}); }, 30000);
})();
