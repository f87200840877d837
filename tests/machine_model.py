"""An independent safety model of the office machine, for property and mutation tests.

The model never reads the machine's internals to decide what is allowed: it
follows the inputs the test feeds (raw edges with their times, commands) and
the effects that come out, and checks each step against the contract
(CONTRACT.md §6, issue 16.11):

* the relay goes on, and a `door_released` is emitted, only for
  - the release input held at one level for `RELEASE_STABLE_S` (one release per
    activation; a button held at start-up is none),
  - a remote release command where `allow_remote_release` is set, not in lockdown,
  - the fire input held for `FIRE_STABLE_S` where `release_on_fire` is set;
* the relay is never on in lockdown, never longer than `release_s` after the
  release that justified it (a fire release: only while the fire input is on),
  and off after the door closed again when it was opened during the pulse;
* lockdown follows the commands exactly (and a fire lifts it and refuses it);
* the ack LED is lit exactly while an acknowledged alarm is open; a panic press
  switches nothing on; every effect is valid on the wire.

`run_scenario(factory, ...)` takes a machine factory so that the mutation check
(tests/test_machine_mutants.py) can run the same model against mutants.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from controller.office.alarm_codec import alarm_payload
from controller.office.machine import (
    FIRE_STABLE_S,
    RELEASE_STABLE_S,
    AlarmChanged,
    AlarmRecord,
    Effect,
    Emit,
    Machine,
    SetOutput,
)
from controller.protocol.messages import Event, Location, validate_event_fields
from tests.test_machine_support import Driver

EPS = 1e-9
LOC = Location(site="s", room="101")
INPUTS = ("panic", "release", "door", "rex", "fire")

_dt = st.one_of(st.floats(0.0, 0.08), st.floats(0.0, 12.0), st.just(0.0),
                st.sampled_from([RELEASE_STABLE_S, FIRE_STABLE_S]))
_step = st.one_of(
    st.tuples(st.just("edge"), st.sampled_from(INPUTS), st.booleans(), _dt),
    st.tuples(st.just("tick"), _dt),
    st.tuples(st.just("deadline")),
    st.tuples(st.just("cmd"),
              st.sampled_from(["ack", "resolve", "test", "lockdown", "lift_lockdown", "release"]),
              st.sampled_from(["current", "other", "none"]), _dt),
    st.tuples(st.just("neighbor"), st.sampled_from(["eg-102", "eg-103"]), st.booleans(), _dt),
    # a client let in: button held, door opened and shut again (makes the relock rule likely)
    st.tuples(st.just("visit"), st.floats(0.0, 3.0), st.floats(0.06, 3.0), _dt),
)
SCENARIOS = st.fixed_dictionaries({
    "has_contact": st.booleans(),
    "remote": st.booleans(),
    "release_on_fire": st.booleans(),
    "release_s": st.sampled_from([1.0, 5.0]),
    "start_levels": st.fixed_dictionaries({k: st.booleans() for k in INPUTS}),
    "steps": st.lists(_step, min_size=15, max_size=60),
})


def _wire_valid(fx: list[Effect]) -> None:
    """Every effect must be publishable: the daemon builds these exact models."""
    for e in fx:
        if isinstance(e, Emit):
            ev = Event(id=uuid.uuid4(), office="eg-101", seq=1, ts=e.wall, type=e.type,
                       test=e.test, **e.fields)
            assert validate_event_fields(ev) == [], (e.type, e.fields)
        elif isinstance(e, AlarmChanged):
            alarm_payload(e.alarm, "eg-101", LOC)


class _Stable:
    """A raw input and the level it holds once stable for `stable_s` (the spec, not the code)."""

    def __init__(self, stable_s: float, level: bool) -> None:
        self.stable_s = stable_s
        self.raw = self.level = level
        self.last_edge = float("-inf")

    def settle(self, at: float) -> None:
        if self.raw != self.level and at - self.last_edge >= self.stable_s - EPS:
            self.level = self.raw

    def edge(self, active: bool, at: float) -> None:
        self.settle(at)
        self.raw = active
        self.last_edge = at

    def held(self, at: float) -> bool:
        """Active and stable for long enough at `at`."""
        return self.raw and at - self.last_edge >= self.stable_s - EPS


class SafetyModel:
    """Checks every step's effects; `cmd`/`edge` announce the input of the step first."""

    def __init__(self, m: Machine, *, remote: bool, release_on_fire: bool, release_s: float,
                 has_contact: bool, levels: dict[str, bool]) -> None:
        self.m = m
        self.remote = remote
        self.release_on_fire = release_on_fire
        self.release_s = release_s
        self.has_contact = has_contact
        self.outputs = {"relay": False, "ack_led": False, "neighbor_led": False}
        self.alarm: AlarmRecord | None = None
        self.lockdown = False
        self.release = _Stable(RELEASE_STABLE_S, levels["release"])
        self.release_used = levels["release"]  # held at start: no release
        self.fire = _Stable(FIRE_STABLE_S, levels["fire"])
        self.timed_until = float("-inf")  # end of the pulse a justified release allows
        self.contact_open = has_contact and levels["door"]
        self.opened_in_pulse = False
        self.fire_lifted = False  # a fire settled in this step and lifted a lockdown

    # ------------------------------------------------------ step inputs

    def before(self, at: float) -> None:
        """Derived levels at the start of a step (the machine ticks first, too)."""
        was_fire = self.fire.level
        self.fire.settle(at)
        release_was = self.release.level
        self.release.settle(at)
        if release_was and not self.release.level:
            self.release_used = False  # let go (stably): the next activation may release
        if self.fire.level and not was_fire:
            self.fire_lifted = self.lockdown
            self.lockdown = False

    # ---------------------------------------------------------- checks

    def check(self, fx: list[Effect], at: float, *, edge: tuple[str, bool] | None = None,
              cmd: str | None = None) -> None:
        """The effects of one step at `at`, whose input was `edge` or `cmd` (or a tick).

        Releases are justified by the raw levels BEFORE this step's edge: the
        machine settles what is due first, then takes the edge.
        """
        self.before(at)
        self._check(fx, at, cmd)
        if edge is not None:
            name, active = edge
            if name == "release":
                self.release.edge(active, at)
            elif name == "fire":
                self.fire.edge(active, at)

    def _check(self, fx: list[Effect], at: float, cmd: str | None) -> None:
        m = self.m
        _wire_valid(fx)
        emitted = [e for e in fx if isinstance(e, Emit)]
        kinds = [e.type for e in emitted]
        fire_held = self.fire.level and self.release_on_fire
        for e in emitted:
            if e.type == "door_opened":
                self.contact_open = True
                if self.outputs["relay"]:
                    self.opened_in_pulse = True
            elif e.type == "door_closed":
                self.contact_open = False
            elif e.type in ("door_released", "release_blocked"):
                self._justify(e, at, cmd, fire_held)
        # a command takes effect after what the step's tick settled (the machine's order)
        if cmd == "lockdown":
            ok = not self.lockdown and not self.fire.level
            assert ("lockdown_on" in kinds) == ok, f"lockdown accepted={ok}, got {kinds}"
            self.lockdown = self.lockdown or ok
        elif cmd == "lift_lockdown":
            by_cmd = [e for e in emitted if e.type == "lockdown_off"
                      and e.fields.get("by") != "fire_alarm"]
            assert bool(by_cmd) == self.lockdown, kinds
            self.lockdown = False
        by_fire = [e for e in emitted if e.type == "lockdown_off"
                   and e.fields.get("by") == "fire_alarm"]
        assert bool(by_fire) == self.fire_lifted, f"fire lifted lockdown: {kinds}"
        self.fire_lifted = False
        for e in fx:
            if isinstance(e, SetOutput):
                assert self.outputs[e.name] != e.on, f"{e.name} switched to what it was"
                self.outputs[e.name] = e.on
                if e.name == "relay" and e.on:
                    assert "door_released" in kinds, "relay on without a release"
                    self.opened_in_pulse = self.contact_open
            elif isinstance(e, AlarmChanged):
                self.alarm = e.alarm
        assert self.outputs == m.outputs
        assert self.alarm == m.alarm
        assert m.snapshot()["lockdown"] == self.lockdown, "lockdown differs from the commands"
        if self.outputs["relay"]:
            assert not self.lockdown, "relay on in lockdown"
            assert fire_held or at < self.timed_until + EPS, "relay on longer than release_s"
            if "door_closed" in kinds and self.has_contact and not fire_held:
                assert not self.opened_in_pulse, "door shut again but the strike stays released"
        acked = self.alarm is not None and self.alarm.state == "acknowledged"
        assert self.outputs["ack_led"] == acked
        assert m.snapshot()["door"] == ("released" if self.outputs["relay"] else "locked")

    def _justify(self, e: Emit, at: float, cmd: str | None, fire_held: bool) -> None:
        source = e.fields.get("source")
        if source == "button":
            assert self.release.held(at), "button release without the input held stable"
            assert not self.release_used, "two releases from one press"
            self.release_used = True
            if e.type == "door_released":
                assert not self.lockdown, "button release in lockdown"
                self.timed_until = at + self.release_s
        elif source == "remote":
            assert cmd == "release", "remote release without a command"
            if e.type == "door_released":
                assert self.remote and not self.lockdown, "remote release not allowed here"
                self.timed_until = at + self.release_s
        else:
            assert source == "fire" and e.type == "door_released", e.fields
            assert fire_held, "fire release without a held fire input where configured"


