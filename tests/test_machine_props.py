"""Properties of the state machine: debounce (issue 7 §4) and the safety invariants.

Debounce: generated bursts of contact bounce (chatter within 50 ms, any number
of edges, ending pressed or released) must give exactly one event per real
change. Invariants: over random sequences of edges, ticks, commands and
neighbour updates with non-decreasing times, the relay is only ever on for a
release, never in lockdown and never longer than `release_s` after the last
release; the ack LED is lit exactly while an acknowledged alarm is open; a
panic press never switches anything on; every effect is valid on the wire.
"""

from __future__ import annotations

import random
import uuid
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.office.alarm_codec import alarm_payload
from controller.office.machine import DEBOUNCE_S, AlarmChanged, AlarmRecord, Effect, Emit, SetOutput
from controller.protocol.messages import Event, Location, validate_event_fields
from tests.test_machine_support import Driver, types

CHANGE_EVENTS = {"door": {True: "door_opened", False: "door_closed"},
                 "panic": {True: "panic", False: None}}


def _burst(rng: random.Random, start: float, target: bool) -> list[tuple[float, bool]]:
    """Contact bounce towards `target`: 1..15 edges within 50 ms, the last one at target."""
    n = rng.randint(1, 15)
    offsets = sorted(rng.uniform(0.0, DEBOUNCE_S * 0.98) for _ in range(n - 1))
    times = [start] + [start + o for o in offsets]
    if rng.random() < 0.7:  # what gpiozero delivers: alternating levels
        levels = [target if (n - 1 - i) % 2 == 0 else not target for i in range(n)]
    else:  # raw reads: any levels, even repeats of the settled one
        levels = [rng.random() < 0.5 for _ in range(n - 1)] + [target]
    return list(zip(times, levels, strict=True))


def _run_bursts(name: str, seed: int, bursts: int) -> tuple[list[str], list[str]]:
    """Feed `bursts` alternating bursts to one input; return (expected, got) event lists."""
    rng = random.Random(seed)
    d = Driver(line_fault_s=3600.0)
    d.start()
    level, t = False, 1.0
    expected: list[str] = []
    got: list[str] = []
    watched = {e for e in CHANGE_EVENTS[name].values() if e} | {"panic_repeat"}

    def note(fx: list[Effect]) -> None:
        got.extend(e for e in types(fx) if e in watched)

    for _ in range(bursts):
        level = not level
        want = CHANGE_EVENTS[name][level]
        if want is not None:
            expected.append(want if want != "panic" or not expected else "panic_repeat")
        edges = _burst(rng, t, level)
        for at, active in edges:
            if rng.random() < 0.2:  # other timers may tick in the middle of a burst
                note(d.tick(at))
            note(d.edge(name, active, at))
        t = edges[-1][0] + DEBOUNCE_S + rng.uniform(0.001, 2.0)  # steady before the next change
        note(d.run_until(t - 0.0005))
    note(d.run_until(t + 1.0))
    return expected, got


def test_thousand_door_bounce_bursts_give_one_event_per_change() -> None:
    expected, got = _run_bursts("door", seed=7, bursts=1000)
    assert len(expected) == 1000
    assert got == expected


def test_thousand_panic_bounce_bursts_give_one_press_per_press() -> None:
    expected, got = _run_bursts("panic", seed=11, bursts=1000)
    assert len(expected) == 500  # presses; a release says nothing
    assert got == expected


def test_first_edge_is_reported_without_delay() -> None:
    d = Driver()
    d.start()
    assert types(d.edge("panic", True, 10.0)) == ["panic"]  # no 50 ms wait for a panic
    assert types(d.edge("panic", False, 10.01)) == []
    assert types(d.edge("panic", True, 10.02)) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(st.floats(0.0, DEBOUNCE_S * 0.98), max_size=12),
                          st.floats(DEBOUNCE_S * 1.01, 5.0)), min_size=1, max_size=30))
def test_bounce_property_door(bursts: list[tuple[list[float], float]]) -> None:
    d = Driver()
    d.start()
    level, t, got = False, 1.0, []
    for offsets, gap in bursts:
        level = not level
        times = [t, *sorted(t + o for o in offsets)]
        n = len(times)
        for i, at in enumerate(times):  # alternate, ending at the new level
            got += types(d.edge("door", level if (n - 1 - i) % 2 == 0 else not level, at))
        t = times[-1] + gap
        got += types(d.run_until(t - 1e-6))
    got += types(d.run_until(t + 60))
    changes = [e for e in got if e in ("door_opened", "door_closed")]
    assert changes == ["door_opened", "door_closed"] * (len(bursts) // 2) + (
        ["door_opened"] if len(bursts) % 2 else [])


# ---------------------------------------------------------------- invariants

_dt = st.one_of(st.floats(0.0, 0.08), st.floats(0.0, 12.0), st.just(0.0))
_step = st.one_of(
    st.tuples(st.just("edge"), st.sampled_from(["panic", "release", "door", "rex"]),
              st.booleans(), _dt),
    st.tuples(st.just("tick"), _dt),
    st.tuples(st.just("deadline")),
    st.tuples(st.just("cmd"),
              st.sampled_from(["ack", "resolve", "test", "lockdown", "lift_lockdown", "release"]),
              st.sampled_from(["current", "other", "none"]), _dt),
    st.tuples(st.just("neighbor"), st.sampled_from(["eg-102", "eg-103"]), st.booleans(), _dt),
)

