/* The incident page: one alarm with its timeline, printable as the report an employer keeps
   after a violent incident (print CSS in app.css). */
"use strict";

(function () {
  const page = document.getElementById("page");
  const box = document.getElementById("incident");
  const id = page.dataset.alarmId || "";
  document.getElementById("printed-at").textContent = _("as of {at}", { at: OS.dateTime(new Date().toISOString()) });
  document.querySelector(".print-btn").addEventListener("click", () => window.print());
  async function load() {
    try {
      const data = await OS.getJSON("/api/alarms/" + encodeURIComponent(id));
      const alarm = data.alarm || data;
      document.getElementById("incident-title").textContent =
        _("Incident report: {label}", { label: (alarm.location || {}).label || alarm.office });
      Incident.render(box, alarm);
      document.body.dataset.loaded = "true";
    } catch (err) {
      box.replaceChildren(OS.el("p", { class: "error", text: _("Could not load the incident: {error}", { error: err.message }) }));
    }
  }
  load();
})();