def run_scenario(factory: Callable[..., Machine], *, has_contact: bool, remote: bool,
                 release_on_fire: bool, release_s: float, start_levels: dict[str, bool],
                 steps: list[tuple[Any, ...]]) -> None:
    """Drive one generated scenario through a machine from `factory`, checking every step."""
    m = factory(has_contact=has_contact, allow_remote_release=remote, release_s=release_s,
                held_open_s=10.0, line_fault_s=5.0, release_on_fire=release_on_fire)
    d = Driver(machine=m)
    model = SafetyModel(m, remote=remote, release_on_fire=release_on_fire, release_s=release_s,
                        has_contact=has_contact, levels=start_levels)
    t = 0.0
    model.check(d.start(at=t, levels=start_levels), t)
    for step in steps:
        kind = step[0]
        if kind == "deadline":
            due = d.m.next_deadline()
            t = max(t, due) if due is not None else t + 1.0
            model.check(d.tick(t), t)
            continue
        t += step[-1]
        if kind == "tick":
            model.check(d.tick(t), t)
        elif kind == "edge":
            _, name, active, _ = step
            if name == "panic" and active:
                model.check(d.tick(t), t)  # separate due timers from the press itself
                _check_press(d, model, t)
            else:
                model.check(d.edge(name, active, t), t, edge=(name, active))
        elif kind == "visit":
            _, open_after, open_for, _ = step
            t = _visit(d, model, t, open_after, open_for)
        elif kind == "cmd":
            _, cmd, which, _ = step
            aid = {"current": d.m.alarm and d.m.alarm.alarm_id,
                   "other": str(uuid.uuid4()), "none": None}[which]
            model.check(d.cmd(cmd, t, alarm_id=aid), t, cmd=cmd)
        else:
            _, office, is_open, _ = step
            model.check(d.neighbor(office, is_open, t), t)
    # however it ended: once every timer ran out, the relay is off (unless a fire holds it)
    end = t + FIRE_STABLE_S + release_s + 0.001
    while (due := d.m.next_deadline()) is not None and due <= end:
        model.check(d.tick(due), due)
    model.check(d.tick(end), end)
    assert d.m.outputs["relay"] is (model.fire.level and release_on_fire)


