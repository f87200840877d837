"""Scheduled drills: answering offices pass and their drill is resolved; silent ones are listed."""

from __future__ import annotations

from pathlib import Path

from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for
from tests.office_sim import OfficeSim


def test_scheduled_selftest(tmp_path: Path, broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", broker.port,
                      selftest={"interval_h": 1.5 / 3600, "answer_within_s": 1.5}).start()
    good = OfficeSim(broker.port, "eg-101", public_key=guard.public_key).start_heartbeat()
    mute = OfficeSim(broker.port, "eg-102", public_key=guard.public_key,
                     answer=False).start_heartbeat()
    try:
        report = wait_for(lambda: guard.get("/api/selftest")["last"], timeout=15,
                          what="a finished round")
        assert report["results"]["eg-101"] == "ok", report
        assert report["failed"] == ["eg-102"]
        assert report["results"]["eg-102"].startswith("timeout")
        drills = [a for a in guard.alarms(open_only=False) if a["office"] == "eg-101"]
        assert drills and all(a["test"] for a in drills)
        assert drills[-1]["state"] == "closed"
        assert drills[-1]["resolved_by"] == "selftest"
        assert drills[-1]["outcome"] == "drill"  # the code; the note is for people, in German
        assert drills[-1]["note"] == "geplanter Selbsttest"
        assert [c.cmd for c in good.commands][:2] == ["test", "resolve"]
    finally:
        good.close()
        mute.close()
        guard.close()
