/* The event log page: rendered by the server with its filters; this adds local times,
   live rows from the stream (only those matching the filters) and a resync on reconnect. */
"use strict";

(function () {
  const { el } = OS;
  const table = document.getElementById("events");
  const tbody = table.querySelector("tbody");
  const count = document.getElementById("event-count");
  const filters = table.dataset;
  const limit = parseInt(filters.limit || "100", 10);
  const ALARMISH = new Set(["panic", "panic_repeat", "alarm_acknowledged", "alarm_resolved",
    "door_forced", "panic_line_fault", "command_rejected", "outbox_overflow", "storage_fault"]);
  let connectedOnce = false;

  /** The same short detail text the server renders (keep in step with pages.py). */
  function details(e) {
    const parts = [];
    if (e.alarm_id) parts.push(_("alarm {id}", { id: String(e.alarm_id).slice(0, 8) }));
    if (e.presses) parts.push(_("{n} presses", { n: e.presses }));
    if (e.by) parts.push(_("by {by}", { by: e.by }));
    if (e.source) parts.push(_("source {source}", { source: e.source }));
    if (e.seconds !== undefined && e.seconds !== null) parts.push(e.seconds + " s");
    if (e.cmd) parts.push(_("cmd {cmd}", { cmd: e.cmd }));
    if (e.reason) parts.push(_("reason {reason}", { reason: e.reason }));
    if (e.dropped) parts.push(_("{n} dropped", { n: e.dropped }));
    return parts.join(", ");
  }

  function localTimes(root) {
    for (const cell of root.querySelectorAll("td[data-ts]")) cell.textContent = OS.dateTime(cell.dataset.ts);
  }

  function matches(e) {
    if (filters.office && e.office !== filters.office) return false;
    if (filters.type && e.type !== filters.type) return false;
    if (filters.since && String(e.ts) < filters.since) return false;
    return true;
  }

  function row(e, fresh) {
    return el("tr", { class: (ALARMISH.has(e.type) ? "alarmish" : "") + (fresh ? " fresh" : ""), "data-id": e.id },
      el("td", { class: "mono", "data-ts": e.ts, text: OS.dateTime(e.ts) }),
      el("td", { text: e.office }),
      el("td", { class: "mono", text: e.seq }),
      el("td", {}, OS.eventWord(e.type), " ", el("span", { class: "code", text: e.type })),
      el("td", { text: details(e) }),
      el("td", { text: e.test ? _("DRILL") : "" }));
  }

  function trim() {
    while (tbody.rows.length > limit) tbody.deleteRow(tbody.rows.length - 1);
    count.textContent = String(tbody.rows.length);
  }

  function add(e) {
    if (!e || !e.id || !matches(e) || tbody.querySelector('tr[data-id="' + CSS.escape(e.id) + '"]')) return;
    // newest first by event time: a late (resent) event goes where it belongs
    const ts = String(e.ts);
    let before = null;
    for (const r of tbody.rows) { if (String(r.cells[0].dataset.ts) <= ts) { before = r; break; } }
    tbody.insertBefore(row(e, true), before);
    trim();
  }

  async function resync() {
    const params = new URLSearchParams();
    for (const key of ["office", "type", "since", "limit"]) if (filters[key]) params.set(key, filters[key]);
    try {
      const data = await OS.getJSON("/api/events?" + params.toString());
      const list = Array.isArray(data) ? data : data.events || [];
      tbody.replaceChildren(...list.map((e) => row(e, false)));
      trim();
    } catch (_e) { /* keep what is shown */ }
  }

  // the since filter is typed in local time and sent as UTC (stored timestamps are UTC)
  const sinceLocal = document.getElementById("since-local");
  const sinceHidden = document.getElementById("since");
  if (sinceHidden.value) {
    const d = new Date(sinceHidden.value);
    if (!Number.isNaN(d.getTime())) {
      const p = (n) => String(n).padStart(2, "0");
      sinceLocal.value = d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" +
        p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
    }
  }
  document.getElementById("filters").addEventListener("submit", () => {
    const d = new Date(sinceLocal.value);
    sinceHidden.value = sinceLocal.value && !Number.isNaN(d.getTime()) ? d.toISOString() : "";
  });

  localTimes(tbody);
  OS.stream(function (kind, data) { if (kind === "event") add(data); },
    function () { if (connectedOnce) resync(); connectedOnce = true; });
})();