def _visit(d: Driver, model: SafetyModel, t: float, open_after: float, open_for: float) -> float:
    """Button held 0.1 s, the door opened `open_after` later and shut `open_for` after that."""
    timeline = [(t, "release", True), (t + 0.1, "release", False),
                (t + 0.1 + open_after, "door", True),
                (t + 0.1 + open_after + open_for, "door", False)]
    for at, name, active in timeline:
        while (due := d.m.next_deadline()) is not None and due <= at:
            model.check(d.tick(due), due)
        model.check(d.edge(name, active, at), at, edge=(name, active))  # type: ignore[arg-type]
    return timeline[-1][0]


def _check_press(d: Driver, model: SafetyModel, t: float) -> None:
    was_drill = d.m.alarm is not None and d.m.alarm.test
    before_open = d.m.alarm is not None and not d.m.alarm.test
    fx = d.edge("panic", True, t)
    switched = [(e.name, e.on) for e in fx if isinstance(e, SetOutput)]
    assert all(not on for _, on in switched), "a panic press switched something on"
    assert switched in ([], [("ack_led", False)] if was_drill else [])
    if before_open:
        assert "panic" not in [e.type for e in fx if isinstance(e, Emit)]  # never a second alarm
    model.check(fx, t, edge=("panic", True))
