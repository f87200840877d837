/* The installer's pages (admin): controllers' technical state (refreshed), the audit log
   with filters and CSV, and one office's facts with its recent events. */
"use strict";

(function () {
  const { el } = OS;
  const page = document.getElementById("page");

  function status(r) {
    if (r.missing) return _("missing");
    if (r.availability === "offline") return _("offline");
    if (r.stale) return _("stale");
    return _("online");
  }
  // the station records codes; the installer reads words (the filters match both)
  const FAULTS = {
    offline: () => _("offline"), stale: () => _("stale"), missing: () => _("missing"),
    panic_line: () => _("panic line fault"), panic_line_short: () => _("panic line short-circuited"),
    panic_line_cut: () => _("panic line cut"), panic_line_tamper: () => _("panic line tampered with"),
    panic_input_active: () => _("panic input active"), walk_test_due: () => _("walk test due"),
    door_forced: () => _("door forced open"), door_held_open: () => _("door held open"),
    storage: () => _("controller storage fault"), events_missing: () => _("events missing (not repaired)"),
  };
  const ACTIONS = {
    login: () => _("login"), login_form: () => _("login (form)"), login_basic: () => _("login (script)"),
    alarm_ack: () => _("acknowledge"), alarm_resolve: () => _("resolve"), alarm_respond: () => _("I am going too"),
    test: () => _("drill"), lockdown: () => _("lockdown"), lift_lockdown: () => _("lift lockdown"),
    release: () => _("door release"), site_lockdown: () => _("site lockdown"),
    site_lift_lockdown: () => _("lift site lockdown"), selftest: () => _("self-test"), notify: () => _("notification"),
  };
  const OUTCOMES = {
    ok: () => _("ok"), failed: () => _("failed"), locked: () => _("locked out"), locked_out: () => _("locked out"),
    confirmed: () => _("confirmed"), rejected: () => _("rejected"), timeout: () => _("no answer"),
    not_sent: () => _("not sent"), recorded: () => _("recorded"), refused: () => _("refused"),
    already: () => _("already done"), partial: () => _("partly confirmed"), started: () => _("started"),
    delivered: () => _("delivered"),
  };
  const word = (table, code) => (table[code] ? table[code]() : String(code || ""));

  function seconds(s) { return s === null || s === undefined ? "\u2014" : OS.duration(s); }
  function offset(s) { return s === null || s === undefined ? "\u2014" : (s > 0 ? "+" : "") + s.toFixed(2) + " s"; }
  /** IP and broker on one line, "since ..." below; a dash for an office that does not say. */
  function network(r) {
    if (!r.address && !r.broker) return [document.createTextNode("\u2014")];
    const out = [el("div", { text: [r.address, r.broker].filter(Boolean).join(" \u00b7 ") })];
    if (r.connected_since) out.push(el("div", { class: "muted", text: _("since {at}", { at: OS.dateTime(r.connected_since) }) }));
    return out;
  }
  function heard(r) { return r.last_heard_s === null || r.last_heard_s === undefined ? "\u2014" : _("{t} ago", { t: seconds(r.last_heard_s) }); }
  function faults(r) {
    const codes = [...r.faults, ...r.fault_alarms.filter((f) => !r.faults.includes(f))];
    return codes.map((f) => word(FAULTS, f)).join(", ") || "\u2014";
  }

  async function controllers() {
    const rows = await OS.getJSON("/installer/controllers");
    return rows;
  }

  // ------------------------------------------------------------ overview
  const table = document.querySelector("#controllers tbody");
  async function refresh() {
    try {
      const rows = await controllers();
      table.replaceChildren(...rows.map((r) => el("tr", { "data-office": r.id },
        el("td", {}, el("a", { href: "/offices/" + encodeURIComponent(r.id), text: ((r.location || {}).label || r.id) + " (" + r.id + ")" })),
        el("td", { text: status(r) }),
        el("td", { class: "mono", text: r.version || "\u2014" }),
        el("td", { class: "mono c-uptime", text: seconds(r.uptime_s) }),
        el("td", { class: "mono c-heard", text: heard(r) }),
        el("td", { class: "mono c-outbox", text: (r.outbox_pending ?? "\u2014") + " / " + (r.outbox_dropped ?? "\u2014") }),
        el("td", { text: faults(r) }),
        el("td", { class: "mono c-offset", text: offset(r.clock_offset_s) }),
        el("td", { class: "mono c-net" }, ...network(r)))));
      document.body.dataset.loaded = "true";
    } catch (_e) { /* shown as not live by the probe */ }
  }

  // ------------------------------------------------------------ audit log
  const audit = document.querySelector("#audit tbody");
  const filters = document.getElementById("audit-filters");
  let entries = [];
  function matching() {
    const want = (name) => filters.elements[name].value.trim().toLowerCase();
    const shown = (e, k) => (k === "action" ? word(ACTIONS, e[k]) : k === "outcome" ? word(OUTCOMES, e[k]) : "");
    return entries.filter((e) => ["user", "action", "outcome"].every((k) => !want(k)
      || (String(e[k] || "") + " " + shown(e, k)).toLowerCase().includes(want(k))));
  }
  function showAudit() {
    audit.replaceChildren(...matching().map((e) => el("tr", {},
      el("td", { class: "mono", text: OS.dateTime(new Date(e.at * 1000).toISOString()) }),
      el("td", { text: e.user }), el("td", { text: word(ACTIONS, e.action), title: e.action }), el("td", { text: e.target }),
      el("td", { text: word(OUTCOMES, e.outcome), title: e.outcome }), el("td", { text: e.detail }))));
  }
  function cell(v) {
    let s = v === null || v === undefined ? "" : String(v);
    if (s && "=+-@".includes(s[0])) s = "'" + s; // no spreadsheet formulas
    // (no regex literal with a quote in it: Babel's JS extractor would stop reading there)
    const quote = ["\"", ",", "\n", "\r", ";"].some((c) => s.includes(c));
    return quote ? "\"" + s.split("\"").join("\"\"") + "\"" : s;
  }
  function auditCsv() {
    const cols = ["at", "user", "action", "target", "outcome", "detail"];
    const head = [_("Time (UTC)"), _("User"), _("Action"), _("Target"), _("Outcome"), _("Details")];
    return [head.map(cell).join(","), ...matching().map((e) => cols.map((c) => cell(c === "at" ? new Date(e.at * 1000).toISOString() : e[c])).join(","))].join("\r\n") + "\r\n";
  }
  async function loadAudit() {
    try { entries = await OS.getJSON("/api/audit"); showAudit(); } catch (_e) { /* keep */ }
  }

  // ------------------------------------------------------------ one office
  async function office(id) {
    const rows = await controllers();
    const r = rows.find((x) => x.id === id);
    if (r) {
      document.getElementById("office-title").textContent = ((r.location || {}).label || r.id) + " (" + r.id + ")";
      const facts = [[_("Location"), OS.where(r.location)], [_("Status"), status(r)], [_("Version"), r.version || "\u2014"],
        [_("Uptime"), seconds(r.uptime_s)], [_("Last heard"), heard(r)],
        [_("Outbox pending / dropped"), (r.outbox_pending ?? "\u2014") + " / " + (r.outbox_dropped ?? "\u2014")],
        [_("Faults"), faults(r)], [_("Clock offset"), offset(r.clock_offset_s)],
        [_("IP address"), r.address || "\u2014"], [_("Broker"), r.broker || "\u2014"],
        [_("Connected since"), r.connected_since ? OS.dateTime(r.connected_since) : "\u2014"]];
      document.getElementById("office-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    }
    const events = await OS.getJSON("/api/events?limit=50&office=" + encodeURIComponent(id));
    document.querySelector("#office-events tbody").replaceChildren(...events.map((e) => el("tr", {},
      el("td", { class: "mono", text: OS.dateTime(e.ts) }), el("td", { class: "mono", text: e.seq }),
      el("td", {}, OS.eventWord(e.type), " ", el("span", { class: "code", text: e.type })),
      el("td", { text: e.test ? _("DRILL") : "" }))));
    document.body.dataset.loaded = "true";
  }

  if (page.dataset.office) {
    office(page.dataset.office);
  } else {
    refresh();
    setInterval(refresh, 5000);
    loadAudit();
    filters.addEventListener("input", showAudit);
    document.getElementById("audit-csv").addEventListener("click", () => {
      const link = el("a", { href: URL.createObjectURL(new Blob(["\ufeff" + auditCsv()], { type: "text/csv;charset=utf-8" })), download: "audit.csv", class: "hidden" });
      document.body.append(link);
      link.click();
      setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    });
    window.__auditCsv = auditCsv; // for the browser test: the exact file content
  }
})();
