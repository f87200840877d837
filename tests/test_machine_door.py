"""The door side of the state machine: release pulse, contact, held open, forced, lockdown."""

from __future__ import annotations

import pytest

from controller.office.machine import FORCED_GRACE_S, RELEASE_STABLE_S
from tests.test_machine_support import Driver, one, outs, types


@pytest.fixture
def d() -> Driver:
    drv = Driver()
    drv.start()
    return drv


def test_release_button_pulses_the_relay_for_release_s(d: Driver) -> None:
    assert d.edge("release", True, 10.0) == []  # not at the edge: it must hold first
    assert d.m.next_deadline() == pytest.approx(10.0 + RELEASE_STABLE_S)
    fx = d.tick(10.0 + RELEASE_STABLE_S)
    assert outs(fx) == [("relay", True)]
    assert one(fx, "door_released").fields == {"source": "button", "seconds": 5.0}
    assert d.m.snapshot()["door"] == "released"
    assert types(d.edge("release", False, 10.3)) == []  # letting go changes nothing
    assert types(d.tick(10.3 + RELEASE_STABLE_S)) == []
    assert d.m.next_deadline() == pytest.approx(15.0 + RELEASE_STABLE_S)
    assert d.tick(14.99 + RELEASE_STABLE_S) == []
    fx = d.tick(15.0 + RELEASE_STABLE_S)
    assert types(fx) == ["door_locked"] and outs(fx) == [("relay", False)]
    assert d.m.snapshot()["door"] == "locked"
    assert d.m.next_deadline() is None


@pytest.mark.parametrize("width", [0.0001, 0.005, RELEASE_STABLE_S * 0.9])
def test_a_glitch_on_the_release_line_never_energises_the_strike(d: Driver, width: float) -> None:
    """Issue 16.3: a 100 us pulse used to open the door for the full release_s."""
    assert d.edge("release", True, 10.0) == []
    assert d.edge("release", False, 10.0 + width) == []
    assert d.run_until(20.0) == [] and d.m.door == "locked"
    # chatter that never holds a level long enough does nothing either
    t = 30.0
    for _ in range(20):
        d.edge("release", True, t)
        d.edge("release", False, t + RELEASE_STABLE_S / 2)
        t += RELEASE_STABLE_S
    assert d.run_until(40.0) == [] and d.m.door == "locked"


def test_a_release_that_holds_after_chatter_opens_once(d: Driver) -> None:
    for i in range(5):  # contact bounce, then held
        d.edge("release", i % 2 == 0, 1.0 + i * 0.002)
    fx = d.run_until(2.0)
    assert types(fx) == ["door_released"] and outs(fx) == [("relay", True)]


def test_holding_the_button_does_not_hold_the_door(d: Driver) -> None:
    d.edge("release", True, 1.0)
    d.tick(1.0 + RELEASE_STABLE_S)
    assert types(d.tick(6.0 + RELEASE_STABLE_S)) == ["door_locked"]
    assert d.tick(100.0) == [] and d.m.door == "locked"


def test_press_during_the_pulse_restarts_it(d: Driver) -> None:
    d.press("release", 0.0)
    fx = d.press("release", 3.0)
    assert types(fx) == ["door_released"]
    assert outs(fx) == []  # already on: no second switch
    assert d.m.next_deadline() == pytest.approx(8.0)
    assert d.tick(5.0) == [] and d.m.door == "released"
    assert types(d.tick(8.0)) == ["door_locked"]


def test_relay_drops_as_soon_as_the_door_closes_again(d: Driver) -> None:
    d.press("release", 0.0)
    fx = d.edge("door", True, 1.0)
    assert types(fx) == ["door_opened"]  # opened during the pulse: never forced
    assert outs(fx) == []
    fx = d.edge("door", False, 2.5)
    assert types(fx) == ["door_closed", "door_locked"]
    assert outs(fx) == [("relay", False)]
    assert d.m.next_deadline() is None  # the pulse timer is gone with it


def test_closing_a_door_that_was_not_opened_keeps_the_pulse() -> None:
    # a contact that reads "closed" again (bounce settled) without an opening in this pulse
    d = Driver()
    d.start(levels={"door": True})
    d.edge("door", False, 1.0)
    d.press("release", 2.0)
    assert d.m.door == "released"
    assert types(d.tick(6.9)) == [] and d.m.door == "released"
    assert types(d.tick(7.0)) == ["door_locked"]


