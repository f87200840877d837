"""The alarm side of the state machine: panic, repeats, guard commands, drills, line fault.

Door and lockdown rules are in test_machine_door.py, the properties in
test_machine_props.py.
"""

from __future__ import annotations

import uuid

import pytest

from controller.office.machine import AlarmChanged, AlarmRecord, Edge, Emit, Started
from tests.test_machine_support import (
    Driver,
    alarms,
    emits,
    new_id,
    one,
    outs,
    types,
    wall,
)


@pytest.fixture
def d() -> Driver:
    drv = Driver()
    drv.start()
    return drv


def test_start_reports_and_keeps_everything_off() -> None:
    drv = Driver()
    fx = drv.start(levels={"door": False})
    assert types(fx) == ["controller_started"]
    assert outs(fx) == []  # outputs start off; nothing to switch
    assert drv.m.outputs == {"relay": False, "ack_led": False, "neighbor_led": False}
    assert drv.m.snapshot() == {"door": "locked", "contact": "closed", "alarm": "none",
                                "alarm_id": None, "alarm_test": False, "lockdown": False,
                                "panic_input": "idle", "fire_alarm": False, "faults": []}
    assert drv.m.next_deadline() is None


def test_panic_press_is_silent_and_raises_one_alarm(d: Driver) -> None:
    uid = new_id()
    fx = d.edge("panic", True, 1.0, uid=uid)
    assert fx == [Emit("panic", wall(1.0), False, {"alarm_id": uid}),
                  AlarmChanged(AlarmRecord(alarm_id=uid, raised_at=wall(1.0)))]
    assert outs(fx) == []  # silent: no LED, no relay
    assert d.m.snapshot()["alarm"] == "active"
    assert d.m.snapshot()["alarm_id"] == uid
    assert types(d.edge("panic", False, 1.3)) == []  # letting go says nothing


def test_more_presses_count_up_and_never_raise_a_second_alarm(d: Driver) -> None:
    uid = new_id()
    d.edge("panic", True, 1.0, uid=uid)
    d.edge("panic", False, 1.2)
    for n, at in enumerate((2.0, 3.0, 4.0), start=2):
        fx = d.press("panic", at)
        assert types(fx) == ["panic_repeat"]
        assert one(fx, "panic_repeat").fields == {"alarm_id": uid, "presses": n}
        [rec] = alarms(fx)
        assert rec is not None and rec.presses == n and rec.alarm_id == uid
        assert outs(fx) == []


# -------------------------------------------------------------- commands


def test_ack_then_resolve(d: Driver) -> None:
    d.press("panic", 1.0)
    aid = d.alarm_id
    fx = d.cmd("ack", 5.0, alarm_id=aid, by="guard-anna", nonce="n-ack-000000000001")
    assert outs(fx) == [("ack_led", True)]
    ev = one(fx, "alarm_acknowledged")
    assert ev.fields == {"alarm_id": aid, "by": "guard-anna", "nonce": "n-ack-000000000001"}
    [rec] = alarms(fx)
    assert rec is not None and rec.state == "acknowledged"
    assert rec.acknowledged_by == "guard-anna" and rec.acknowledged_at == wall(5.0)
    assert d.m.snapshot()["alarm"] == "acknowledged"

    fx = d.press("panic", 6.0)  # a press after the ack: counted, LED stays on, still acked
    assert types(fx) == ["panic_repeat"] and outs(fx) == []
    assert d.m.snapshot()["alarm"] == "acknowledged"

    fx = d.cmd("resolve", 9.0, alarm_id=aid, by="guard-ben")
    assert outs(fx) == [("ack_led", False)]
    assert one(fx, "alarm_resolved").fields["by"] == "guard-ben"
    assert alarms(fx) == [None]
    assert d.m.snapshot()["alarm"] == "none" and d.m.snapshot()["alarm_id"] is None

    fx = d.press("panic", 12.0)  # the next press is a fresh alarm
    assert types(fx) == ["panic"]
    assert one(fx, "panic").fields["alarm_id"] != aid


def test_resolve_without_ack_is_allowed(d: Driver) -> None:
    d.press("panic", 1.0)
    fx = d.cmd("resolve", 2.0, alarm_id=d.alarm_id)
    assert types(fx) == ["alarm_resolved"] and outs(fx) == [] and alarms(fx) == [None]