LOC = Location(site="s", room="101")


def _wire_valid(fx: list[Effect]) -> None:
    """Every effect must be publishable: the daemon builds these exact models."""
    for e in fx:
        if isinstance(e, Emit):
            ev = Event(id=uuid.uuid4(), office="eg-101", seq=1, ts=e.wall, type=e.type,
                       test=e.test, **e.fields)
            assert validate_event_fields(ev) == [], (e.type, e.fields)
        elif isinstance(e, AlarmChanged):
            alarm_payload(e.alarm, "eg-101", LOC)


class Invariants:
    """An independent model of the outputs, built only from the effects."""

    def __init__(self, d: Driver) -> None:
        self.d = d
        self.outputs = {"relay": False, "ack_led": False, "neighbor_led": False}
        self.alarm: AlarmRecord | None = None
        self.last_release = float("-inf")

    def apply(self, fx: list[Effect], at: float) -> None:
        m = self.d.m
        _wire_valid(fx)
        released = "door_released" in types(fx)
        if released:
            self.last_release = at
        for e in fx:
            if isinstance(e, SetOutput):
                assert self.outputs[e.name] != e.on, f"{e.name} switched to what it was"
                self.outputs[e.name] = e.on
                if e.name == "relay" and e.on:
                    assert released, "relay on without a release"
            elif isinstance(e, AlarmChanged):
                self.alarm = e.alarm
        assert self.outputs == m.outputs
        assert self.alarm == m.alarm
        if self.outputs["relay"]:
            assert not m.lockdown, "relay on in lockdown"
            assert at < self.last_release + m.release_s, "relay on longer than release_s"
        acked = self.alarm is not None and self.alarm.state == "acknowledged"
        assert self.outputs["ack_led"] == acked
        assert m.snapshot()["door"] == ("released" if self.outputs["relay"] else "locked")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(has_contact=st.booleans(), remote=st.booleans(), release_s=st.sampled_from([1.0, 5.0]),
       start_levels=st.fixed_dictionaries({k: st.booleans() for k in
                                           ("panic", "release", "door", "rex")}),
       steps=st.lists(_step, min_size=15, max_size=60))
def test_safety_invariants(has_contact: bool, remote: bool, release_s: float,
                           start_levels: dict[str, bool], steps: list[tuple[Any, ...]]) -> None:
    d = Driver(has_contact=has_contact, allow_remote_release=remote, release_s=release_s,
               held_open_s=10.0, line_fault_s=5.0)
    inv = Invariants(d)
    t = 0.0
    inv.apply(d.start(at=t, levels=start_levels), t)
    for step in steps:
        kind = step[0]
        if kind == "deadline":
            due = d.m.next_deadline()
            t = max(t, due) if due is not None else t + 1.0
            inv.apply(d.tick(t), t)
            continue
        t += step[-1]
        if kind == "tick":
            inv.apply(d.tick(t), t)
        elif kind == "edge":
            _, name, active, _ = step
            if name == "panic" and active:
                inv.apply(d.tick(t), t)  # separate due timers from the press itself
                was_drill = d.m.alarm is not None and d.m.alarm.test
                before_open = d.m.alarm is not None and not d.m.alarm.test
                fx = d.edge(name, active, t)
                switched = [(e.name, e.on) for e in fx if isinstance(e, SetOutput)]
                assert all(not on for _, on in switched), "a panic press switched something on"
                assert switched in ([], [("ack_led", False)] if was_drill else [])
                if before_open:
                    assert "panic" not in types(fx)  # never a second alarm
                inv.apply(fx, t)
            else:
                inv.apply(d.edge(name, active, t), t)
        elif kind == "cmd":
            _, cmd, which, _ = step
            aid = {"current": d.m.alarm and d.m.alarm.alarm_id,
                   "other": str(uuid.uuid4()), "none": None}[which]
            inv.apply(d.cmd(cmd, t, alarm_id=aid), t)
        else:
            _, office, is_open, _ = step
            inv.apply(d.neighbor(office, is_open, t), t)
    # and however it ended, the relay is off once release_s has passed without a release
    end = t + release_s + 0.001
    inv.apply(d.run_until(end), end)
    assert d.m.outputs["relay"] is False


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 0.2), st.booleans()), max_size=60),
       st.lists(st.floats(0.0, 0.2), max_size=20))
def test_any_edge_sequence_settles_on_the_last_level(edges: list[tuple[float, bool]],
                                                     ticks: list[float]) -> None:
    """Whatever the chatter: reports alternate; once quiet, the reported level is the real one."""
    d = Driver()
    d.start()
    t, got = 1.0, []
    tick_at = sorted(1.0 + x for x in ticks)
    last = False
    for dt, active in edges:
        t += dt
        while tick_at and tick_at[0] <= t:
            got += types(d.tick(tick_at.pop(0)))
        got += types(d.edge("door", active, t))
        last = active
    got += types(d.run_until(t + 1.0))
    changes = [e for e in got if e in ("door_opened", "door_closed")]
    assert all(a != b for a, b in pairwise(changes))  # strictly alternate
    if changes:
        assert changes[-1] == ("door_opened" if last else "door_closed")
    assert d.m.snapshot()["contact"] == ("open" if last else "closed")
    assert changes == [] or changes[0] == "door_opened"