def test_without_contact_the_pulse_always_runs_to_its_end() -> None:
    d = Driver(has_contact=False)
    d.start()
    d.press("release", 0.0)
    assert d.edge("door", True, 1.0) == []  # an unconfigured input says nothing
    assert d.edge("door", False, 2.0) == []
    assert d.m.door == "released"
    assert types(d.tick(5.0)) == ["door_locked"]


# ------------------------------------------------------------ held open


def test_held_open_reported_once(d: Driver) -> None:
    d.press("release", 0.0)
    d.edge("door", True, 1.0)
    assert d.m.next_deadline() == pytest.approx(5.0)  # the pulse first
    d.tick(5.0)
    assert d.m.next_deadline() == pytest.approx(31.0)
    assert d.tick(30.9) == []
    fx = d.tick(31.0)
    assert fx and types(fx) == ["door_held_open"]
    assert one(fx, "door_held_open").fields == {"seconds": 30.0}
    assert d.tick(100.0) == []
    assert types(d.edge("door", False, 120.0)) == ["door_closed"]
    d.press("release", 130.0)
    d.edge("door", True, 131.0)  # a new opening starts a new timer
    d.tick(136.0)
    assert types(d.tick(161.0)) == ["door_held_open"]


def test_door_closed_in_time_is_not_held_open(d: Driver) -> None:
    d.press("release", 0.0)
    d.edge("door", True, 1.0)
    d.edge("door", False, 20.0)
    assert d.tick(40.0) == [] and d.m.next_deadline() is None


def test_door_open_at_start_is_timed_from_the_start() -> None:
    d = Driver()
    fx = d.start(at=100.0, levels={"door": True})
    assert types(fx) == ["controller_started"]  # no forced alarm for the state we found
    assert d.m.snapshot()["contact"] == "open"
    assert types(d.tick(130.0)) == ["door_held_open"]


def test_no_held_open_without_contact() -> None:
    d = Driver(has_contact=False)
    d.start(levels={"door": True})
    assert d.m.snapshot()["contact"] == "unknown"
    assert d.m.next_deadline() is None


# --------------------------------------------------------------- forced


def _forced_after(setup: str) -> list[str]:
    """Open the door at t=100 after `setup`; return the event types of the opening."""
    d = Driver(allow_remote_release=True)
    d.start()
    if setup == "pulse_ended_long_ago":
        d.press("release", 50.0)
    elif setup == "pulse_ended_within_grace":
        d.press("release", 100.0 - 5.0 - FORCED_GRACE_S + 0.5)
    elif setup == "pulse_ended_just_after_grace":
        d.press("release", 100.0 - 5.0 - FORCED_GRACE_S - 0.1)
    elif setup == "pulse_running":
        d.press("release", 98.0)
    elif setup == "remote_pulse_running":
        d.cmd("release", 98.0)
    elif setup == "rex_active_now":
        d.edge("rex", True, 99.9)
    elif setup == "rex_released_just_before":
        d.press("rex", 99.0, hold=0.5)  # the exit sensor went idle before the door opened
    elif setup == "rex_long_ago":
        d.press("rex", 50.0)
    elif setup == "lockdown":
        d.cmd("lockdown", 90.0)
    d.run_until(99.0)
    return types(d.edge("door", True, 100.0))


@pytest.mark.parametrize(("setup", "forced"), [
    ("nothing", True),
    ("pulse_ended_long_ago", True),
    ("pulse_ended_within_grace", False),  # the latch held a moment after the relay dropped
    ("pulse_ended_just_after_grace", True),
    ("pulse_running", False),
    ("remote_pulse_running", False),
    ("rex_active_now", False),
    ("rex_released_just_before", True),  # issue 16.9: no 10 s window any more
    ("rex_long_ago", True),
    ("lockdown", True),
])
def test_door_forced_rule(setup: str, forced: bool) -> None:
    got = _forced_after(setup)
    assert got == (["door_opened", "door_forced"] if forced else ["door_opened"])


def test_forced_after_a_door_close_dropped_the_relay() -> None:
    d = Driver()
    d.start()
    d.press("release", 0.0)
    d.edge("door", True, 1.0)
    assert types(d.edge("door", False, 2.0)) == ["door_closed", "door_locked"]
    # issue 16.9: the pulse-time-out grace does not cover a relock on closing
    assert types(d.edge("door", True, 2.5)) == ["door_opened", "door_forced"]
    d.edge("door", False, 10.0)
    assert types(d.edge("door", True, 20.0)) == ["door_opened", "door_forced"]


