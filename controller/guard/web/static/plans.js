/* Floor plans ([[floors]] and the roster's x, y): the "Floor plan" tab shows every office as a
   marker coloured by its state, an alarmed room blinking; an alarm's details show its floor
   with the room marked. Without plans the tab falls back to the grouped list. */
"use strict";

const Plans = (function () {
  const { el } = OS;
  let data = { floors: [], positions: {} };
  try {
    const node = document.getElementById("plans-data");
    if (node) data = JSON.parse(node.textContent || "{}") || data;
  } catch (_e) { /* no plans */ }
  const floors = data.floors || [];
  const positions = data.positions || {};
  const STATUS_WORD = {
    alarm: () => _("ALARM"), drill: () => _("DRILL"), missing: () => _("missing"), offline: () => _("offline"),
    stale: () => _("stale"), fault: () => _("fault"), lockdown: () => _("lockdown"), online: () => _("online"),
  };

  function floorIndex(loc) {
    loc = loc || {};
    return floors.findIndex((f) => f.site === (loc.site || "") && (f.building || "") === (loc.building || "") &&
      (f.floor || "") === (loc.floor || ""));
  }

  function marker(o, status, blink) {
    const [x, y] = positions[o.id];
    const loc = o.location || {};
    const word = STATUS_WORD[status] ? STATUS_WORD[status]() : status;
    const m = el("span", { class: "plan-marker st-" + status + (blink ? " blink" : ""), "data-office": o.id,
      role: "img", "aria-label": (loc.label || o.id) + ": " + word, title: (loc.label || o.id) + " \u00b7 " + word },
    loc.room || o.id);
    // CSSOM, not a style attribute: the CSP allows no inline styles
    m.style.left = (x * 100) + "%";
    m.style.top = (y * 100) + "%";
    return m;
  }

  function figure(index, markers) {
    const f = floors[index];
    const title = [f.site, f.building, f.floor && _("Floor {floor}", { floor: f.floor })].filter(Boolean).join(" \u00b7 ");
    return el("figure", { class: "plan", "data-floor": String(index) },
      el("figcaption", { text: title }),
      el("div", { class: "plan-canvas" },
        el("img", { src: f.url, alt: _("Floor plan of {where}", { where: title }) }), ...markers));
  }

  function statusOf(id) {
    const card = document.querySelector('.office[data-office="' + CSS.escape(id) + '"]');
    return card ? card.dataset.status : "online";
  }

  /** The plan view: every floor with its offices; offices without a place are listed. */
  function render(box, offices) {
    if (!floors.length) { box.replaceChildren(el("p", { class: "muted", text: _("No floor plans configured: the list shows every office.") })); return; }
    const byFloor = floors.map(() => []);
    const unplaced = [];
    for (const o of offices) {
      const i = floorIndex(o.location);
      if (i >= 0 && positions[o.id]) {
        const st = statusOf(o.id);
        byFloor[i].push(marker(o, st, st === "alarm" || st === "drill"));
      } else unplaced.push(o);
    }
    const figs = byFloor.map((markers, i) => figure(i, markers));
    if (unplaced.length) {
      figs.push(el("p", { class: "muted", text: _("Not on a plan: {offices}", { offices: unplaced.map((o) => (o.location || {}).label || o.id).join(", ") }) }));
    }
    box.replaceChildren(...figs);
  }

  /** The alarm's floor with its room marked (blinking), or null without a plan. */
  function forAlarm(a) {
    const i = floorIndex(a.location);
    if (i < 0 || !positions[a.office]) return null;
    return figure(i, [marker({ id: a.office, location: a.location }, "alarm", a.state === "active")]);
  }

  // ---------------------------------------------------------------- tabs
  const listTab = document.getElementById("tab-list");
  const planTab = document.getElementById("tab-plan");
  const view = document.getElementById("plan-view");
  const list = document.getElementById("offices");
  let showing = false;
  let latest = [];
  function show(plan) {
    showing = plan && floors.length > 0;
    if (!listTab) return;
    listTab.setAttribute("aria-selected", String(!plan));
    planTab.setAttribute("aria-selected", String(plan));
    view.classList.toggle("hidden", !plan);
    // without plans the plan tab keeps the grouped list visible under its note
    list.classList.toggle("hidden", plan && floors.length > 0);
    if (plan) render(view, latest);
  }
  if (listTab) {
    listTab.addEventListener("click", () => show(false));
    planTab.addEventListener("click", () => show(true));
  }
  function update(offices) { latest = offices; if (showing && !view.matches(":hover")) render(view, offices); }

  return { render, forAlarm, update, show };
})();
