/* The dashboard page: holds the live picture (offices, open alarms), applies stream
   changes as they come and re-reads everything on every (re)connect of the stream. */
"use strict";

(function () {
  const offices = new Map();
  const alarms = new Map();
  let frame = 0;

  function draw() {
    frame = 0;
    const openAlarms = [...alarms.values()]
      .filter((a) => a.state !== "resolved")
      .sort((a, b) => String(b.raised_at).localeCompare(String(a.raised_at)));
    Alarms.render(openAlarms);
    Offices.render([...offices.values()].sort((a, b) => a.id.localeCompare(b.id)));
  }
  function schedule() { if (!frame) frame = requestAnimationFrame(draw); }

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
      if (data.state === "resolved") alarms.delete(data.alarm_id); else alarms.set(data.alarm_id, data);
      schedule();
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

  OS.stream(onMessage, function () { /* the snapshot message resyncs */ });
})();
