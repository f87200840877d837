/* The office grid: one card per expected or seen office, coloured by its status,
   with drill/release for guards and lockdown for admins (two-step, touch friendly). */
"use strict";

const Offices = (function () {
  const { el } = OS;
  const grid = document.getElementById("offices");
  const cards = new Map();
  const isAdmin = OS.role === "admin";
  let onCard = null; // hook for the demo simulator panel

  const LABELS = {
    alarm: _("ALARM"), drill: _("DRILL"), missing: _("missing \u2014 never seen"), offline: _("OFFLINE"),
    stale: _("stale \u2014 no heartbeat"), lockdown: _("LOCKDOWN"), fault: _("fault"), online: _("online"),
  };
  const SHORT = {
    alarm: _("alarm"), drill: _("drill"), missing: _("missing"), offline: _("offline"),
    stale: _("stale"), lockdown: _("lockdown"), fault: _("fault"), online: _("online"),
  };

  /** Primary status (one colour) and the secondary notes of an office. */
  // what an office's state `faults` mean for the guard, in words (unknown codes stay as they are)
  const FAULT_TEXT = {
    panic_input_active: () => _("panic button still pressed or its line open \u2014 a new press cannot be detected here"),
    panic_line: () => _("panic line fault"),
    panic_line_short: () => _("panic line shorted \u2014 the panic button does not work"),
    panic_line_cut: () => _("panic line cut"),
    panic_line_tamper: () => _("panic line tampered with"),
    storage: () => _("storage fault on the controller"),
    walk_test_due: () => _("walk test due"),
    door_forced: () => _("door forced open"), door_held_open: () => _("door held open"),
    events_missing: () => _("events missing (not repaired)"),
  };
  // fault alarms with a colour of their own (offline, stale, missing) are not a "fault" here
  const OWN_STATUS = ["offline", "stale", "missing"];

  function faultWords(faults) {
    return faults.map((f) => (FAULT_TEXT[f] ? FAULT_TEXT[f]() : f)).join(", ");
  }

  function status(o) {
    const state = o.state || {};
    // the office's own faults, and the station's open fault alarms for it (a forced door)
    const faults = [...(o.faults || [])];
    for (const a of o.fault_alarms || []) {
      if (!a.cleared_at && !OWN_STATUS.includes(a.fault) && !faults.includes(a.fault)) faults.push(a.fault);
    }
    const alarm = o.alarm || o.open_alarm; // the station's record, else the office's retained one
    const notes = [];
    let primary = "online";
    if (alarm || (o.alarm_state && o.alarm_state !== "none")) {
      primary = (alarm ? alarm.test : state.alarm_test) ? "drill" : "alarm";
    } else if (o.missing) primary = "missing";
    else if (o.availability === "offline") primary = "offline";
    else if (o.stale) primary = "stale";
    else if (o.lockdown) primary = "lockdown";
    else if (faults.length) primary = "fault";
    else if (o.availability !== "online") primary = "stale";
    if (primary !== "offline" && o.availability === "offline") notes.push(_("offline"));
    if (primary !== "stale" && o.stale && o.availability !== "offline") notes.push(_("stale"));
    if (primary !== "lockdown" && o.lockdown) notes.push(_("lockdown"));
    if (primary !== "fault" && faults.length) notes.push(_("fault: {faults}", { faults: faultWords(faults) }));
    else if (faults.length) notes.push(faultWords(faults));
    return { primary, notes, gap: !!o.events_may_be_missing };
  }

  /** A button that needs a second press within 4 s (no confirm(): it blocks other screens' audio). */
  function twoStep(label, armedLabel, cls, action) {
    const button = el("button", { class: "btn small " + cls, type: "button", text: label });
    let timer = null;
    button.addEventListener("click", async () => {
      if (!button.classList.contains("armed")) {
        button.classList.add("armed");
        button.textContent = armedLabel;
        timer = setTimeout(() => { button.classList.remove("armed"); button.textContent = label; }, 4000);
        return;
      }
      clearTimeout(timer);
      button.classList.remove("armed");
      button.disabled = true;
      button.textContent = label + "\u2026";
      const result = await action();
      button.disabled = false;
      button.textContent = label;
      flash(result.ok ? _("{action}: confirmed by the office", { action: label })
        : _("{action} failed: {error}", { action: label, error: OS.errorText(result) }), !result.ok);
    });
    return button;
  }

  function flash(text, error) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.className = "flash" + (error ? " error" : "");
    clearTimeout(box._t);
    box._t = setTimeout(() => box.classList.add("hidden"), 8000);
  }

  function officeAction(id, what) {
    return () => OS.post("/api/offices/" + encodeURIComponent(id) + "/" + what);
  }

  function build(o) {
    const actions = el("div", { class: "actions" },
      twoStep(_("Drill"), _("Start drill?"), "drill-btn", officeAction(o.id, "test")));
    if (isAdmin) {
      actions.append(
        twoStep(_("Release door"), _("Release now?"), "release-btn", officeAction(o.id, "release")),
        twoStep(_("Lockdown"), _("Confirm lockdown"), "danger lockdown-btn", officeAction(o.id, "lockdown")),
        twoStep(_("Lift lockdown"), _("Confirm lift"), "lift-btn", officeAction(o.id, "lift_lockdown")));
    }
    const card = el("article", { class: "office", "data-office": o.id },
      el("div", { class: "office-head" },
        el("h3", { class: "label" }),
        el("a", { class: "log-link", href: "/events?office=" + encodeURIComponent(o.id), text: _("events") })),
      el("div", { class: "where" }),
      el("div", { class: "status" }),
      el("div", { class: "facts" }),
      el("div", { class: "notes" }),
      actions);
    if (onCard) onCard(card, o.id);
    return card;
  }

  function fill(card, o) {
    const loc = o.location || {};
    const st = status(o);
    card.className = "office st-" + st.primary + (st.gap ? " gap" : "");
    card.dataset.status = st.primary;
    card.querySelector(".label").textContent = loc.label || o.id;
    card.querySelector(".where").textContent = [o.id, loc.floor && _("Floor {floor}", { floor: loc.floor }), loc.room && _("Room {room}", { room: loc.room })]
      .filter(Boolean).join(" \u00b7 ");
    const alarm = o.alarm || o.open_alarm;
    const acked = (alarm && alarm.state === "acknowledged") || o.alarm_state === "acknowledged";
    card.querySelector(".status").textContent = LABELS[st.primary] +
      ((st.primary === "alarm" || st.primary === "drill") && acked ? " \u2014 " + _("acknowledged") : "");
    const facts = [];
    const DOOR = { locked: _("door locked"), released: _("door released") };
    const CONTACT = { open: _("open"), closed: _("closed") };
    if (o.door) facts.push(DOOR[o.door] || o.door);
    if (o.contact && o.contact !== "unknown") facts.push(CONTACT[o.contact] || o.contact);
    if (o.outbox_pending) facts.push(_("{n} unsent", { n: o.outbox_pending }));
    card.querySelector(".facts").textContent = facts.join(" \u00b7 ");
    const notes = card.querySelector(".notes");
    notes.replaceChildren(...st.notes.map((n) => el("div", { text: n })));
    if (st.gap) notes.append(el("div", { class: "gap-note", text: OS.ngettext("events may be missing ({n} gap, re-requested)", "events may be missing ({n} gaps, re-requested)", o.gaps) }));
    // a drill is refused while an alarm is open: do not offer it
    card.querySelector(".drill-btn").classList.toggle("hidden", st.primary === "alarm" || st.primary === "drill");
    const lock = card.querySelector(".lockdown-btn");
    const lift = card.querySelector(".lift-btn");
    if (lock) lock.classList.toggle("hidden", !!o.lockdown);
    if (lift) lift.classList.toggle("hidden", !o.lockdown);
  }

  /** Show exactly these offices, in the given order. */
  // problems first: what needs a guard, then what cannot raise an alarm, then the rest
  const RANK = { alarm: 0, offline: 1, missing: 1, stale: 2, fault: 2, drill: 3, lockdown: 4, online: 5 };
  const groups = new Map(); // "site|building|floor" -> section element
  let latest = [];

  function groupOf(o) {
    const loc = o.location || {};
    return [loc.site || "", loc.building || "", loc.floor || ""];
  }
  function groupTitle(parts) {
    const [site, building, floor] = parts;
    return [site || _("(no site)"), building, floor && _("Floor {floor}", { floor })].filter(Boolean).join(" \u00b7 ");
  }
  function groupBox(key, parts) {
    let box = groups.get(key);
    if (!box) {
      box = el("section", { class: "office-group", "data-group": key },
        el("h3", { class: "group-head" }, el("span", { class: "group-title", text: groupTitle(parts) }),
          el("span", { class: "group-counts" })),
        el("div", { class: "office-grid" }));
      groups.set(key, box);
    }
    return box;
  }

  /** Show these offices grouped by site, building, floor; problems first; never reorder
      under the pointer (the order catches up when it leaves the grid). */
  function render(offices) {
    latest = offices;
    const seen = new Set();
    for (const o of offices) {
      seen.add(o.id);
      let card = cards.get(o.id);
      if (!card) { card = build(o); cards.set(o.id, card); }
      fill(card, o);
      card._office = o;
    }
    for (const [id, card] of cards) if (!seen.has(id)) { card.remove(); cards.delete(id); }
    if (!grid.matches(":hover") || !grid.children.length) arrange(offices);
    search();
    siteControls(offices);
    const counts = {};
    for (const card of cards.values()) counts[card.dataset.status] = (counts[card.dataset.status] || 0) + 1;
    const summary = document.getElementById("office-summary");
    if (summary) {
      summary.textContent = Object.entries(counts).map(([k, v]) => v + " " + (SHORT[k] || k)).join(" \u00b7 ");
    }
  }

  function arrange(offices) {
    const byGroup = new Map();
    for (const o of offices) {
      const parts = groupOf(o);
      const key = parts.join("|");
      if (!byGroup.has(key)) byGroup.set(key, { parts, items: [] });
      byGroup.get(key).items.push(cards.get(o.id));
    }
    const rank = (card) => RANK[card.dataset.status] ?? 5;
    const ordered = [...byGroup.entries()].map(([key, g]) => {
      g.items.sort((a, b) => rank(a) - rank(b) || a.dataset.office.localeCompare(b.dataset.office));
      return { key, g, best: Math.min(...g.items.map(rank)) };
    }).sort((a, b) => a.best - b.best || a.key.localeCompare(b.key));
    ordered.forEach(({ key, g }, index) => {
      const box = groupBox(key, g.parts);
      if (grid.children[index] !== box) grid.insertBefore(box, grid.children[index] || null);
      const inner = box.querySelector(".office-grid");
      g.items.forEach((card, i) => { if (inner.children[i] !== card) inner.insertBefore(card, inner.children[i] || null); });
      const counts = {};
      for (const card of g.items) counts[card.dataset.status] = (counts[card.dataset.status] || 0) + 1;
      const problems = g.items.length - (counts.online || 0);
      box.querySelector(".group-counts").textContent = OS.ngettext("{n} office", "{n} offices", g.items.length) +
        (problems ? " \u00b7 " + Object.entries(counts).filter(([k]) => k !== "online")
          .map(([k, v]) => v + " " + (SHORT[k] || k)).join(" \u00b7 ") : "");
      box.classList.toggle("has-problem", problems > 0);
    });
    for (const [key, box] of groups) if (!byGroup.has(key)) { box.remove(); groups.delete(key); }
  }
  grid.addEventListener("pointerleave", () => arrange(latest));

  // search: label, room or id; groups without a match are hidden
  const searchBox = document.getElementById("office-search");
  function search() {
    const q = searchBox ? searchBox.value.trim().toLowerCase() : "";
    for (const card of cards.values()) {
      const o = card._office || {};
      const loc = o.location || {};
      const hay = [o.id, loc.label, loc.room].filter(Boolean).join(" ").toLowerCase();
      card.classList.toggle("hidden", !!q && !hay.includes(q));
    }
    for (const box of groups.values()) {
      box.classList.toggle("hidden", !box.querySelector(".office:not(.hidden)"));
    }
  }
  if (searchBox) searchBox.addEventListener("input", search);

  // site-wide lockdown (admins only: the container exists only in their page), one pair per site
  const siteBox = document.getElementById("site-controls");
  const siteButtons = new Map();
  function siteControls(offices) {
    if (!siteBox) return;
    const sites = [...new Set(offices.map((o) => (o.location || {}).site).filter(Boolean))].sort();
    for (const site of sites) {
      if (siteButtons.has(site)) continue;
      const on = twoStep(sites.length > 1 ? _("Lockdown {site}", { site }) : _("Lockdown whole site"),
        _("Confirm: lock every door of {site}", { site }), "danger site-lockdown",
        () => OS.post("/api/lockdown", { site, on: true }));
      const off = twoStep(sites.length > 1 ? _("Lift lockdown {site}", { site }) : _("Lift lockdown whole site"),
        _("Confirm: lift for {site}", { site }), "site-lift",
        () => OS.post("/api/lockdown", { site, on: false }));
      siteButtons.set(site, [on, off]);
      siteBox.append(on, off);
    }
  }

  return { render, flash, setCardHook(fn) { onCard = fn; } };
})();
