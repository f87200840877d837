"""An incident's timeline: the office's events for the alarm and the station's own log.

Entries are `{ts, what, by, detail}`, oldest first. The office's events
(press, repeats, acknowledged, resolved) carry the office's clock; the
station's entries (ack requested, responders, escalations, notifications,
outcome, fault raised/cleared) carry the station's. Both are UTC.
"""

from __future__ import annotations

from typing import Any

from controller.guard.store import Store

EVENT_WHAT = {"panic": "pressed", "panic_repeat": "pressed_again",
              "alarm_acknowledged": "acknowledged", "alarm_resolved": "resolved"}


def _from_event(event: dict[str, Any]) -> dict[str, Any] | None:
    what = EVENT_WHAT.get(str(event.get("type")))
    if what is None:
        return None
    detail = ""
    if event["type"] == "panic" and event.get("test"):
        detail = "drill"
    elif event["type"] == "panic_repeat":
        detail = f"presses: {event.get('presses')}"
    elif event["type"] in ("alarm_acknowledged", "alarm_resolved"):
        detail = "confirmed by the office"
    return {"ts": event["ts"], "what": what, "by": event.get("by"), "detail": detail,
            "source": "office"}


def timeline(store: Store, alarm_id: str) -> list[dict[str, Any]]:
    """Every step of one alarm, oldest first (stable for equal timestamps)."""
    entries = [e for e in (_from_event(ev) for ev in store.alarm_events(alarm_id)) if e]
    entries += [{**row, "source": "station"} for row in store.alarm_log(alarm_id)]
    return sorted(entries, key=lambda e: str(e["ts"]))


def incident(store: Store, alarm_id: str) -> dict[str, Any] | None:
    """The alarm with its timeline, for `GET /api/alarms/ID`."""
    alarm = store.alarm(alarm_id)
    if alarm is None:
        return None
    alarm["timeline"] = timeline(store, alarm_id)
    return alarm
