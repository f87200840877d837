"""The guard station with real office daemons (mock pins): press, ack, resolve, drill, death."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, SSEClient, wait_for
from tests.office_proc import OfficeProc
from tests.probe import Probe

P = "officesec"


@pytest.fixture
def station(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[GuardProc, OfficeProc]]:
    guard = GuardProc(tmp_path / "guard", broker.port, roster=["eg-101"],
                      security={"command_timeout_s": 5}).start()
    office = OfficeProc(tmp_path / "office", broker.port, "eg-101",
                        security={"guard_public_key": str(guard.public_key)},
                        alarm={"heartbeat_s": 1}).start()
    try:
        wait_for(lambda: guard.office("eg-101")["online"], timeout=20, what="office online")
        yield guard, office
    finally:
        office.kill()
        guard.close()


def _press(broker: Mosquitto) -> None:
    probe = Probe(broker.host, broker.port, f"{P}/office/eg-101/sim/output").start()
    probe.publish(f"{P}/office/eg-101/sim/input/panic", "press")
    time.sleep(0.1)
    probe.publish(f"{P}/office/eg-101/sim/input/panic", "release")
    probe.stop()


def test_press_ack_resolve_with_a_real_office(station: tuple[GuardProc, OfficeProc],
                                              broker: Mosquitto) -> None:
    guard, office = station
    sse = SSEClient(guard.url, ("alice", USERS["alice"][0]))
    try:
        _press(broker)
        _, _, alarm, _ = sse.wait(lambda k, d: k == "alarm" and d["office"] == "eg-101",
                                  timeout=10)
        alarm_id = alarm["alarm_id"]
        assert alarm["state"] == "active" and alarm["location"]["site"] == "Jobcenter Test"
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 200, (resp.text, office.log_text()[-2000:])
        assert resp.json()["alarm"]["state"] == "acknowledged"
        wait_for(lambda: guard.office("eg-101")["alarm_state"] == "acknowledged",
                 what="office state acknowledged")
        resp = guard.client.post(f"/api/alarms/{alarm_id}/resolve", json={"outcome": "handled"})
        assert resp.status_code == 200, resp.text
        assert guard.alarms() == []
        types = [e["type"] for e in guard.get("/api/events", office="eg-101")]
        assert {"panic", "alarm_acknowledged", "alarm_resolved"} <= set(types)
        assert not guard.office("eg-101")["events_may_be_missing"]
    finally:
        sse.close()


def test_drill_and_dead_controller(station: tuple[GuardProc, OfficeProc]) -> None:
    guard, office = station
    resp = guard.client.post("/api/offices/eg-101/test")
    assert resp.status_code == 200, (resp.text, office.log_text()[-2000:])
    drill = [a for a in guard.alarms() if a["alarm_id"] == resp.json()["alarm_id"]]
    assert drill and drill[0]["test"]
    assert guard.client.post(f"/api/alarms/{drill[0]['alarm_id']}/resolve",
                             json={"outcome": "drill"}).status_code == 200
    office.kill()
    killed = time.monotonic()
    wait_for(lambda: guard.office("eg-101")["stale"], timeout=10, what="stale")
    assert time.monotonic() - killed < 5.0 + 1.0  # 3 heartbeats + one poll of the API
