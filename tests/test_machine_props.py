"""Properties of the state machine: debounce (issue 7 §4) and the safety invariants.

Debounce: generated bursts of contact bounce (chatter within 50 ms, any number
of edges, ending pressed or released) must give exactly one event per real
change. Invariants (tests/machine_model.py, issue 16.11): over random
sequences of edges, ticks, commands and neighbour updates, the relay goes on
only for a release input held stable, a remote release where allowed and not
in lockdown, or a fire input where configured; it is never on in lockdown, and
never longer than `release_s` after the release that justified it; the ack
LED is lit exactly while an acknowledged alarm is open; a panic press never
switches anything on; every effect is valid on the wire.
tests/test_machine_mutants.py shows these invariants kill every relay-rule mutant.
"""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.office.machine import DEBOUNCE_S, Effect
from tests.machine_model import SCENARIOS, run_scenario
from tests.test_machine_support import Driver, make, types

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
# The safety model (tests/machine_model.py) is independent of the machine: it
# sees only the inputs the test feeds and the effects that come out.

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=SCENARIOS)
def test_safety_invariants(scenario: dict[str, Any]) -> None:
    run_scenario(make, **scenario)


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
