/* Shared helpers of the guard pages: API calls with the CSRF token, the live stream,
   small DOM builders. No framework, no build step; loaded before the page scripts. */
"use strict";

const OS = (function () {
  const body = document.body;
  // page data (CSRF token, user, role, demo flag) sits on #page, rendered by the server
  const page = document.getElementById("page") || body;
  const csrf = page.dataset.csrf || "";

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

  /** GET JSON; a 401 means the session ended: back to the login page. */
  async function getJSON(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (resp.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname)); throw new Error("not logged in"); }
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
      if (resp.status === 401) window.location.assign("/login");
      return { ok: resp.ok, status: resp.status, data };
    } catch (err) {
      return { ok: false, status: 0, data: { error: "network error: " + err.message } };
    }
  }

  /** The error text of a failed API answer. */
  function errorText(result) {
    const d = result.data || {};
    return d.reason || d.error || d.detail || d.message || ("HTTP " + result.status);
  }

  const STREAM_KINDS = ["office", "alarm", "event", "escalation", "gap", "command", "audit"];

  /** EventSource on /api/stream that reconnects forever and resyncs on every (re)connect. */
  function stream(onMessage, onOpen) {
    const badge = document.getElementById("live");
    let source = null;
    let delay = 1000;
    function setLive(on) {
      if (!badge) return;
      badge.classList.toggle("on", on);
      badge.classList.toggle("off", !on);
      badge.textContent = on ? "live" : "reconnecting\u2026";
      body.dataset.live = on ? "on" : "off";
    }
    function dispatch(kind, event) {
      let data = null;
      try { data = JSON.parse(event.data); } catch (_e) { return; }
      // the hub sends {"kind": ..., "data": ...} as the default ("message") event
      let k = kind;
      if (kind === "message" && data && typeof data.kind === "string") {
        k = data.kind;
        data = "data" in data ? data.data : data;
      }
      try { onMessage(k, data); } catch (err) { console.error("stream handler", err); }
    }
    function open() {
      source = new EventSource("/api/stream");
      source.onopen = function () { delay = 1000; setLive(true); onOpen(); };
      source.onerror = function () {
        setLive(false);
        document.dispatchEvent(new CustomEvent("officesec:stream-down"));
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          setTimeout(open, delay);
          delay = Math.min(delay * 2, 15000);
        }
      };
      source.onmessage = function (e) { dispatch("message", e); };
      for (const kind of STREAM_KINDS) source.addEventListener(kind, function (e) { dispatch(kind, e); });
    }
    setLive(false);
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

  /** "4:05" or "1:02:03" since an ISO timestamp (never negative under clock skew). */
  function since(iso) {
    const start = Date.parse(iso);
    if (Number.isNaN(start)) return "?";
    let s = Math.max(0, Math.floor((Date.now() - start) / 1000));
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  /** Local wall-clock time of an ISO timestamp. */
  function clock(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso || "") :
      d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function dateTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso || "") : d.toLocaleString();
  }

  /** "Site · Building · Floor EG · Room 101" from a location object. */
  function where(loc) {
    loc = loc || {};
    return [loc.site, loc.building, loc.floor && "Floor " + loc.floor, loc.room && "Room " + loc.room]
      .filter(Boolean).join(" \u00b7 ");
  }

  return {
    el, getJSON, post, errorText, stream, throttle, since, clock, dateTime, where,
    role: page.dataset.role || "guard", user: page.dataset.user || "", demo: page.dataset.demo === "true",
  };
})();
