"""The guard station end to end with a fake office: alarms in the API and on the stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, SSEClient, wait_for
from tests.office_sim import OfficeSim


@pytest.fixture
def guard(tmp_path: Path, broker: Mosquitto) -> Iterator[GuardProc]:
    g = GuardProc(tmp_path / "guard", broker.port, roster=["eg-101", "eg-999"]).start()
    try:
        yield g
    finally:
        g.close()


def test_panic_reaches_api_and_stream(guard: GuardProc, broker: Mosquitto) -> None:
    sse = SSEClient(guard.url, ("alice", USERS["alice"][0]))
    sim = OfficeSim(broker.port, "eg-101", public_key=guard.public_key).start_heartbeat()
    try:
        event = sim.press()
        _, _, alarm, _ = sse.wait(lambda k, d: k == "alarm" and d["alarm_id"] == str(
            event.alarm_id))
        assert alarm["state"] == "active"
        assert alarm["office"] == "eg-101"
        alarms = wait_for(guard.alarms, what="alarm in API")
        assert [a["alarm_id"] for a in alarms] == [str(event.alarm_id)]
        office = guard.office("eg-101")
        assert office["online"] and not office["missing"]
        assert guard.office("eg-999")["missing"]
    finally:
        sim.close()
        sse.close()
