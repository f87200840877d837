/* Closed alarms: search (office, kind, from, until) over GET /api/alarms?open=false and a
   CSV export of exactly what is shown. */
"use strict";

(function () {
  const { el } = OS;
  const form = document.getElementById("history-filters");
  const tbody = document.querySelector("#history tbody");
  const count = document.getElementById("history-count");
  const errorBox = document.getElementById("history-error");
  let shown = [];

  function isoOf(localValue) {
    if (!localValue) return "";
    const d = new Date(localValue);
    return Number.isNaN(d.getTime()) ? "" : d.toISOString();
  }

  function query() {
    const params = new URLSearchParams({ open: "false" });
    const office = form.elements.office.value.trim();
    if (office) params.set("office", office);
    if (form.elements.kind.value) params.set("kind", form.elements.kind.value);
    const since = isoOf(form.elements.since.value);
    const until = isoOf(form.elements.until.value);
    if (since) params.set("since", since);
    if (until) params.set("until", until);
    return params;
  }

  function kindText(a) {
    const k = Incident.kindOf(a);
    return k === "fault" ? _("technical fault") + ": " + Incident.faultText(a) : k === "drill" ? _("drill") : _("panic alarm");
  }

  function closedAt(a) { return a.resolved_at || a.closed_at || a.cleared_at || ""; }

  function row(a) {
    return el("tr", { "data-alarm-id": a.alarm_id },
      el("td", { class: "mono", text: OS.dateTime(a.raised_at) }),
      el("td", { text: ((a.location || {}).label || a.office) + " (" + a.office + ")" }),
      el("td", { text: kindText(a) }),
      el("td", { text: a.acknowledged_at ? OS.clock(a.acknowledged_at) + " " + (a.acknowledged_by || "") : "" }),
      el("td", { text: closedAt(a) ? OS.dateTime(closedAt(a)) + " " + (a.resolved_by || "") : "" }),
      el("td", { text: a.outcome ? Incident.outcomeText(a.outcome) : "" }),
      el("td", { text: a.note || "" }),
      el("td", {}, el("a", { href: "/alarms/" + encodeURIComponent(a.alarm_id), text: _("open") })));
  }

  async function search() {
    errorBox.classList.add("hidden");
    try {
      const data = await OS.getJSON("/api/alarms?" + query().toString());
      shown = (Array.isArray(data) ? data : data.alarms || []).filter((a) => a.state === "closed" || a.state === "resolved");
      tbody.replaceChildren(...shown.map(row));
      count.textContent = String(shown.length);
    } catch (err) {
      errorBox.textContent = _("Search failed: {error}", { error: err.message });
      errorBox.classList.remove("hidden");
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); search(); });
  // the station writes the CSV (same filters, formulas neutralised)
  const csvLink = document.getElementById("history-csv");
  function updateLink() { csvLink.setAttribute("href", "/api/alarms.csv?" + query().toString() + "&header=labels"); }
  form.addEventListener("input", updateLink);
  form.addEventListener("change", updateLink);
  updateLink();
  search();
})();
