"""The live picture of every office: pure data, time passed in, no I/O.

Staleness is judged on the guard's own monotonic clock from the last state
received (3 x the office's heartbeat), never from the broker's last will:
a hung controller whose MQTT thread still answers pings is caught as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.protocol.messages import Alarm, State
from controller.protocol.names import LOCATION_FIELDS

STALE_FACTOR = 3.0
IGNORED_FOR_CHANGE = frozenset({"ts", "uptime_s", "schema"})
CLOCK_FIELDS = frozenset({"ts", "uptime_s"})


@dataclass
class OfficeView:
    """What the guard knows about one office right now."""

    id: str
    in_roster: bool = False
    location: dict[str, Any] = field(default_factory=dict)
    availability: str | None = None
    state: dict[str, Any] | None = None
    last_state_at: float | None = None  # monotonic
    first_seen_at: float | None = None  # monotonic
    heartbeat_s: float = 1.0
    stale: bool = False
    alarm: dict[str, Any] | None = None
    gaps: int = 0
    duplicates: int = 0
    tail_ahead_since: float | None = None
    raw_state: dict[str, Any] | None = None  # the last fully validated state, as parsed JSON

    @property
    def seen(self) -> bool:
        """Anything at all arrived from this office since the station started."""
        return self.first_seen_at is not None

    def to_dict(self, now: float) -> dict[str, Any]:
        """The API/SSE form of this office."""
        state = self.state or {}
        age = None if self.last_state_at is None else round(now - self.last_state_at, 3)
        return {
            "id": self.id,
            "in_roster": self.in_roster,
            "missing": self.in_roster and not self.seen,
            "location": self.location,
            "availability": self.availability or ("unknown" if self.seen else "missing"),
            "online": self.availability == "online",
            "stale": self.stale,
            "state_age_s": age,
            "heartbeat_s": self.heartbeat_s,
            "door": state.get("door"),
            "contact": state.get("contact"),
            "alarm_state": state.get("alarm", "none"),
            "lockdown": bool(state.get("lockdown", False)),
            "faults": state.get("faults", []),
            "outbox_pending": state.get("outbox_pending"),
            "outbox_dropped": state.get("outbox_dropped"),
            "version": state.get("version"),
            "seq": state.get("seq"),
            "state": self.state,
            "open_alarm": self.alarm,
            "gaps": self.gaps,
            "events_may_be_missing": self.gaps > 0,
            "duplicates": self.duplicates,
        }


class LiveModel:
    """Every office in the roster plus every office seen; changes are reported to the caller."""

    def __init__(self, roster: list[dict[str, Any]]) -> None:
        """Seed with the roster (id plus location fields)."""
        self.offices: dict[str, OfficeView] = {}
        # offices whose valid state arrived here since the last sync; only an ingest group
        # reads it (share.py sets a dict), so a lone station does no work for it per heartbeat
        self.heard: dict[str, float] | None = None
        self.stale_grace_s = 0.0  # shared ingest: others' heartbeats reach us up to this late
        for entry in roster:
            loc = {k: entry.get(k, "") for k in LOCATION_FIELDS}
            self.offices[entry["id"]] = OfficeView(id=entry["id"], in_roster=True, location=loc)

    def get(self, office: str, now: float) -> OfficeView:
        """The view of an office, created (as seen now) if unknown."""
        view = self.offices.get(office)
        if view is None:
            view = OfficeView(id=office)
            self.offices[office] = view
        if view.first_seen_at is None:
            view.first_seen_at = now
        return view

    def on_availability(self, office: str, value: str, now: float) -> bool:
        """Retained `online`/`offline`; True when it changed."""
        view = self.get(office, now)
        changed = view.availability != value
        view.availability = value
        return changed

    def on_state(self, office: str, state: State, now: float) -> bool:
        """A state message; True when anything but the clock fields changed."""
        view = self.get(office, now)
        data = state.model_dump(mode="json", by_alias=True, exclude_none=True)
        before = view.state
        view.state = data
        view.last_state_at = now
        if self.heard is not None:
            self.heard[office] = now
        view.heartbeat_s = state.heartbeat_s
        if state.location is not None:
            view.location = state.location.model_dump()
        was_stale, view.stale = view.stale, False
        if before is None or was_stale:
            return True
        return any(before.get(k) != v for k, v in data.items() if k not in IGNORED_FOR_CHANGE)

    def heartbeat(self, office: str, raw: dict[str, Any], now: float) -> bool:
        """Fast path: a state equal to the last validated one except its clock fields.

        Most states are heartbeats; this keeps their cost at a JSON parse and a dict
        compare. The clock fields are still checked, so a malformed one is not
        taken as a sign of life (the caller then validates fully and drops it).
        """
        view = self.offices.get(office)
        if view is None or view.raw_state is None or view.stale or view.state is None:
            return False
        last = view.raw_state
        if raw.keys() != last.keys() or any(
                raw[k] != v for k, v in last.items() if k not in CLOCK_FIELDS):
            return False
        ts, uptime = raw.get("ts"), raw.get("uptime_s")
        if not isinstance(ts, str) or len(ts) > 40 or isinstance(uptime, bool) \
                or not isinstance(uptime, int | float) or uptime < 0:
            return False
        try:
            datetime.fromisoformat(ts)
        except ValueError:
            return False
        view.last_state_at = now
        if self.heard is not None:
            self.heard[office] = now
        view.state["ts"], view.state["uptime_s"] = ts, uptime
        return True

    def heard_elsewhere(self, office: str, at: float) -> bool:
        """Another station heard the office's state at `at` (our clock); True if that is news."""
        view = self.offices.get(office)
        if view is None:
            return False
        if view.last_state_at is not None and view.last_state_at >= at:
            return False
        view.last_state_at = at
        return True

    def state_elsewhere(self, office: str, data: dict[str, Any], now: float) -> bool:
        """A state another station validated and stored; True when it is newer than ours."""
        view = self.get(office, now)
        if view.state is not None and _ts(view.state) >= _ts(data):
            return False
        view.state = data
        view.raw_state = None  # our own next copy is validated again, not compared
        view.last_state_at = now
        heartbeat = data.get("heartbeat_s")
        if isinstance(heartbeat, int | float) and heartbeat > 0:
            view.heartbeat_s = float(heartbeat)
        view.stale = False
        return True

    def on_alarm(self, office: str, alarm: Alarm | None, now: float) -> bool:
        """The retained alarm topic (None = empty payload, no open alarm)."""
        view = self.get(office, now)
        data = None if alarm is None else alarm.model_dump(mode="json", by_alias=True,
                                                           exclude_none=True)
        changed = view.alarm != data
        view.alarm = data
        if alarm is not None and not view.location:
            view.location = alarm.location.model_dump()
        return changed

    def tick(self, now: float) -> list[str]:
        """Re-judge staleness; the ids whose stale flag flipped."""
        flipped = []
        for view in self.offices.values():
            if not view.seen:
                continue
            since = view.last_state_at if view.last_state_at is not None else view.first_seen_at
            assert since is not None  # noqa: S101 - seen implies first_seen_at
            stale = now - since > STALE_FACTOR * view.heartbeat_s + self.stale_grace_s
            if stale != view.stale:
                view.stale = stale
                flipped.append(view.id)
        return flipped

    def online_ids(self) -> list[str]:
        """Offices that are online and not stale (the ones a drill can reach)."""
        return sorted(v.id for v in self.offices.values()
                      if v.availability == "online" and not v.stale)

    def counts(self) -> dict[str, int]:
        """Known, online and stale offices (for /healthz)."""
        views = self.offices.values()
        return {"known": len(self.offices),
                "online": sum(1 for v in views if v.availability == "online"),
                "stale": sum(1 for v in views if v.stale)}

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        """Every office, sorted by id."""
        return [self.offices[k].to_dict(now) for k in sorted(self.offices)]


def _ts(state: dict[str, Any]) -> datetime:
    """A state's own timestamp, to order copies that reached stations in different orders."""
    try:
        when = datetime.fromisoformat(str(state.get("ts", "")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
