/* One incident (GET /api/alarms/ID): its facts and its timeline, oldest first. Used by the
   console's details dialog, the incident page and the printable report. */
"use strict";

const Incident = (function () {
  const { el } = OS;

  const OUTCOMES = {
    handled: () => _("Handled on site"),
    police: () => _("Police called"),
    medical: () => _("Ambulance / medical help"),
    false_alarm: () => _("False alarm / pressed by mistake"),
    drill: () => _("Drill"),
    technical: () => _("Technical fault"),
  };
  const WHAT = {
    pressed: () => _("panic button pressed"), pressed_again: () => _("pressed again"),
    ack_requested: () => _("acknowledge sent"), acknowledged: () => _("acknowledged"),
    ack_resent: () => _("acknowledgement sent again"), responding: () => _("on the way (\u201cI am going too\u201d)"),
    resolve_requested: () => _("resolve sent"), resolved: () => _("resolved"),
    escalated: () => _("escalated"), notified: () => _("notification sent"),
    fault_raised: () => _("fault raised"), fault_cleared: () => _("condition cleared"),
    fault_returned: () => _("fault returned"), closed: () => _("closed"),
    ack_not_confirmed: () => _("acknowledgement not confirmed by the office"),
    resolve_not_confirmed: () => _("resolve not confirmed by the office"),
    notification_delivered: () => _("notification delivered"), notification_failed: () => _("notification failed"),
  };


  const FAULT_TEXT = {
    offline: () => _("controller offline \u2014 panic button dead"),
    stale: () => _("no heartbeat \u2014 panic button may be dead"),
    missing: () => _("controller never reported"),
    panic_line: () => _("panic button line cut or shorted"),
    door_forced: () => _("door forced open"),
    door_held_open: () => _("door held open"),
    storage: () => _("controller storage fault"),
    events_missing: () => _("events missing (not repaired)"),
  };
  function kindOf(a) { return a.kind || (a.test ? "drill" : "panic"); }
  /** A text the station sends in every language ({de, en}): the page's language. */
  function localized(value) {
    if (!value) return "";
    if (typeof value === "string") return value;
    return value[OS.lang] || value.en || value.de || "";
  }
  function faultText(a) {
    const f = FAULT_TEXT[a.fault];
    // the station's own title (the same words its notifications use), else ours
    return localized(a.title) || (f ? f() : String(a.fault || _("technical fault")));
  }
  function outcomeText(o) { return OUTCOMES[o] ? OUTCOMES[o]() : String(o || ""); }
  function whatText(w) { return WHAT[w] ? WHAT[w]() : String(w || ""); }

  const DETAIL_KEYS = {
    outcome: () => _("Outcome"), note: () => _("Note"), presses: () => _("Presses"),
    level: () => _("Level"), by: () => _("by"), error: () => _("error"),
    notifications: () => _("Notifications"), occurrence: () => _("Occurrence"), attempt: () => _("Attempt"),
  };
  const DETAIL_WORDS = {
    "confirmed by the office": () => _("confirmed by the office"), drill: () => _("drill"),
    "acknowledged and cleared": () => _("acknowledged and cleared"),
    // why a command did not go through ("no confirmation from the office: the office did ...")
    "rejected by the office": () => _("rejected by the office"),
    "no confirmation from the office": () => _("no confirmation from the office"),
    "the office did not confirm in time": () => _("the office did not confirm in time"),
    "the MQTT queue is full": () => _("the MQTT queue is full"), "not sent": () => _("not sent"),
  };
  /** "a: b" of known phrases, each translated (an office's reason code stays as it is). */
  function phrases(text) {
    return text.split(": ").map((p) => (DETAIL_WORDS[p] ? DETAIL_WORDS[p]() : p)).join(": ");
  }
  /** The station writes details as "key: value; key: value" in English: shown translated. */
  function detailString(text) {
    if (DETAIL_WORDS[text]) return DETAIL_WORDS[text]();
    return text.split("; ").map((part) => {
      const m = /^(\w+): (.*)$/s.exec(part);
      if (!m || !DETAIL_KEYS[m[1]]) return phrases(part);
      const value = m[1] === "outcome" ? outcomeText(m[2]) : m[2];
      return DETAIL_KEYS[m[1]]() + ": " + value;
    }).join("; ");
  }

  function detailText(detail) {
    if (detail === null || detail === undefined || detail === "") return "";
    if (typeof detail !== "object") return detailString(String(detail));
    return Object.entries(detail).filter(([, v]) => v !== null && v !== "" && v !== undefined)
      .map(([k, v]) => (k === "outcome" ? _("Outcome") + ": " + outcomeText(v) : k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)))
      .join(", ");
  }

  /** The facts as label/value pairs (shared with the report). */
  function facts(a) {
    const kind = kindOf(a);
    const out = [
      [_("Office"), ((a.location || {}).label || a.office) + " (" + a.office + ")"],
      [_("Location"), OS.where(a.location)],
      [_("Kind"), kind === "fault" ? _("technical fault") + ": " + faultText(a) : kind === "drill" ? _("drill") : _("panic alarm")],
      [_("Raised"), OS.dateTime(a.raised_at)],
    ];
    if (a.presses > 1) out.push([_("Presses"), String(a.presses)]);
    if (a.acknowledged_at) out.push([_("Acknowledged"), _("{at} by {by}", { at: OS.dateTime(a.acknowledged_at), by: a.acknowledged_by || "?" })]);
    if ((a.responders || []).length) out.push([_("On the way"), a.responders.map((r) => r.by + " (" + OS.clock(r.at) + ")").join(", ")]);
    if (a.escalated_at) out.push([_("Escalated"), OS.dateTime(a.escalated_at)]);
    if (a.cleared_at) out.push([_("Condition cleared"), OS.dateTime(a.cleared_at)]);
    if (a.resolved_at) out.push([_("Resolved"), _("{at} by {by}", { at: OS.dateTime(a.resolved_at), by: a.resolved_by || "?" })]);
    if (a.outcome) out.push([_("Outcome"), outcomeText(a.outcome)]);
    if (a.note) out.push([_("Note"), a.note]);
    return out.filter(([, v]) => v);
  }

  /** Fill `box` with the incident `a` (facts, what to do, timeline). */
  function render(box, a) {
    const dl = el("dl", { class: "facts-list" });
    for (const [k, v] of facts(a)) dl.append(el("dt", { text: k }), el("dd", { text: v }));
    const rows = (a.timeline || []).map((t) => el("tr", {},
      el("td", { class: "mono", text: OS.clock(t.ts) }),
      el("td", { text: whatText(t.what) + (t.level ? " (" + _("level {n}", { n: t.level }) + ")" : "") }),
      el("td", { text: t.by || "" }),
      // the station names the fault in English: show the alarm's own (translated) title
      el("td", { text: t.what === "fault_raised" || t.what === "fault_returned" ? faultText(a) : detailText(t.detail) })));
    const table = el("table", { class: "timeline" },
      el("caption", { text: _("Timeline (oldest first)") }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: _("Time") }), el("th", { scope: "col", text: _("What") }),
        el("th", { scope: "col", text: _("Who") }), el("th", { scope: "col", text: _("Details") }))),
      el("tbody", {}, ...rows));
    const todo = localized(a.what_to_do);
    box.replaceChildren(...[dl,
      todo ? el("div", { class: "what-to-do" }, el("h3", { text: _("What to do") }), el("p", { text: todo })) : null,
      Instructions.block(a),
      typeof Plans !== "undefined" ? Plans.forAlarm(a) : null,
      rows.length ? table : el("p", { class: "muted", text: _("No timeline recorded.") })].filter(Boolean));
  }

  return { render, facts, outcomeText, whatText, detailText, kindOf, faultText, localized, OUTCOMES };
})();

/* Site instructions shown with every alarm of their scope (filled in by #15's config). */
const Instructions = (function () {
  let all = [];
  try {
    const node = document.getElementById("instructions-data");
    if (node) all = JSON.parse(node.textContent || "[]");
  } catch (_e) { all = []; }
  /** The instructions whose site/building/office match the alarm, most specific last. */
  function matching(a) {
    const loc = a.location || {};
    return all.filter((i) => (!i.site || i.site === loc.site) && (!i.building || i.building === loc.building) &&
      (!i.office || i.office === a.office));
  }
  function block(a) {
    const found = matching(a);
    if (!found.length) return null;
    return OS.el("div", { class: "instructions" }, OS.el("h3", { text: _("Instructions for this place") }),
      ...found.map((i) => OS.el("p", { class: "instruction", text: i.text })));
  }
  return { matching, block };
})();
