"""Issue 16 item 6: an ack counts only once the office confirmed it.

Until then the alarm stays `active` with `ack_delivered: false`, escalation
goes on, and the station sends the ack again as soon as the office is back.
Real Mosquitto, real guard station process, a simulated office.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for
from tests.office_sim import OfficeSim


def test_unconfirmed_ack_keeps_escalating_and_is_resent_when_the_office_is_back(
        tmp_path: Path, broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", broker.port, security={"command_timeout_s": 1},
                      escalation={"after_s": 2},
                      faults={"ack_resend_s": 600}).start()  # only the comeback re-sends
    deaf = OfficeSim(broker.port, "eg-101", public_key=guard.public_key, answer=False,
                     heartbeat_s=0.3).start_heartbeat()
    back: OfficeSim | None = None
    try:
        alarm_id = str(deaf.press().alarm_id)
        wait_for(guard.alarms, what="alarm")
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 504, resp.text  # the office never confirmed
        alarm = resp.json()["alarm"]
        assert alarm["state"] == "active" and alarm["guard_ack_by"] == "alice"
        assert alarm["ack_delivered"] is False and alarm["escalates_at"] is not None
        # the guard clicked, but nobody told the caseworker: escalation still comes
        escalated = wait_for(lambda: guard.get(f"/api/alarms/{alarm_id}")["escalated_at"],
                             6, "escalation despite the unconfirmed ack")
        assert escalated
        deaf.close()  # the office drops off (no more state: stale) ...
        wait_for(lambda: guard.office("eg-101")["stale"], 5, "office stale")
        time.sleep(0.5)
        assert len(deaf.wait_commands("ack")) == 1
        back = OfficeSim(broker.port, "eg-101", public_key=guard.public_key,
                         heartbeat_s=0.3)  # ... and comes back, answering this time
        back.alarm_id, back.alarm_state = deaf.alarm_id, "active"
        back.start_heartbeat()
        t_back = time.monotonic()
        (resent,) = back.wait_commands("ack", timeout=5)
        assert str(resent.alarm_id) == alarm_id and resent.by == "alice"
        done = wait_for(lambda: guard.get(f"/api/alarms/{alarm_id}"), 5, "incident")
        wait_for(lambda: guard.get(f"/api/alarms/{alarm_id}")["state"] == "acknowledged", 5,
                 "confirmed by the office")
        done = guard.get(f"/api/alarms/{alarm_id}")
        assert done["ack_delivered"] is True and done["ack_resends"] == 1
        assert done["escalates_at"] is None
        assert time.monotonic() - t_back < 5
        whats = [e["what"] for e in done["timeline"]]
        assert whats.count("ack_requested") == 1 and "ack_resent" in whats
        assert "escalated" in whats
        office_said = [e["what"] for e in done["timeline"] if e["source"] == "office"]
        assert office_said == ["pressed", "acknowledged"]
    finally:
        deaf.close()
        if back is not None:
            back.close()
        guard.close()
