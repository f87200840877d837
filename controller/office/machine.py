"""The door and alarm logic of one office, as a pure state machine.

Inputs go in with the time they happened (``at``: monotonic seconds, ``wall``:
UTC datetime); effects come out. Nothing here reads a clock, touches a pin,
a socket or a file, so every rule is tested with plain values (tests/
test_machine.py) and the daemon is only plumbing. Timers are deadlines: the
daemon asks `next_deadline()` and feeds a `Tick` when it passes.

Rules worth knowing (docs/behaviour.md has the full table):

* Debounce: the first edge of the panic, door and REX inputs is reported at
  once (no latency for a panic press: a 20 ms tap raises the alarm); further
  edges are ignored until the input has been quiet for `DEBOUNCE_S`, then the
  settled level is reported if it differs. The release and fire inputs must
  instead hold a level for `RELEASE_STABLE_S` / `FIRE_STABLE_S` before it
  counts, so a glitch on those lines never opens the door.
* The alarm is silent: a press changes no output. Only a guard's
  acknowledgement lights the ack LED; only a guard's resolve closes it.
* A panic input that is active (pressed, a cut nc wire) can detect no further
  press: it is reported at once (state `panic_input`, fault
  `panic_input_active`), and a restart with it still active is no new press.
* Door and relay rules live in `machine_door.py`.
* ``door_forced``: with a door contact, the door opens while the relay is off,
  not within `FORCED_GRACE_S` after a pulse timed out, and not while the REX
  sensor is active.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

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
    LineChanged,
    LineCondition,
    NeighborAlarm,
    NeighborsResync,
    OutputName,
    SetOutput,
    Started,
    Tick,
)
from controller.office.machine_door import (
    FIRE_STABLE_S,
    FORCED_GRACE_S,
    RELEASE_STABLE_S,
    DoorMachine,
)

DEBOUNCE_S = 0.05  # contact chatter shorter than this gives one event (issue 2: up to 50 ms)
NEIGHBOR_RESYNC_S = 3.0  # after a reconnect, a neighbour not confirmed open by then is dropped
WALK_TEST_REMIND_S = 86400.0  # an overdue walk test is reported again once a day
_STABLE_S = {"release": RELEASE_STABLE_S, "fire": FIRE_STABLE_S}


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
    stable_s: float = 0.0  # > 0: the level counts only after it held this long (no fast path)


class Machine(DoorMachine):
    """Door and alarm state of one office; `handle` is the only way in."""

    def __init__(self, *, release_s: float, held_open_s: float, line_fault_s: float,
                 has_contact: bool, allow_remote_release: bool, release_on_fire: bool = False,
                 walk_test_s: float = 0.0) -> None:
        """Take the timing rules; the state starts locked, quiet and unknown."""
        super().__init__(release_s=release_s, held_open_s=held_open_s, has_contact=has_contact,
                         release_on_fire=release_on_fire)
        self.line_fault_s = line_fault_s
        self.allow_remote_release = allow_remote_release
        self.walk_test_s = walk_test_s
        self.inputs: dict[str, _Debounce] = {
            n: _Debounce(stable_s=_STABLE_S.get(n, 0.0)) for n in INPUT_NAMES}
        self.panic_since: float | None = None
        self.line: LineCondition = "ok"
        self.alarm: AlarmRecord | None = None
        self.faults: set[str] = set()
        self.neighbors_open: set[str] = set()
        self.neighbors_unconfirmed: set[str] = set()
        self.resync_until: float | None = None
        self.last_walk_test: datetime | None = None
        self.walk_test_reminded: datetime | None = None

    # ------------------------------------------------------------ public API

    def handle(self, event: Input) -> list[Effect]:
        """Apply one input; return the effects, in the order they must happen."""
        self._fx = []
        if isinstance(event, Started):
            self._start(event)
            return self._fx
        self._tick(event.at, event.wall)
        if isinstance(event, Edge):
            self._edge(event)
        elif isinstance(event, CommandIn):
            self._command(event)
        elif isinstance(event, NeighborAlarm):
            self._neighbor(event)
        elif isinstance(event, NeighborsResync):
            self.neighbors_unconfirmed = set(self.neighbors_open)
            self.resync_until = event.at + NEIGHBOR_RESYNC_S
        elif isinstance(event, LineChanged):
            self._line(event.condition, event.wall)
        return self._fx

    def next_deadline(self) -> float | None:
        """The earliest monotonic time at which a Tick changes something."""
        times = [d.quiet_until for d in self.inputs.values() if d.raw != d.level]
        times += self._door_deadlines()
        if self.resync_until is not None:
            times.append(self.resync_until)
        if self.panic_since is not None and "panic_line" not in self.faults:
            times.append(self.panic_since + self.line_fault_s)
        return min(times) if times else None

    @property
    def door(self) -> str:
        """`released` exactly while the relay is energised."""
        return "released" if self.outputs["relay"] else "locked"

    @property
    def panic_active(self) -> bool:
        """The panic input reads active (pressed, or an nc wire cut)."""
        return self.inputs["panic"].level

    def panic_input(self) -> str:
        """`idle`, `active`, or a supervised line's fault (`short`, `cut`, `tamper`)."""
        if self.line != "ok":
            return self.line
        return "active" if self.panic_active else "idle"

    def snapshot(self) -> dict[str, Any]:
        """The state fields of the contract that the machine owns."""
        alarm = self.alarm
        faults = set(self.faults)
        if self.panic_input() != "idle":
            faults.add("panic_input_active")  # no further press can be detected
        return {
            "door": self.door,
            "contact": self.contact if self.has_contact else "unknown",
            "alarm": "none" if alarm is None else alarm.state,
            "alarm_id": None if alarm is None else alarm.alarm_id,
            "alarm_test": bool(alarm and alarm.test),
            "lockdown": self.lockdown,
            "panic_input": self.panic_input(),
            "fire_alarm": self.fire,
            "faults": sorted(faults),
        }

    # ------------------------------------------------------------- internals

    def _start(self, ev: Started) -> None:
        self.alarm = ev.alarm
        self.lockdown = ev.lockdown
        self._set("relay", False)
        self.relay_until = None
        void_from, void_to = ev.void or (None, None)
        self._emit("controller_started", ev.wall, void_from=void_from, void_to=void_to)
        self.last_walk_test = ev.last_walk_test or ev.wall  # a new install counts from now
        if ev.alarm is not None:
            self._set("ack_led", ev.alarm.state == "acknowledged")
            self._fx.append(AlarmChanged(ev.alarm))
        for name, deb in self.inputs.items():
            deb.level = deb.raw = bool(ev.levels.get(name, False))
        if self.has_contact and "door" in ev.levels:
            self.contact = "open" if ev.levels["door"] else "closed"
            if self.contact == "open":
                self.held_deadline = ev.at + self.held_open_s
        if ev.line != "ok":
            self._line(ev.line, ev.wall)
        if ev.levels.get("fire"):
            self.fire = False
            self._fire_level(True, ev.at, ev.wall)
        if ev.levels.get("panic"):
            if ev.panic_was_active:
                # still active from before the restart (a cut wire): the same condition,
                # not a new press - the guard has already seen (or resolved) it
                self.panic_since = ev.at
            else:
                # a pressed button or a cut nc line at start-up is an alarm, never ignored
                self._panic_level(True, ev.at, ev.wall, ev.uid)
        self._walk_test_check(ev.wall)

    def _edge(self, ev: Edge) -> None:
        deb = self.inputs[ev.name]
        deb.raw = ev.active
        deb.uid = ev.uid
        if deb.stable_s > 0:
            deb.quiet_until = ev.at + deb.stable_s  # reported by _tick once it held that long
            return
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
                deb.quiet_until = at + (0.0 if deb.stable_s else DEBOUNCE_S)
                self._level(name, deb.level, at, wall, deb.uid)
        self._door_tick(at, wall)
        if (self.panic_since is not None and "panic_line" not in self.faults
                and at >= self.panic_since + self.line_fault_s):
            self.faults.add("panic_line")
            self._emit("panic_line_fault", wall, seconds=self.line_fault_s, reason="held")
        if self.resync_until is not None and at >= self.resync_until:
            self.resync_until = None
            self.neighbors_open -= self.neighbors_unconfirmed
            self.neighbors_unconfirmed = set()
            self._set("neighbor_led", bool(self.neighbors_open))
        self._walk_test_check(wall)

    def _level(self, name: str, active: bool, at: float, wall: datetime, uid: str) -> None:
        if name == "panic":
            self._panic_level(active, at, wall, uid)
        elif name == "release":
            if active:
                self._release("button", at, wall, None)
        elif name == "fire":
            self._fire_level(active, at, wall)
        elif name == "door" and self.has_contact:
            self._contact(active, at, wall, rex_active=self.inputs["rex"].level)

    # ----------------------------------------------------------------- alarm

    def _panic_level(self, active: bool, at: float, wall: datetime, uid: str) -> None:
        if not active:
            self.panic_since = None
            if "panic_line" in self.faults:
                self.faults.discard("panic_line")
                self._emit("panic_line_ok", wall, reason="held")
            return
        self.panic_since = at
        self._press(wall, uid or _new_alarm_id())

    def _press(self, wall: datetime, uid: str) -> None:
        self.last_walk_test = wall  # any press proves the button and its wiring
        if "walk_test_due" in self.faults:
            self.faults.discard("walk_test_due")
            self.walk_test_reminded = None
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

    def _line(self, condition: LineCondition, wall: datetime) -> None:
        """A supervised line: short, cut and tamper are faults, told apart, never a press."""
        if condition == self.line:
            return
        was, self.line = self.line, condition
        self.faults -= {"panic_line_short", "panic_line_cut", "panic_line_tamper"}
        if condition == "ok":
            self._emit("panic_line_ok", wall, reason=was)
        else:
            self.faults.add(f"panic_line_{condition}")
            self._emit("panic_line_fault", wall, reason=condition)

    def _walk_test_check(self, wall: datetime) -> None:
        """Remind (event + fault) when no press proved the button for `walk_test_s`."""
        last = self.last_walk_test
        if self.walk_test_s <= 0 or last is None or wall < last + timedelta(
                seconds=self.walk_test_s):
            return
        reminded = self.walk_test_reminded
        if reminded is not None and wall < reminded + timedelta(seconds=WALK_TEST_REMIND_S):
            return
        self.walk_test_reminded = wall
        self.faults.add("walk_test_due")
        self._emit("walk_test_due", wall, seconds=round((wall - last).total_seconds()))

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
            elif self.fire:
                self._reject(ev, "fire_alarm")  # fire brigade access comes first
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
            self.neighbors_unconfirmed.discard(ev.office)
        else:
            self.neighbors_unconfirmed.discard(ev.office)
            self.neighbors_open.discard(ev.office)
        self._set("neighbor_led", bool(self.neighbors_open))


# inputs and effects are re-exported: the daemon and the tests name them from here
__all__ = [
    "DEBOUNCE_S", "FIRE_STABLE_S", "FORCED_GRACE_S", "NEIGHBOR_RESYNC_S", "RELEASE_STABLE_S",
    "AlarmChanged", "AlarmRecord", "CommandIn", "Edge", "Effect", "Emit", "Input", "InputName",
    "LineChanged", "Machine", "NeighborAlarm", "NeighborsResync", "OutputName", "SetOutput",
    "Started", "Tick",
]
