"""The door and alarm logic of one office, as a pure state machine.

Inputs go in with the time they happened (``at``: monotonic seconds, ``wall``:
UTC datetime); effects come out. Nothing here reads a clock, touches a pin,
a socket or a file, so every rule is tested with plain values (tests/
test_machine.py) and the daemon is only plumbing. Timers are deadlines: the
daemon asks `next_deadline()` and feeds a `Tick` when it passes.

Rules worth knowing (docs/behaviour.md has the full table):

* Debounce: the first edge of an input is reported at once (no latency for
  a panic press); further edges are ignored until the input has been quiet
  for `DEBOUNCE_S`, then the settled level is reported if it differs.
* The alarm is silent: a press changes no output. Only a guard's
  acknowledgement lights the ack LED; only a guard's resolve closes it.
* The relay is energised only by a release (button, or a remote release
  where allowed), never in lockdown, and drops after `release_s`, or as
  soon as the door closes again after it was opened during the release.
* ``door_forced``: with a door contact, the door opens while the relay is off,
  the relay did not drop less than `FORCED_GRACE_S` ago, and the REX sensor
  was not active within `REX_WINDOW_S` (or is active now).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from controller.office.inputs import (
    ALARM_COMMANDS,
    INPUT_NAMES,
    AlarmChanged,
    AlarmRecord,
    CommandIn,
    Edge,
    Effect,
    Emit,
    Input,
    InputName,
    NeighborAlarm,
    OutputName,
    SetOutput,
    Started,
    Tick,
)

DEBOUNCE_S = 0.05  # contact chatter shorter than this gives one event (issue 2: up to 50 ms)
FORCED_GRACE_S = 2.0  # a strike's latch holds a moment after the relay drops: no forced alarm
REX_WINDOW_S = 10.0  # an exit sensor hit this recently explains a door opening from inside


# --------------------------------------------------------------------- machine


def _new_alarm_id() -> str:
    """An alarm id when the input carried none: it must be a UUID (the wire requires one)."""
    return str(uuid.uuid4())


@dataclass
class _Debounce:
    level: bool = False
    raw: bool = False
    quiet_until: float = float("-inf")
    uid: str = ""  # of the latest edge: a press reported when the chatter settles keeps it


class Machine:
    """Door and alarm state of one office; `handle` is the only way in."""

    def __init__(self, *, release_s: float, held_open_s: float, line_fault_s: float,
                 has_contact: bool, allow_remote_release: bool) -> None:
        """Take the timing rules; the state starts locked, quiet and unknown."""
        self.release_s = release_s
        self.held_open_s = held_open_s
        self.line_fault_s = line_fault_s
        self.has_contact = has_contact
        self.allow_remote_release = allow_remote_release
        self.inputs: dict[str, _Debounce] = {n: _Debounce() for n in INPUT_NAMES}
        self.outputs: dict[str, bool] = {"relay": False, "ack_led": False, "neighbor_led": False}
        self.relay_until: float | None = None
        self.relay_dropped_at = float("-inf")
        self.opened_during_release = False
        self.contact: Literal["open", "closed", "unknown"] = "unknown"
        self.held_deadline: float | None = None
        self.last_rex = float("-inf")
        self.panic_since: float | None = None
        self.alarm: AlarmRecord | None = None
        self.lockdown = False
        self.faults: set[str] = set()
        self.neighbors_open: set[str] = set()
        self._fx: list[Effect] = []

    # ------------------------------------------------------------ public API

    def handle(self, event: Input) -> list[Effect]:
        """Apply one input; return the effects, in the order they must happen."""
        self._fx = []
        if isinstance(event, Tick):
            self._tick(event.at, event.wall)
        elif isinstance(event, Edge):
            self._tick(event.at, event.wall)
            self._edge(event)
        elif isinstance(event, CommandIn):
            self._tick(event.at, event.wall)
            self._command(event)
        elif isinstance(event, NeighborAlarm):
            self._tick(event.at, event.wall)
            self._neighbor(event)
        else:
            self._start(event)
        return self._fx

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which a Tick changes something."""
        times = [d.quiet_until for d in self.inputs.values() if d.raw != d.level]
        if self.relay_until is not None:
            times.append(self.relay_until)
        if self.held_deadline is not None:
            times.append(self.held_deadline)
        if self.panic_since is not None and "panic_line" not in self.faults:
            times.append(self.panic_since + self.line_fault_s)
        return min(times) if times else None

    @property
    def door(self) -> Literal["locked", "released"]:
        """`released` exactly while the relay is energised."""
        return "released" if self.outputs["relay"] else "locked"

    def snapshot(self) -> dict[str, Any]:
        """The state fields of the contract that the machine owns."""
        alarm = self.alarm
        return {
            "door": self.door,
            "contact": self.contact if self.has_contact else "unknown",
            "alarm": "none" if alarm is None else alarm.state,
            "alarm_id": None if alarm is None else alarm.alarm_id,
            "alarm_test": bool(alarm and alarm.test),
            "lockdown": self.lockdown,
            "faults": sorted(self.faults),
        }

    # ------------------------------------------------------------- internals

    def _emit(self, etype: str, wall: datetime, *, test: bool = False, **fields: Any) -> None:
        self._fx.append(Emit(etype, wall, test, {k: v for k, v in fields.items() if v is not None}))

    def _set(self, name: OutputName, on: bool) -> None:
        if self.outputs[name] != on:
            self.outputs[name] = on
            self._fx.append(SetOutput(name, on))

    def _start(self, ev: Started) -> None:
        self.alarm = ev.alarm
        self.lockdown = ev.lockdown
        self._set("relay", False)
        self.relay_until = None
        void_from, void_to = ev.void or (None, None)
        self._emit("controller_started", ev.wall, void_from=void_from, void_to=void_to)
        if ev.alarm is not None:
            self._set("ack_led", ev.alarm.state == "acknowledged")
            self._fx.append(AlarmChanged(ev.alarm))
        for name, deb in self.inputs.items():
            deb.level = deb.raw = bool(ev.levels.get(name, False))
        if self.has_contact and "door" in ev.levels:
            self.contact = "open" if ev.levels["door"] else "closed"
            if self.contact == "open":
                self.held_deadline = ev.at + self.held_open_s
        if ev.levels.get("panic"):
            # a pressed button or a cut nc line at start-up is an alarm, never ignored
            self._panic_level(True, ev.at, ev.wall, ev.uid)

    def _edge(self, ev: Edge) -> None:
        deb = self.inputs[ev.name]
        deb.raw = ev.active
        deb.uid = ev.uid
        quiet = ev.at < deb.quiet_until
        deb.quiet_until = ev.at + DEBOUNCE_S
        if quiet or ev.active == deb.level:
            return
        deb.level = ev.active
        self._level(ev.name, ev.active, ev.at, ev.wall, ev.uid)

    def _tick(self, at: float, wall: datetime) -> None:
        for name, deb in self.inputs.items():
            if deb.raw != deb.level and at >= deb.quiet_until:
                deb.level = deb.raw
                deb.quiet_until = at + DEBOUNCE_S
                self._level(name, deb.level, at, wall, deb.uid)
        if self.relay_until is not None and at >= self.relay_until:
            self._relay_off(at, wall)
        if self.held_deadline is not None and at >= self.held_deadline:
            self.held_deadline = None
            self._emit("door_held_open", wall, seconds=self.held_open_s)
        if (self.panic_since is not None and "panic_line" not in self.faults
                and at >= self.panic_since + self.line_fault_s):
            self.faults.add("panic_line")
            self._emit("panic_line_fault", wall, seconds=self.line_fault_s)

    def _level(self, name: str, active: bool, at: float, wall: datetime, uid: str) -> None:
        if name == "panic":
            self._panic_level(active, at, wall, uid)
        elif name == "release":
            if active:
                self._release("button", at, wall, None)
        elif name == "rex":
            if active:
                self.last_rex = at
        elif name == "door" and self.has_contact:
            self._contact(active, at, wall)

    # ----------------------------------------------------------------- alarm

    def _panic_level(self, active: bool, at: float, wall: datetime, uid: str) -> None:
        if not active:
            self.panic_since = None
            if "panic_line" in self.faults:
                self.faults.discard("panic_line")
                self._emit("panic_line_ok", wall)
            return
        self.panic_since = at
        self._press(wall, uid or _new_alarm_id())

    def _press(self, wall: datetime, uid: str) -> None:
        alarm = self.alarm
        if alarm is not None and alarm.test:
            # a real press during a drill must never be swallowed as a drill repeat
            self._emit("alarm_resolved", wall, test=True, alarm_id=alarm.alarm_id,
                       by="superseded_by_panic")
            self._set("ack_led", False)
            alarm = None
        if alarm is None:
            self.alarm = AlarmRecord(alarm_id=uid, raised_at=wall)
            self._emit("panic", wall, alarm_id=uid)
        else:
            self.alarm = replace(alarm, presses=alarm.presses + 1)
            self._emit("panic_repeat", wall, alarm_id=alarm.alarm_id, presses=self.alarm.presses)
        self._fx.append(AlarmChanged(self.alarm))

    # ------------------------------------------------------------------ door

    def _release(self, source: str, at: float, wall: datetime, nonce: str | None) -> None:
        if self.lockdown:
            self._emit("release_blocked", wall, source=source, reason="lockdown", nonce=nonce)
            return
        if not self.outputs["relay"]:
            self.opened_during_release = self.contact == "open"
        self.relay_until = at + self.release_s
        self._set("relay", True)
        self._emit("door_released", wall, source=source, seconds=self.release_s, nonce=nonce)

    def _relay_off(self, at: float, wall: datetime) -> None:
        self.relay_until = None
        if self.outputs["relay"]:
            self._set("relay", False)
            self.relay_dropped_at = at
            self._emit("door_locked", wall)

    def _contact(self, is_open: bool, at: float, wall: datetime) -> None:
        self.contact = "open" if is_open else "closed"
        if is_open:
            self.held_deadline = at + self.held_open_s
            self._emit("door_opened", wall)
            if self.outputs["relay"]:
                self.opened_during_release = True
            elif (at - self.relay_dropped_at > FORCED_GRACE_S
                  and at - self.last_rex > REX_WINDOW_S and not self.inputs["rex"].level):
                self._emit("door_forced", wall)
            return
        self.held_deadline = None
        self._emit("door_closed", wall)
        if self.outputs["relay"] and self.opened_during_release:
            # one client at a time: the strike locks as soon as the door is shut again
            self._relay_off(at, wall)

    # ------------------------------------------------------------- commands

    def _reject(self, ev: CommandIn, reason: str) -> None:
        self._emit("command_rejected", ev.wall, cmd=ev.cmd, reason=reason, nonce=ev.nonce,
                   by=ev.by)

    def _command(self, ev: CommandIn) -> None:  # noqa: PLR0912 - one branch per command
        alarm = self.alarm
        if ev.cmd in ALARM_COMMANDS:
            if alarm is None:
                self._reject(ev, "no_open_alarm")
            elif ev.alarm_id != alarm.alarm_id:
                self._reject(ev, "alarm_id_mismatch")
            elif ev.cmd == "ack" and alarm.state == "acknowledged":
                self._reject(ev, "already_acknowledged")
            elif ev.cmd == "ack":
                self.alarm = replace(alarm, state="acknowledged", acknowledged_by=ev.by,
                                     acknowledged_at=ev.wall)
                self._set("ack_led", True)
                self._emit("alarm_acknowledged", ev.wall, test=alarm.test,
                           alarm_id=alarm.alarm_id, by=ev.by, nonce=ev.nonce)
                self._fx.append(AlarmChanged(self.alarm))
            else:
                self.alarm = None
                self._set("ack_led", False)
                self._emit("alarm_resolved", ev.wall, test=alarm.test, alarm_id=alarm.alarm_id,
                           by=ev.by, nonce=ev.nonce)
                self._fx.append(AlarmChanged(None))
        elif ev.cmd == "test":
            if alarm is not None:
                self._reject(ev, "alarm_open")
            else:
                uid = ev.uid or _new_alarm_id()
                self.alarm = AlarmRecord(alarm_id=uid, raised_at=ev.wall, test=True)
                self._emit("panic", ev.wall, test=True, alarm_id=uid, by=ev.by, nonce=ev.nonce)
                self._fx.append(AlarmChanged(self.alarm))
        elif ev.cmd == "lockdown":
            if self.lockdown:
                self._reject(ev, "already_in_lockdown")
            else:
                self.lockdown = True
                self._emit("lockdown_on", ev.wall, by=ev.by, nonce=ev.nonce)
                self._relay_off(ev.at, ev.wall)
        elif ev.cmd == "lift_lockdown":
            if not self.lockdown:
                self._reject(ev, "not_in_lockdown")
            else:
                self.lockdown = False
                self._emit("lockdown_off", ev.wall, by=ev.by, nonce=ev.nonce)
        elif not self.allow_remote_release:
            self._reject(ev, "remote_release_not_allowed")
        elif self.lockdown:
            self._reject(ev, "lockdown")
        else:
            self._release("remote", ev.at, ev.wall, ev.nonce)

    # ------------------------------------------------------------ neighbours

    def _neighbor(self, ev: NeighborAlarm) -> None:
        if ev.open:
            self.neighbors_open.add(ev.office)
        else:
            self.neighbors_open.discard(ev.office)
        self._set("neighbor_led", bool(self.neighbors_open))


__all__ = [
    "DEBOUNCE_S",
    "FORCED_GRACE_S",
    "REX_WINDOW_S",
    "AlarmChanged",
    "AlarmRecord",
    "CommandIn",
    "Edge",
    "Effect",
    "Emit",
    "Input",
    "InputName",
    "Machine",
    "NeighborAlarm",
    "OutputName",
    "SetOutput",
    "Started",
    "Tick",
]
