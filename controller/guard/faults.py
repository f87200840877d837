"""Technical faults as alarms: a dead panic button must be seen as surely as a press.

Each tick the conditions of every office are judged from the live model
(`conditions()`, pure) and compared with the open fault alarms in the store:

- a condition with no open alarm raises a new one (kind `fault`);
- a condition that returns while its alarm is still open (not yet
  acknowledged and cleared) counts up that alarm (`count`): a flapping office
  gives one alarm, not a storm;
- a condition that ends sets `cleared_at`; an alarm that is acknowledged
  *and* cleared, in either order, is closed. The same condition after that is
  a new alarm.

`notify` and `broker` are faults of the guard station itself (its id is the
`office`): an escalation notification that could not be delivered, and the
station's own broker connection lost for 5 s. Without a broker no office
can be judged by its silence, so `stale` and `missing` are neither raised
nor cleared then (nor for 2 s after a reconnect, while the retained states
come in).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from controller.guard.fault_texts import FAULT_TEXTS, fault_text, station_label
from controller.guard.guard_config import FaultsCfg
from controller.guard.hub import Hub
from controller.guard.model import LiveModel, OfficeView
from controller.guard.store import Store
from controller.protocol.messages import Event, format_ts

log = structlog.get_logger("officesec.guard.faults")

RECONNECT_GRACE_S = 2.0
SILENCE_FAULTS = frozenset({"stale", "missing"})  # judged from what did *not* arrive
BROKER_FAULT_AFTER_S = 5.0
DOOR_FAULTS = {"door_forced": "door_forced", "door_held_open": "door_held_open"}
MAX_CHANGES_PER_TICK = 200
"""Fault alarms raised or cleared per tick at most: when a whole fleet goes silent at once
(a switch, a broker), thousands of alarm writes in one go would hold the event loop for
seconds; spread over ticks (4 a second) a panic between them is still handled at once."""
STATE_FAULTS = {"panic_line": "panic_line", "storage": "storage"}


@dataclass
class OfficeFaultInputs:
    """What the tracker remembers per office beyond the live model."""

    door: dict[str, int] = field(default_factory=dict)  # fault -> seq of the raising event
    gaps_since: float | None = None  # monotonic: when the office's gaps were first seen


NO_INPUTS = OfficeFaultInputs()


def conditions(view: OfficeView, inputs: OfficeFaultInputs, mono: float, up_since: float,
               cfg: FaultsCfg) -> set[str]:
    """The fault conditions that hold for one office right now (pure)."""
    if not view.seen:
        if view.in_roster and mono - up_since >= cfg.missing_after_s:
            return {"missing"}
        return set()
    out: set[str] = set()
    if view.availability == "offline":
        out.add("offline")
    elif view.stale:
        out.add("stale")  # a hung controller whose MQTT session still lives
    faults = (view.state or {}).get("faults") or []
    out.update(name for key, name in STATE_FAULTS.items() if key in faults)
    out.update(inputs.door)
    if inputs.gaps_since is not None and mono - inputs.gaps_since >= cfg.events_missing_after_s:
        out.add("events_missing")
    return out


class FaultTracker:
    """Raises, counts, clears and closes fault alarms; called on every tick."""

    def __init__(self, store: Store, model: LiveModel, hub: Hub, cfg: FaultsCfg, *,
                 guard_id: str, started: float,
                 on_raised: Callable[[str, float], None], language: str = "de") -> None:
        """`on_raised(alarm_id, mono)` starts an escalation clock; `language` names the station."""
        self.store = store
        self.model = model
        self.hub = hub
        self.cfg = cfg
        self.guard_id = guard_id
        self.language = language
        self.started = started
        self.on_raised = on_raised
        self.inputs: dict[str, OfficeFaultInputs] = {}
        self.station: set[str] = set()  # the guard station's own faults ("notify")
        self.raised = 0
        # while the station has no broker it cannot judge any office (all would look stale);
        # after a reconnect the retained states need a moment to arrive
        self.broker_ok = False
        self.broker_lost_at: float | None = started
        self.frozen_until = started  # at the start nothing is stale before it was heard
        self._restore(started)

    def _restore(self, mono: float) -> None:
        """After a restart, conditions only the station remembered are taken up again."""
        for alarm in self.store.open_faults():
            if alarm["cleared_at"] is not None:
                continue
            inputs = self._inputs(alarm["office"])
            if alarm["fault"] in DOOR_FAULTS:
                inputs.door[alarm["fault"]] = 0  # until a state says the door is closed
            elif alarm["fault"] == "events_missing":
                inputs.gaps_since = mono - self.cfg.events_missing_after_s

    def set_broker(self, connected: bool, mono: float) -> None:
        """The station's own broker connection changed."""
        if connected and not self.broker_ok:
            self.frozen_until = mono + RECONNECT_GRACE_S
            self.broker_lost_at = None
        elif not connected and self.broker_ok:
            self.broker_lost_at = mono
        self.broker_ok = connected

    def _inputs(self, office: str) -> OfficeFaultInputs:
        return self.inputs.setdefault(office, OfficeFaultInputs())

    def on_event(self, event: Event) -> None:
        """Door events (after commit): a forced or held door is a fault until it closes."""
        if event.type in DOOR_FAULTS:
            self._inputs(event.office).door[DOOR_FAULTS[event.type]] = event.seq
        elif event.type == "door_closed":
            self._inputs(event.office).door.clear()

    def _door_closed_in_state(self, view: OfficeView, inputs: OfficeFaultInputs) -> None:
        """A state that reports the door closed *after* the raising event clears it too."""
        state = view.state or {}
        if not inputs.door or state.get("contact") != "closed":
            return
        seq = state.get("seq")
        if isinstance(seq, int):
            inputs.door = {k: v for k, v in inputs.door.items() if v > seq}

    def _wanted(self, mono: float
                ) -> tuple[dict[tuple[str, str], dict[str, Any]], set[tuple[str, str]]]:
        """Conditions that hold now (with the location), and open alarms not to clear now."""
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        keep: set[tuple[str, str]] = set()
        # silence is only a sign of a dead office while the station itself hears the broker
        judge_silence = self.broker_ok and mono >= self.frozen_until
        for view in self.model.offices.values():
            inputs = self.inputs.get(view.id)
            if view.gaps > 0:
                inputs = inputs or self._inputs(view.id)
                inputs.gaps_since = inputs.gaps_since or mono
            elif inputs is not None:
                inputs.gaps_since = None
            if inputs is not None and inputs.door:
                self._door_closed_in_state(view, inputs)
            elif (view.seen and view.availability == "online" and not view.stale
                  and view.gaps == 0 and not (view.state or {}).get("faults")):
                continue  # the usual case, thousands of times a tick: nothing is wrong
            found = conditions(view, inputs or NO_INPUTS, mono, self.started, self.cfg)
            if not judge_silence:
                found -= SILENCE_FAULTS
                keep.update((view.id, f) for f in SILENCE_FAULTS)
            if not view.seen:  # nothing heard since the start: nothing has cleared
                keep.update((view.id, f) for f in FAULT_TEXTS)
            for fault in found:
                wanted[(view.id, fault)] = view.location
        station = set(self.station)
        if self.broker_lost_at is not None and mono - self.broker_lost_at >= BROKER_FAULT_AFTER_S:
            station.add("broker")
        for fault in station:
            wanted[(self.guard_id, fault)] = {"site": "", "building": "", "floor": "",
                                              "room": "",
                                              "label": station_label(self.guard_id,
                                                                     self.language)}
        return wanted, keep

    def tick(self, wall: float, mono: float) -> list[dict[str, Any]]:
        """Judge every office; returns the fault alarms that changed (already committed)."""
        wanted, keep = self._wanted(mono)
        open_ = {(a["office"], a["fault"]): a for a in self.store.open_faults()}
        at = format_ts(datetime.fromtimestamp(wall, UTC))
        changed: list[str] = []
        for key, location in wanted.items():
            if len(changed) >= MAX_CHANGES_PER_TICK:
                break  # the rest on the next tick: a panic never waits behind 20,000 writes
            alarm = open_.get(key)
            if alarm is None:
                changed.append(self._raise(key, location, at, wall, mono))
            elif alarm["cleared_at"] is not None:
                changed.append(self._returned(alarm, at))
        for key, alarm in open_.items():
            if len(changed) >= MAX_CHANGES_PER_TICK:
                break
            if key not in wanted and alarm["cleared_at"] is None and key not in keep:
                changed.append(self._cleared(alarm, at))
        if not changed:
            return []
        self.store.commit()
        out = [a for a in (self.store.alarm(i) for i in changed) if a is not None]
        for alarm in out:
            self.hub.publish("alarm", alarm)
        return out

    def _raise(self, key: tuple[str, str], location: dict[str, Any], at: str, wall: float,
               mono: float) -> str:
        office, fault = key
        alarm_id = str(uuid.uuid4())
        self.store.insert_fault(alarm_id, office, fault, at=at, now=wall,
                                location=dict(location))
        title, _todo = fault_text(fault, location, office, "en")
        self.store.log_alarm(alarm_id, at, "fault_raised", None, title)
        self.on_raised(alarm_id, mono)
        self.raised += 1
        log.warning("fault_alarm_raised", office=office, fault=fault, alarm_id=alarm_id)
        return alarm_id

    def _returned(self, alarm: dict[str, Any], at: str) -> str:
        count = int(alarm["count"] or 1) + 1
        self.store.update_alarm(alarm["alarm_id"], count=count, cleared_at=None)
        self.store.log_alarm(alarm["alarm_id"], at, "fault_returned", None,
                             f"occurrence: {count}")
        log.warning("fault_alarm_returned", office=alarm["office"], fault=alarm["fault"],
                    alarm_id=alarm["alarm_id"], count=count)
        return str(alarm["alarm_id"])

    def _cleared(self, alarm: dict[str, Any], at: str) -> str:
        alarm_id = str(alarm["alarm_id"])
        fields: dict[str, Any] = {"cleared_at": at}
        self.store.log_alarm(alarm_id, at, "fault_cleared", None)
        if alarm["state"] == "acknowledged":
            fields.update(state="closed", closed_at=at)
            self.store.log_alarm(alarm_id, at, "closed", None, "acknowledged and cleared")
        self.store.update_alarm(alarm_id, **fields)
        log.info("fault_alarm_cleared", office=alarm["office"], fault=alarm["fault"],
                 alarm_id=alarm_id, closed=alarm["state"] == "acknowledged")
        return alarm_id
