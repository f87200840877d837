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

  async function reload() {
    try {
      const [officeData, alarmData] = await Promise.all([
        OS.getJSON("/api/offices"), OS.getJSON("/api/alarms?open=true")]);
      offices.clear();
      for (const o of listOf(officeData, "offices")) offices.set(o.id, o);
      alarms.clear();
      for (const a of listOf(alarmData, "alarms")) alarms.set(a.alarm_id, a);
      document.body.dataset.loaded = "true";
      schedule();
    } catch (err) {
      Offices.flash("Could not load the current picture: " + err.message, true);
    }
  }
  const reloadSoon = OS.throttle(reload, 500);

  function onMessage(kind, data) {
    if (kind === "office" && data && data.id) {
      offices.set(data.id, data);
      schedule();
    } else if (kind === "alarm" && data && data.alarm_id) {
      if (data.state === "resolved") alarms.delete(data.alarm_id); else alarms.set(data.alarm_id, data);
      schedule();
    } else if (kind === "offices" || kind === "snapshot" || kind === "escalation" || kind === "gap") {
      reloadSoon();
    }
  }

  OS.stream(onMessage, reload);
})();