def test_no_forced_while_the_rex_sensor_is_active() -> None:
    d = Driver()
    d.start()
    d.edge("rex", True, 10.0)
    assert types(d.edge("door", True, 15.0)) == ["door_opened"]  # REX still active: egress
    d.edge("door", False, 16.0)
    d.edge("rex", False, 17.0)
    assert types(d.edge("door", True, 18.0)) == ["door_opened", "door_forced"]


def test_forced_is_not_an_alarm_and_changes_no_output(d: Driver) -> None:
    fx = d.edge("door", True, 50.0)
    assert types(fx) == ["door_opened", "door_forced"]
    assert outs(fx) == [] and d.m.snapshot()["alarm"] == "none"


def test_no_forced_without_a_door_contact() -> None:
    d = Driver(has_contact=False)
    d.start()
    assert d.edge("door", True, 50.0) == []
    assert d.m.snapshot()["contact"] == "unknown"


# ------------------------------------------------------------- lockdown


def test_lockdown_blocks_the_release_button(d: Driver) -> None:
    fx = d.cmd("lockdown", 1.0, by="guard-anna", nonce="nonce-lock-000001")
    assert one(fx, "lockdown_on").fields == {"by": "guard-anna", "nonce": "nonce-lock-000001"}
    assert d.m.snapshot()["lockdown"] is True
    fx = d.press("release", 2.0)
    assert outs(fx) == []
    assert one(fx, "release_blocked").fields == {"source": "button", "reason": "lockdown"}
    assert d.m.door == "locked" and d.m.next_deadline() is None
    fx = d.cmd("lift_lockdown", 3.0, nonce="nonce-lift-000001")
    assert one(fx, "lockdown_off").fields["nonce"] == "nonce-lift-000001"
    assert outs(d.press("release", 4.0)) == [("relay", True)]


def test_lockdown_during_a_pulse_drops_the_relay_at_once(d: Driver) -> None:
    d.press("release", 0.0)
    fx = d.cmd("lockdown", 1.0)
    assert types(fx) == ["lockdown_on", "door_locked"]
    assert outs(fx) == [("relay", False)]
    assert d.m.next_deadline() is None
    assert d.tick(5.0) == []


def test_panic_works_in_lockdown(d: Driver) -> None:
    d.cmd("lockdown", 1.0)
    assert types(d.press("panic", 2.0)) == ["panic"]


# ------------------------------------------------------------ deadlines


def test_next_deadline_is_the_earliest_timer() -> None:
    d = Driver(line_fault_s=20.0)
    d.start()
    assert d.m.next_deadline() is None
    d.edge("panic", True, 0.0)  # line fault due at 20
    assert d.m.next_deadline() == pytest.approx(20.0)
    d.press("release", 1.0)  # pulse ends at 6
    assert d.m.next_deadline() == pytest.approx(6.0)
    d.edge("door", True, 2.0)  # held open at 32: later than the pulse
    d.edge("rex", True, 3.0)
    d.edge("rex", False, 3.01)  # inside the quiet window, which it extends to 3.06
    assert d.m.next_deadline() == pytest.approx(3.06)
    d.tick(3.06)
    assert d.m.next_deadline() == pytest.approx(6.0)
    d.tick(6.0)
    assert d.m.next_deadline() == pytest.approx(20.0)
    d.tick(20.0)
    assert d.m.next_deadline() == pytest.approx(32.0)
    d.tick(32.0)
    assert d.m.next_deadline() is None


def test_ticks_late_still_apply_every_due_timer_once(d: Driver) -> None:
    d.edge("panic", True, 0.0)
    d.press("release", 1.0)
    d.edge("door", True, 2.0)
    fx = d.tick(1000.0)  # the logic thread was stalled: everything due at once
    assert sorted(types(fx)) == ["door_held_open", "door_locked", "panic_line_fault"]
    assert d.tick(2000.0) == []


def test_release_button_held_at_start_does_not_open_the_door() -> None:
    d = Driver()
    fx = d.start(levels={"release": True})
    assert types(fx) == ["controller_started"] and outs(fx) == []
    assert d.m.door == "locked" and d.m.next_deadline() is None
    d.edge("release", False, 1.0)
    assert d.tick(1.0 + RELEASE_STABLE_S) == []  # letting go is no release
    d.edge("release", True, 2.0)
    assert outs(d.tick(2.0 + RELEASE_STABLE_S)) == [("relay", True)]  # a fresh press works