@pytest.mark.parametrize(("setup", "cmd", "alarm_id", "reason"), [
    ("none", "ack", "some", "no_open_alarm"),
    ("none", "resolve", "some", "no_open_alarm"),
    ("alarm", "ack", "other", "alarm_id_mismatch"),
    ("alarm", "resolve", "other", "alarm_id_mismatch"),
    ("alarm", "ack", None, "alarm_id_mismatch"),
    ("acked", "ack", "same", "already_acknowledged"),
    ("alarm", "test", None, "alarm_open"),
    ("lockdown", "lockdown", None, "already_in_lockdown"),
    ("none", "lift_lockdown", None, "not_in_lockdown"),
    ("none", "release", None, "remote_release_not_allowed"),
])
def test_rejections(d: Driver, setup: str, cmd: str, alarm_id: str | None, reason: str) -> None:
    if setup in ("alarm", "acked"):
        d.press("panic", 1.0)
    if setup == "acked":
        d.cmd("ack", 2.0, alarm_id=d.alarm_id)
    if setup == "lockdown":
        d.cmd("lockdown", 2.0)
    before = (d.m.snapshot(), dict(d.m.outputs), d.m.alarm)
    aid = {"some": new_id(), "other": new_id(), "same": d.m.alarm and d.m.alarm.alarm_id,
           None: None}[alarm_id]
    fx = d.cmd(cmd, 3.0, alarm_id=aid, by="guard-x", nonce="nonce-reject-0001")
    assert fx == [Emit("command_rejected", wall(3.0), False,
                       {"cmd": cmd, "reason": reason, "nonce": "nonce-reject-0001",
                        "by": "guard-x"})]
    assert (d.m.snapshot(), d.m.outputs, d.m.alarm) == before  # a rejection changes nothing


def test_remote_release_in_lockdown_is_rejected_even_where_allowed() -> None:
    d = Driver(allow_remote_release=True)
    d.start()
    d.cmd("lockdown", 1.0)
    fx = d.cmd("release", 2.0)
    assert one(fx, "command_rejected").fields["reason"] == "lockdown"
    assert outs(fx) == [] and d.m.door == "locked"


def test_remote_release_where_allowed() -> None:
    d = Driver(allow_remote_release=True)
    d.start()
    fx = d.cmd("release", 1.0, nonce="nonce-release-001")
    assert outs(fx) == [("relay", True)]
    assert one(fx, "door_released").fields == {"source": "remote", "seconds": 5.0,
                                               "nonce": "nonce-release-001"}
    assert types(d.tick(6.0)) == ["door_locked"]


# ----------------------------------------------------------------- drills


def test_drill_is_an_alarm_marked_test(d: Driver) -> None:
    uid = new_id()
    fx = d.cmd("test", 1.0, by="guard-anna", nonce="nonce-drill-00001", uid=uid)
    ev = one(fx, "panic")
    assert ev.test is True
    assert ev.fields == {"alarm_id": uid, "by": "guard-anna", "nonce": "nonce-drill-00001"}
    assert alarms(fx) == [AlarmRecord(alarm_id=uid, raised_at=wall(1.0), test=True)]
    assert outs(fx) == []
    assert d.m.snapshot()["alarm_test"] is True
    fx = d.cmd("ack", 2.0, alarm_id=uid)
    assert one(fx, "alarm_acknowledged").test is True and outs(fx) == [("ack_led", True)]
    fx = d.cmd("resolve", 3.0, alarm_id=uid)
    assert one(fx, "alarm_resolved").test is True and outs(fx) == [("ack_led", False)]


@pytest.mark.parametrize("acked", [False, True])
def test_real_press_during_a_drill_is_a_real_alarm(d: Driver, acked: bool) -> None:
    drill = new_id()
    d.cmd("test", 1.0, uid=drill)
    if acked:
        d.cmd("ack", 2.0, alarm_id=drill)
    real = new_id()
    fx = d.edge("panic", True, 3.0, uid=real)
    assert types(fx) == ["alarm_resolved", "panic"]
    closed, raised = emits(fx, "alarm_resolved")[0], emits(fx, "panic")[0]
    assert closed.test is True and closed.fields == {"alarm_id": drill,
                                                    "by": "superseded_by_panic"}
    assert raised.test is False and raised.fields == {"alarm_id": real}
    # the help-is-coming light of the drill must not stay on for the real alarm
    assert outs(fx) == ([("ack_led", False)] if acked else [])
    assert d.m.snapshot()["alarm"] == "active" and d.m.snapshot()["alarm_test"] is False
    assert alarms(fx)[-1] == AlarmRecord(alarm_id=real, raised_at=wall(3.0))


# --------------------------------------------------------- line fault


def test_panic_line_fault_and_recovery(d: Driver) -> None:
    d.edge("panic", True, 10.0)
    assert d.m.next_deadline() == pytest.approx(70.0)
    assert types(d.tick(69.9)) == []
    fx = d.tick(70.0)
    assert types(fx) == ["panic_line_fault"] and outs(fx) == []
    assert d.m.snapshot()["faults"] == ["panic_input_active", "panic_line"]
    assert d.m.snapshot()["alarm"] == "active"  # the fault does not close the alarm
    assert d.m.next_deadline() is None
    assert types(d.tick(500.0)) == []  # reported once
    fx = d.edge("panic", False, 600.0)
    assert types(fx) == ["panic_line_ok"]
    assert d.m.snapshot()["faults"] == []


