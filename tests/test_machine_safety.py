"""Issue 16 on the state machine: cut wire, supervised line, neighbours, walk test, fire."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.office.machine import (
    FIRE_STABLE_S,
    NEIGHBOR_RESYNC_S,
    WALK_TEST_REMIND_S,
    AlarmRecord,
    LineChanged,
    NeighborsResync,
)
from tests.test_machine_support import Driver, one, outs, types, wall


@pytest.fixture
def d() -> Driver:
    drv = Driver()
    drv.start()
    return drv


# --------------------------------------------------------- 16.10 cut wire


def test_an_active_panic_input_is_in_the_state_at_once(d: Driver) -> None:
    d.edge("panic", True, 10.0)  # pressed, or the nc wire cut
    snap = d.m.snapshot()
    assert snap["panic_input"] == "active"
    assert "panic_input_active" in snap["faults"]  # not only after line_fault_s
    d.edge("panic", False, 10.5)
    d.tick(11.0)
    assert d.m.snapshot()["panic_input"] == "idle"
    assert d.m.snapshot()["faults"] == []


def test_a_restart_with_the_wire_still_cut_is_not_another_press() -> None:
    aid = "7d6c5b4a-0000-4000-8000-000000000001"
    d = Driver()
    fx = d.start(levels={"panic": True}, alarm=AlarmRecord(aid, wall(0.0)), panic_was_active=True)
    assert "panic_repeat" not in types(fx) and "panic" not in types(fx)
    assert d.m.alarm is not None and d.m.alarm.presses == 1
    assert d.m.snapshot()["panic_input"] == "active"
    # an activation that was not there before the restart still counts
    fresh = Driver()
    assert "panic_repeat" in types(fresh.start(levels={"panic": True},
                                               alarm=AlarmRecord(aid, wall(0.0))))


def test_after_a_resolve_with_the_line_open_a_restart_raises_nothing() -> None:
    d = Driver()
    fx = d.start(levels={"panic": True}, panic_was_active=True)
    assert types(fx) == ["controller_started"]
    assert d.m.alarm is None
    assert d.m.snapshot()["panic_input"] == "active"  # the guard sees: no press detectable
    assert types(d.run_until(61.0)) == ["panic_line_fault"]  # and the held-line fault follows


# ------------------------------------------------------ 16.4 supervised line


@pytest.mark.parametrize("condition", ["short", "cut", "tamper"])
def test_supervised_line_faults_are_told_apart_and_are_no_press(d: Driver,
                                                                 condition: str) -> None:
    fx = d.m.handle(LineChanged(condition, 5.0, wall(5.0)))  # type: ignore[arg-type]
    assert one(fx, "panic_line_fault").fields == {"reason": condition}
    assert outs(fx) == [] and d.m.alarm is None
    snap = d.m.snapshot()
    assert snap["panic_input"] == condition
    assert f"panic_line_{condition}" in snap["faults"] and "panic_input_active" in snap["faults"]
    fx = d.m.handle(LineChanged("ok", 6.0, wall(6.0)))
    assert one(fx, "panic_line_ok").fields == {"reason": condition}
    assert d.m.snapshot()["faults"] == [] and d.m.snapshot()["panic_input"] == "idle"


def test_a_line_fault_changing_kind_replaces_the_fault(d: Driver) -> None:
    d.m.handle(LineChanged("short", 5.0, wall(5.0)))
    fx = d.m.handle(LineChanged("cut", 6.0, wall(6.0)))
    assert one(fx, "panic_line_fault").fields == {"reason": "cut"}
    assert [f for f in d.m.snapshot()["faults"] if f.startswith("panic_line")] == [
        "panic_line_cut"]


# ------------------------------------------------------- 16.5 neighbours


def test_a_neighbour_resolved_while_offline_is_dropped_after_a_reconnect(d: Driver) -> None:
    d.neighbor("eg-102", True, 1.0)
    d.neighbor("eg-103", True, 1.0)
    assert d.m.outputs["neighbor_led"] is True
    d.m.handle(NeighborsResync(10.0, wall(10.0)))
    d.neighbor("eg-103", True, 10.05)  # only eg-103's retained alarm comes back
    assert d.m.outputs["neighbor_led"] is True
    d.run_until(10.0 + NEIGHBOR_RESYNC_S)
    assert d.m.neighbors_open == {"eg-103"} and d.m.outputs["neighbor_led"] is True
    d.m.handle(NeighborsResync(20.0, wall(20.0)))
    fx = d.run_until(20.0 + NEIGHBOR_RESYNC_S)  # nothing comes back: the LED goes off
    assert outs(fx) == [("neighbor_led", False)]


def test_a_confirmed_neighbour_keeps_the_led_steady_through_a_resync(d: Driver) -> None:
    d.neighbor("eg-102", True, 1.0)
    d.m.handle(NeighborsResync(10.0, wall(10.0)))
    assert outs(d.neighbor("eg-102", True, 10.01)) == []
    assert outs(d.run_until(20.0)) == []  # never blinked off


# ------------------------------------------------------------ walk test


def test_walk_test_reminder_is_due_after_the_interval_and_cleared_by_a_press() -> None:
    d = Driver(walk_test_s=30 * 86400.0)
    d.start(at=0.0)
    day = 86400.0
    assert "walk_test_due" not in types(d.tick(29 * day))
    fx = d.tick(30 * day + 1)
    assert one(fx, "walk_test_due").fields["seconds"] == 30 * 86400 + 1
    assert "walk_test_due" in d.m.snapshot()["faults"]
    assert types(d.tick(30 * day + 3600)) == []  # not every tick
    assert types(d.tick(30 * day + 1 + WALK_TEST_REMIND_S)) == ["walk_test_due"]  # daily
    d.press("panic", 32 * day)
    assert "walk_test_due" not in d.m.snapshot()["faults"]
    assert d.m.last_walk_test == wall(32 * day)


def test_walk_test_counts_from_the_last_press_across_a_restart() -> None:
    d = Driver(walk_test_s=86400.0)
    fx = d.start(last_walk_test=wall(0.0) - timedelta(days=2))
    assert "walk_test_due" in types(fx)
    fresh = Driver(walk_test_s=86400.0)
    assert "walk_test_due" not in types(fresh.start())  # a new install counts from now


def test_no_walk_test_reminder_when_off(d: Driver) -> None:
    assert "walk_test_due" not in types(d.tick(400 * 86400.0))


# ----------------------------------------------------------------- fire


def fire(d: Driver, active: bool, at: float) -> list:
    d.edge("fire", active, at)
    return d.tick(at + FIRE_STABLE_S)


def test_fire_alarm_lifts_lockdown_and_blocks_a_new_one(d: Driver) -> None:
    d.cmd("lockdown", 1.0)
    fx = fire(d, True, 2.0)
    assert types(fx) == ["fire_alarm_on", "lockdown_off"]
    assert one(fx, "lockdown_off").fields == {"by": "fire_alarm"}
    assert outs(fx) == []  # no release: not configured
    assert d.m.snapshot()["fire_alarm"] is True and d.m.lockdown is False
    assert one(d.cmd("lockdown", 3.0), "command_rejected").fields["reason"] == "fire_alarm"
    assert types(d.press("release", 4.0)) == ["door_released"]  # the button works again
    assert types(fire(d, False, 20.0)) == ["fire_alarm_off"]
    assert types(d.cmd("lockdown", 30.0)) == ["lockdown_on"]


def test_fire_releases_the_door_only_where_configured_and_holds_it() -> None:
    d = Driver(release_on_fire=True)
    d.start()
    fx = fire(d, True, 2.0)
    assert outs(fx) == [("relay", True)]
    assert one(fx, "door_released").fields == {"source": "fire", "seconds": 0}
    d.edge("door", True, 3.0)
    d.edge("door", False, 4.0)  # closing does not relock during a fire
    assert d.m.door == "released"
    d.press("release", 5.0)
    d.run_until(100.0)
    assert d.m.door == "released"  # no release_s time-out either
    fx = fire(d, False, 200.0)
    assert types(fx) == ["fire_alarm_off", "door_locked"] and outs(fx) == [("relay", False)]


def test_a_glitch_on_the_fire_input_does_nothing() -> None:
    d = Driver(release_on_fire=True)
    d.start()
    d.edge("fire", True, 1.0)
    d.edge("fire", False, 1.0 + FIRE_STABLE_S / 2)
    assert d.run_until(10.0) == [] and d.m.door == "locked"


def test_fire_active_at_start_is_a_fire() -> None:
    d = Driver(release_on_fire=True)
    fx = d.start(levels={"fire": True}, lockdown=True)
    assert types(fx) == ["controller_started", "fire_alarm_on", "lockdown_off", "door_released"]
    assert d.m.door == "released"
