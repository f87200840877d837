/* The console's two dialogs. Resolve is deliberate: it only happens here, after choosing an
   outcome (the submit button stays disabled until one is chosen). Details shows the incident
   with its timeline, kept current while open. */
"use strict";

const Dialogs = (function () {
  const { el } = OS;
  const resolveBox = document.getElementById("resolve-dialog");
  const detailsBox = document.getElementById("details-dialog");
  let resolving = null;
  let onResolved = null;
  let detailsId = null;

  // ----------------------------------------------------------------- resolve
  const form = resolveBox.querySelector("form");
  const submit = resolveBox.querySelector(".resolve-submit");
  const errorLine = resolveBox.querySelector(".dialog-error");
  const options = resolveBox.querySelector(".outcomes");
  for (const [value, label] of Object.entries(Incident.OUTCOMES)) {
    const id = "outcome-" + value;
    options.append(el("div", { class: "outcome" },
      el("input", { type: "radio", name: "outcome", value, id, required: true }),
      el("label", { for: id, text: label() })));
  }
  form.addEventListener("change", () => { submit.disabled = !form.elements.outcome.value; });
  resolveBox.querySelector(".dialog-cancel").addEventListener("click", () => resolveBox.close());
  resolveBox.addEventListener("close", () => { resolving = null; });

  function resolve(alarm, done) {
    resolving = alarm;
    onResolved = done;
    form.reset();
    submit.disabled = true;
    submit.textContent = _("Resolve alarm");
    errorLine.textContent = "";
    resolveBox.querySelector(".dialog-title").textContent =
      _("Resolve the alarm of {label}", { label: (alarm.location || {}).label || alarm.office });
    resolveBox.querySelector(".dialog-where").textContent = OS.where(alarm.location) + " \u00b7 " +
      _("since {at}", { at: OS.clock(alarm.raised_at) });
    if (Incident.kindOf(alarm) === "drill") form.elements.outcome.value = "drill";
    submit.disabled = !form.elements.outcome.value;
    resolveBox.showModal();
    const first = form.querySelector("input[name=outcome]:checked") || form.querySelector("input[name=outcome]");
    if (first) first.focus();
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const alarm = resolving;
    const outcome = form.elements.outcome.value;
    if (!alarm || !outcome) { errorLine.textContent = _("Choose an outcome first."); return; }
    submit.disabled = true;
    submit.textContent = _("Resolving\u2026 waiting for the office");
    const result = await OS.post("/api/alarms/" + encodeURIComponent(alarm.alarm_id) + "/resolve",
      { outcome, note: form.elements.note.value.trim() });
    if (result.ok) {
      resolveBox.close();
      if (onResolved) onResolved();
      return;
    }
    submit.disabled = false;
    submit.textContent = _("Resolve alarm");
    errorLine.textContent = _("Not resolved: {error}", { error: OS.errorText(result) });
  });

  // ----------------------------------------------------------------- details
  const detailsBody = detailsBox.querySelector(".details-body");
  detailsBox.querySelector(".dialog-cancel").addEventListener("click", () => detailsBox.close());
  detailsBox.addEventListener("close", () => { detailsId = null; });

  async function load() {
    if (!detailsId) return;
    const id = detailsId;
    try {
      const data = await OS.getJSON("/api/alarms/" + encodeURIComponent(id));
      if (id !== detailsId) return;
      const alarm = data.alarm || data;
      detailsBox.querySelector(".dialog-title").textContent = (alarm.location || {}).label || alarm.office;
      Incident.render(detailsBody, alarm);
    } catch (err) {
      detailsBody.replaceChildren(el("p", { class: "error", text: _("Could not load the incident: {error}", { error: err.message }) }));
    }
  }
  const reload = OS.throttle(load, 700);

  function details(alarm) {
    detailsId = alarm.alarm_id;
    detailsBox.querySelector(".dialog-title").textContent = (alarm.location || {}).label || alarm.office;
    detailsBox.querySelector(".incident-link").setAttribute("href", "/alarms/" + encodeURIComponent(alarm.alarm_id));
    Incident.render(detailsBody, alarm); // what we know now; the timeline follows
    detailsBox.showModal();
    load();
  }

  /** A stream change of this alarm: keep an open details dialog current. */
  function changed(alarmId) { if (detailsId && alarmId === detailsId) reload(); }

  return { resolve, details, changed };
})();
