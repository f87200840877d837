/* Shared helpers of the guard pages: translations, times in the station's time zone, API
   calls with the CSRF token, the live stream, small DOM builders. No framework, no build
   step; loaded before the page scripts. */
"use strict";

const OS = (function () {
  const body = document.body;
  const html = document.documentElement;
  // page data (CSRF token, user, role, demo flag) sits on #page, rendered by the server
  const page = document.getElementById("page") || body;
  const csrf = page.dataset.csrf || "";
  const lang = html.getAttribute("lang") || "de";
  const timeZone = html.dataset.tz || undefined;

  // ------------------------------------------------------------ translations
  // The server renders the JS part of the gettext catalog as a JSON data block (not a
  // script: the CSP allows no inline code); msgids are English.
  let catalog = {};
  try {
    const node = document.getElementById("i18n-catalog");
    if (node) catalog = JSON.parse(node.textContent || "{}");
  } catch (_e) { catalog = {}; }

  /** Translate a message; `{name}` placeholders are filled from `params`. */
  function _(msgid, params) {
    const found = catalog[msgid];
    const text = typeof found === "string" && found ? found : msgid;
    return params ? fmt(text, params) : text;
  }

  /** Singular or plural by `n` (German and English both use n != 1). */
  function ngettext(singular, plural, n, params) {
    const found = catalog[singular];
    let text = n === 1 ? singular : plural;
    if (Array.isArray(found) && found.length === 2) text = found[n === 1 ? 0 : 1] || text;
    return fmt(text, Object.assign({ n }, params || {}));
  }

  function fmt(text, params) {
    return String(text).replace(/\{(\w+)\}/g, (m, key) => (key in params ? String(params[key]) : m));
  }

  /** Build an element; text always goes through textContent (never innerHTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ------------------------------------------------------------ session loss
  // A console whose session ended must not drop to a calm login page while alarms are
  // open: it says so loudly and keeps what it last knew on screen.
  let loggedOut = false;
  function sessionLost() {
    if (loggedOut) return;
    loggedOut = true;
    body.dataset.session = "expired";
    document.dispatchEvent(new CustomEvent("officesec:logged-out"));
    const box = document.getElementById("session-banner");
    if (!box) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname)); return; }
    box.classList.remove("hidden");
  }

  /** GET JSON; a 401 means the session ended. */
  async function getJSON(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (resp.status === 401) { sessionLost(); throw new Error(_("not logged in")); }
    if (!resp.ok) throw new Error(url + ": HTTP " + resp.status);
    return resp.json();
  }

  /** POST with the CSRF token; resolves to {ok, status, data} and never throws on HTTP errors. */
  async function post(url, payload) {
    try {
      const resp = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload || {}),
      });
      let data = null;
      try { data = await resp.json(); } catch (_e) { data = null; }
      if (resp.status === 401) sessionLost();
      return { ok: resp.ok, status: resp.status, data };
    } catch (err) {
      return { ok: false, status: 0, data: { error: _("network error: {error}", { error: err.message }) } };
    }
  }

  /** The error text of a failed API answer. */
  function errorText(result) {
    const d = result.data || {};
    return d.reason || d.error || d.detail || d.message || ("HTTP " + result.status);
  }

  const STREAM_KINDS = ["office", "alarm", "event", "escalation", "gap", "command", "audit", "health"];
  const PROBE_MS = 1000;      // /healthz probe period: a silent network drop shows within 5 s
  const PROBE_TIMEOUT_MS = 2000;
  const STALE_MS = 3500;      // no sign of life (probe or stream) for this long = not live
  const GRACE_MS = 1500;      // a stream error while the station still answers: a reconnect

  /** Liveness of this screen: the stream is open AND the station answered recently. */
  const Live = {
    // the page was just served by the station: live until a probe or the stream says otherwise
    usesStream: false, streamUp: false, streamDownAt: Date.now(), lastOk: Date.now(), failures: 0, live: null, broker: true,
    listeners: [],
    ok() { this.lastOk = Date.now(); },
    evaluate() {
      const now = Date.now();
      const answering = now - this.lastOk < STALE_MS && this.failures < 2;
      const up = (this.streamUp || !this.usesStream) && answering;
      // a stream that drops while the station still answers gets a short grace (reconnect);
      // a station that stops answering is shown at once
      const live = up || (answering && now - this.streamDownAt < GRACE_MS);
      const changed = live !== this.live;
      this.live = live;
      const badge = document.getElementById("live");
      if (badge) {
        badge.classList.toggle("on", up);
        badge.classList.toggle("off", !up);
        badge.textContent = up ? _("live") : _("NOT live");
      }
      body.dataset.live = this.live ? "on" : "off";
      const banner = document.getElementById("live-banner");
      if (banner) {
        let text = "";
        if (!this.live) text = _("This screen has lost its connection to the guard station and is NOT live: new alarms are NOT shown. Reconnecting\u2026");
        else if (!this.broker) text = _("The guard station has lost its connection to the MQTT broker: new alarms cannot arrive. Check the broker.");
        if (banner.textContent !== text) banner.textContent = text;
        banner.classList.toggle("hidden", !text);
      }
      body.dataset.health = this.live && this.broker ? "ok" : "degraded";
      if (changed) for (const fn of this.listeners) fn(this.live);
    },
    async probe() {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), PROBE_TIMEOUT_MS);
      let ok = false;
      try {
        const resp = await fetch("/healthz", { cache: "no-store", signal: ctl.signal });
        ok = resp.ok;
        const data = await resp.json().catch(() => null);
        if (data && data.broker) this.broker = !!data.broker.connected;
      } catch (_e) { ok = false; }
      clearTimeout(timer);
      if (ok) { this.ok(); this.failures = 0; } else this.failures += 1;
      this.evaluate();
    },
  };
  setInterval(() => Live.probe(), PROBE_MS);
  Live.probe();
  setInterval(() => Live.evaluate(), 500);

  /** EventSource on /api/stream that reconnects forever and resyncs on every (re)connect. */
  function stream(onMessage, onOpen) {
    let source = null;
    let delay = 500;
    Live.usesStream = true;
    function dispatch(kind, event) {
      Live.ok();
      let data = null;
      try { data = JSON.parse(event.data); } catch (_e) { return; }
      // the hub sends {"kind": ..., "data": ...} as the default ("message") event
      let k = kind;
      if (kind === "message" && data && typeof data.kind === "string") {
        k = data.kind;
        data = "data" in data ? data.data : data;
      }
      if (k === "health" && data && data.broker) { Live.broker = !!data.broker.connected; Live.evaluate(); }
      try { onMessage(k, data); } catch (err) { console.error("stream handler", err); }
    }
    function open() {
      source = new EventSource("/api/stream");
      source.onopen = function () {
        delay = 500; Live.streamUp = true; Live.ok(); Live.failures = 0; Live.evaluate(); onOpen();
      };
      source.onerror = function () {
        if (Live.streamUp) Live.streamDownAt = Date.now();
        Live.streamUp = false;
        Live.evaluate();
        // a 401 on the reconnect is invisible to EventSource: ask the API who we are
        getJSON("/api/me").catch(() => {});
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          setTimeout(open, delay);
          delay = Math.min(delay * 2, 4000);
        }
      };
      source.onmessage = function (e) { dispatch("message", e); };
      for (const kind of STREAM_KINDS) source.addEventListener(kind, function (e) { dispatch(kind, e); });
    }
    Live.evaluate();
    open();
    window.addEventListener("beforeunload", function () { if (source) source.close(); });
  }

  /** Run `fn` at most once per `ms`, always with the latest call honoured. */
  function throttle(fn, ms) {
    let timer = null;
    let again = false;
    return function () {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(function tick() {
        if (again) { again = false; fn(); timer = setTimeout(tick, ms); } else { timer = null; }
      }, ms);
    };
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  /** "4:05" or "1:02:03" for a number of seconds (never negative). */
  function duration(seconds) {
    let s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  /** Time since an ISO timestamp (never negative under clock skew). */
  function since(iso) {
    const start = Date.parse(iso);
    return Number.isNaN(start) ? "?" : duration((Date.now() - start) / 1000);
  }

  // 24-hour clock and dd.mm.yyyy for German; the station's time zone, not the browser's
  const clockFmt = new Intl.DateTimeFormat(lang, { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const shortFmt = new Intl.DateTimeFormat(lang, { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const dateFmt = new Intl.DateTimeFormat(lang, { timeZone, day: "2-digit", month: "2-digit", year: "numeric" });

  function parse(iso) { const d = new Date(iso); return Number.isNaN(d.getTime()) ? null : d; }
  /** "14:02:07" */
  function clock(iso) { const d = parse(iso); return d ? clockFmt.format(d) : String(iso || ""); }
  /** "14:02" */
  function hhmm(iso) { const d = parse(iso); return d ? shortFmt.format(d) : String(iso || ""); }
  /** "02.12.2026 14:02:07" */
  function dateTime(iso) { const d = parse(iso); return d ? dateFmt.format(d) + " " + clockFmt.format(d) : String(iso || ""); }

  /** "Site · Building · Floor EG · Room 101" from a location object. */
  function where(loc) {
    loc = loc || {};
    return [loc.site, loc.building, loc.floor && _("Floor {floor}", { floor: loc.floor }),
      loc.room && _("Room {room}", { room: loc.room })].filter(Boolean).join(" \u00b7 ");
  }

  /** Layout changes that would shift the page under the pointer wait while `frozen()`. */
  const layout = {
    frozen: () => false,
    waiting: new Map(),
    /** Run `fn` now, or once the page may move again (latest call per key wins). */
    defer(key, fn) { if (this.frozen()) this.waiting.set(key, fn); else { this.waiting.delete(key); fn(); } },
    flush() { const fns = [...this.waiting.values()]; this.waiting.clear(); for (const fn of fns) fn(); },
  };

  /** An event type in words, from the page's `#event-words` (the station's language). */
  let eventWords = null;
  function eventWord(type) {
    if (eventWords === null) {
      const data = document.getElementById("event-words");
      eventWords = data ? JSON.parse(data.textContent || "{}") : {};
    }
    return eventWords[type] || String(type || "");
  }

  return {
    layout, el, getJSON, post, errorText, stream, throttle, since, duration, clock, hhmm, dateTime, where,
    _, ngettext, fmt, sessionLost, lang, timeZone, Live, eventWord,
    role: page.dataset.role || "guard", user: page.dataset.user || "", demo: page.dataset.demo === "true",
  };
})();
const _ = OS._;
