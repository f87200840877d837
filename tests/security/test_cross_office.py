"""#17.1: an office cannot touch another office's alarm, whatever it sends on its own topics.

o-02 (a real daemon) raises a real alarm; o-01, its neighbour, reads the alarm id
from o-02's retained alarm (its ACL allows that) and tries all three ways to
silence it on its *own* topics. The alarm must stay active, real and open,
each attempt must show up as a security event, and the guard's own
acknowledgement must still work.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from controller.protocol.messages import Alarm, Location, utcnow
from tests.security.fleet import Stack
from tests.test_deploy_support import T, wait_for

pytestmark = pytest.mark.slow


def _victim_alarm(stack: Stack) -> dict[str, Any] | None:
    return next((a for a in stack.get("/api/alarms", open="true") if a["office"] == "o-02"), None)


def _mismatches(stack: Stack) -> int:
    return int(stack.get("/api/security")["counts"]["alarm_office_mismatch"])


def test_cross_office_attacks_leave_the_victims_alarm_untouched(stack: Stack) -> None:
    attacker = stack.office("o-01")
    attacker.c.subscribe(T.alarm("o-02"), qos=1)
    presser = stack.office("tester")
    assert presser.publish(T.sim_input("o-02", "panic"), b"press") < 0x80
    presser.publish(T.sim_input("o-02", "panic"), b"release")
    alarm = wait_for(lambda: _victim_alarm(stack), 20, "o-02's alarm at the guard")
    # what a compromised neighbour sees: the victim's retained alarm, with its id
    seen = wait_for(lambda: [json.loads(p) for t, p in attacker.messages
                             if t == T.alarm("o-02") and p], 10, "o-02's retained alarm")
    victim_id = seen[-1]["alarm_id"]
    assert victim_id == alarm["alarm_id"]
    before = _mismatches(stack)

    # 1: a "test" repeat of the victim's alarm, which used to turn it into a drill
    stack.event("o-01", "panic_repeat", alarm_id=uuid.UUID(victim_id), presses=7, test=True)
    # 2: a retained alarm on the attacker's own topic claiming the victim's id, acknowledged
    forged = Alarm(alarm_id=uuid.UUID(victim_id), office="o-01", location=Location(),
                   state="acknowledged", raised_at=utcnow(), presses=1,
                   acknowledged_by="mallory", acknowledged_at=utcnow())
    assert attacker.publish(T.alarm("o-01"), forged.to_bytes(), retain=True) < 0x80
    # 3: a resolution, which used to close it and make the guard's own ack fail
    stack.event("o-01", "alarm_resolved", alarm_id=uuid.UUID(victim_id), by="mallory")

    wait_for(lambda: _mismatches(stack) >= before + 3, 10, "three security events")
    time.sleep(0.3)  # anything that would have changed the alarm has been applied by now
    after = _victim_alarm(stack)
    assert after is not None, "the victim's alarm vanished from the open alarms"
    assert after["alarm_id"] == victim_id and after["office"] == "o-02"
    assert after["state"] == "active" and not after["test"], after
    assert after["acknowledged_by"] is None and after["resolved_at"] is None, after
    assert after["presses"] == alarm["presses"]
    events = stack.get("/api/security")["recent"]
    assert any(e["kind"] == "alarm_office_mismatch" and e["office"] == "o-01"
               and e.get("alarm_office") == "o-02" for e in events), events
    # the attacker's messages are not in the event log either
    assert not [e for e in stack.get("/api/events", office="o-01")
                if e.get("alarm_id") == victim_id]

    # and the guard can still do its job
    with stack.api() as http:
        res = http.post(f"/api/alarms/{victim_id}/ack")
    assert res.status_code == 200, res.text
    acked = wait_for(lambda: (a := _victim_alarm(stack)) and a["state"] == "acknowledged" and a,
                     10, "the guard's acknowledgement")
    assert acked["acknowledged_by"] == "anna"
    attacker.publish(T.alarm("o-01"), b"", retain=True)
