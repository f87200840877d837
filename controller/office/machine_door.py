"""The door half of the office state machine: strike relay, contact, fire input.

Pure like `machine.py` (which builds on this class): times come in as
arguments, effects go out as values. Kept apart so each rule reads on one
screen and the relay rules are in one place for the mutation check
(tests/test_machine_mutants.py).

Relay rules (docs/behaviour.md):

* The relay is energised only by a release: the button held stable for
  `RELEASE_STABLE_S` (a glitch on the line never opens the door), a verified
  remote release where allowed, or - only where the site's fire-safety concept
  says so (`release_on_fire`) - an active fire-alarm input.
* A button or remote release lasts `release_s`, or ends as soon as the door is
  shut again after it was opened during the release. Never in lockdown.
* A fire release holds while the fire input is active and drops when it clears.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from controller.office.inputs import Effect, Emit, OutputName, SetOutput

RELEASE_STABLE_S = 0.015  # a release needs a stable level this long (issue 16: 10-20 ms)
FIRE_STABLE_S = 0.2  # a fire panel's relay contact is steady; 200 ms rejects induced glitches
FORCED_GRACE_S = 2.0  # after a pulse TIMES OUT the latch may still give: no forced alarm


class DoorMachine:
    """Outputs and door state; `Machine` adds inputs, alarm and commands on top."""

    def __init__(self, *, release_s: float, held_open_s: float, has_contact: bool,
                 release_on_fire: bool) -> None:
        """Locked, relay off, contact unknown."""
        self.release_s = release_s
        self.held_open_s = held_open_s
        self.has_contact = has_contact
        self.release_on_fire = release_on_fire
        self.outputs: dict[str, bool] = {"relay": False, "ack_led": False, "neighbor_led": False}
        self.relay_until: float | None = None  # None while the relay is off or fire-held
        self.relay_timed_out_at = float("-inf")
        self.opened_during_release = False
        self.contact: Literal["open", "closed", "unknown"] = "unknown"
        self.held_deadline: float | None = None
        self.lockdown = False
        self.fire = False
        self._fx: list[Effect] = []

    # ------------------------------------------------------------ effects

    def _emit(self, etype: str, wall: datetime, *, test: bool = False, **fields: Any) -> None:
        self._fx.append(Emit(etype, wall, test, {k: v for k, v in fields.items() if v is not None}))

    def _set(self, name: OutputName, on: bool) -> None:
        if self.outputs[name] != on:
            self.outputs[name] = on
            self._fx.append(SetOutput(name, on))

    @property
    def fire_held(self) -> bool:
        """The relay is held open by the fire input (release_on_fire)."""
        return self.fire and self.release_on_fire

    # ------------------------------------------------------------ timers

    def _door_deadlines(self) -> list[float]:
        return [t for t in (self.relay_until, self.held_deadline) if t is not None]

    def _door_tick(self, at: float, wall: datetime) -> None:
        if self.relay_until is not None and at >= self.relay_until:
            self._relay_off(at, wall, timed_out=True)
        if self.held_deadline is not None and at >= self.held_deadline:
            self.held_deadline = None
            self._emit("door_held_open", wall, seconds=self.held_open_s)

    # ----------------------------------------------------------- release

    def _release(self, source: str, at: float, wall: datetime, nonce: str | None) -> None:
        if self.lockdown:
            self._emit("release_blocked", wall, source=source, reason="lockdown", nonce=nonce)
            return
        if self.fire_held:
            return  # already held open for as long as the fire alarm lasts
        if not self.outputs["relay"]:
            self.opened_during_release = self.contact == "open"
        self.relay_until = at + self.release_s
        self._set("relay", True)
        self._emit("door_released", wall, source=source, seconds=self.release_s, nonce=nonce)

    def _relay_off(self, at: float, wall: datetime, *, timed_out: bool = False) -> None:
        self.relay_until = None
        if self.outputs["relay"]:
            self._set("relay", False)
            if timed_out:
                self.relay_timed_out_at = at
            self._emit("door_locked", wall)

    # ----------------------------------------------------------- contact

    def _contact(self, is_open: bool, at: float, wall: datetime, *, rex_active: bool) -> None:
        self.contact = "open" if is_open else "closed"
        if is_open:
            self.held_deadline = at + self.held_open_s
            self._emit("door_opened", wall)
            if self.outputs["relay"]:
                self.opened_during_release = True
            elif at - self.relay_timed_out_at > FORCED_GRACE_S and not rex_active:
                # the grace covers only a pulse that timed out while someone pushed the
                # door; a door relocked on closing and opened again is forced (issue 16)
                self._emit("door_forced", wall)
            return
        self.held_deadline = None
        self._emit("door_closed", wall)
        if self.outputs["relay"] and self.opened_during_release and not self.fire_held:
            # one client at a time: the strike locks as soon as the door is shut again
            self._relay_off(at, wall)

    # -------------------------------------------------------------- fire

    def _fire_level(self, active: bool, at: float, wall: datetime) -> None:
        if active == self.fire:
            return
        self.fire = active
        if active:
            self._emit("fire_alarm_on", wall)
            if self.lockdown:
                # the fire brigade and evacuees come first: lockdown is lifted, not paused
                self.lockdown = False
                self._emit("lockdown_off", wall, by="fire_alarm")
            if self.release_on_fire:
                self.relay_until = None
                self._set("relay", True)
                self._emit("door_released", wall, source="fire", seconds=0)
            return
        self._emit("fire_alarm_off", wall)
        if self.release_on_fire:
            self._relay_off(at, wall, timed_out=True)