def test_short_presses_never_raise_a_line_fault(d: Driver) -> None:
    for at in range(0, 200, 10):
        d.press("panic", float(at), hold=2.0)
    assert d.tick(400.0) == [] and d.m.snapshot()["faults"] == []


def test_cut_nc_line_at_start_raises_the_alarm() -> None:
    drv = Driver()
    uid = new_id()
    fx = drv.start(at=3.0, levels={"panic": True}, uid=uid)
    assert types(fx) == ["controller_started", "panic"]
    assert one(fx, "panic").fields == {"alarm_id": uid}
    assert alarms(fx) == [AlarmRecord(alarm_id=uid, raised_at=wall(3.0))]
    assert outs(fx) == []
    assert types(drv.tick(63.0)) == ["panic_line_fault"]


def test_restored_alarm_and_lockdown_survive_a_restart() -> None:
    rec = AlarmRecord(alarm_id=new_id(), raised_at=wall(-100), presses=3, state="acknowledged",
                      acknowledged_by="guard-anna", acknowledged_at=wall(-50))
    drv = Driver()
    fx = drv.start(alarm=rec, lockdown=True)
    assert types(fx) == ["controller_started"]  # no second panic for a restored alarm
    assert alarms(fx) == [rec]  # re-published retained
    assert outs(fx) == [("ack_led", True)]
    snap = drv.m.snapshot()
    assert snap["alarm"] == "acknowledged" and snap["alarm_id"] == rec.alarm_id
    assert snap["lockdown"] is True
    fx = drv.press("panic", 1.0)
    assert one(fx, "panic_repeat").fields["presses"] == 4
    assert types(drv.cmd("resolve", 2.0, alarm_id=rec.alarm_id)) == ["alarm_resolved"]


def test_restored_active_alarm_keeps_the_led_off() -> None:
    rec = AlarmRecord(alarm_id=new_id(), raised_at=wall(-10))
    drv = Driver()
    fx = drv.start(alarm=rec)
    assert outs(fx) == [] and alarms(fx) == [rec]
    assert types(drv.cmd("ack", 1.0, alarm_id=rec.alarm_id)) == ["alarm_acknowledged"]


def test_press_settled_after_chatter_gets_a_uuid_alarm_id(d: Driver) -> None:
    """Regression: a press reported by the debounce settle (a Tick) used "alarm-<t>" as id.

    That id is not a UUID, so the daemon could not build the panic event and the
    alarm was lost. It now keeps the id of the edge that caused it.
    """
    d.edge("panic", True, 1.0)
    d.cmd("resolve", 2.0, alarm_id=d.alarm_id)
    d.edge("panic", False, 5.0)  # let go: reported at once, quiet until 5.05
    uid = new_id()
    assert d.edge("panic", True, 5.02, uid=uid) == []  # inside the quiet window
    assert d.m.next_deadline() == pytest.approx(5.07)
    fx = d.tick(5.07)
    assert types(fx) == ["panic"]
    alarm_id = one(fx, "panic").fields["alarm_id"]
    assert alarm_id == uid and str(uuid.UUID(alarm_id)) == uid


def test_inputs_without_uid_still_get_uuid_alarm_ids(d: Driver) -> None:
    fx = d.m.handle(Edge("panic", True, 1.0, wall(1.0)))
    uuid.UUID(one(fx, "panic").fields["alarm_id"])


# ------------------------------------------------------------ neighbours


def test_neighbour_led_on_while_any_neighbour_alarm_is_open(d: Driver) -> None:
    assert outs(d.neighbor("eg-102", True, 1.0)) == [("neighbor_led", True)]
    assert outs(d.neighbor("eg-103", True, 2.0)) == []
    assert outs(d.neighbor("eg-102", True, 2.5)) == []  # retained again: no change
    assert outs(d.neighbor("eg-102", False, 3.0)) == []  # eg-103 still open
    assert outs(d.neighbor("eg-103", False, 4.0)) == [("neighbor_led", False)]
    assert outs(d.neighbor("eg-104", False, 5.0)) == []
    assert d.m.outputs["ack_led"] is False  # a neighbour's alarm is not ours
    assert d.m.snapshot()["alarm"] == "none"


def test_neighbour_update_also_runs_due_timers(d: Driver) -> None:
    """Any input applies the deadlines that passed before it, in time order."""
    d.press("release", 1.0)
    fx = d.neighbor("eg-102", True, 7.0)
    assert types(fx) == ["door_locked"]
    assert outs(fx) == [("relay", False), ("neighbor_led", True)]


def test_start_announces_the_void_seq_range_after_a_crash() -> None:
    drv = Driver()
    fx = drv.m.handle(Started(0.0, wall(0.0), {}, None, False, new_id(), void=(11, 266)))
    assert one(fx, "controller_started").fields == {"void_from": 11, "void_to": 266}
    fx = Driver().start()
    assert one(fx, "controller_started").fields == {}
