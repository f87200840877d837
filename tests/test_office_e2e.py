"""End to end through a real Mosquitto: the office daemon as a real subprocess."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.broker import Mosquitto
from tests.office_proc import OfficeProc
from tests.probe import Probe

P = "officesec"


def topic(office: str, leaf: str) -> str:
    return f"{P}/office/{office}/{leaf}"


def started(broker: Mosquitto, tmp_path: Path, **overrides: dict) -> tuple[OfficeProc, Probe]:
    probe = Probe(broker.host, broker.port, f"{P}/#").start()
    office = OfficeProc(tmp_path / "office", broker.port, **overrides).start()
    probe.wait_for(lambda m: m.topic == topic("eg-101", "availability")
                   and m.payload == b"online", timeout=10)
    probe.wait_for(lambda m: m.topic == topic("eg-101", "state"), timeout=5)
    return office, probe


def outputs(probe: Probe) -> list[dict]:
    return [m.json() for m in probe.msgs if m.topic == topic("eg-101", "sim/output")]


def test_press_gives_panic_event_and_retained_alarm(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path)
    try:
        probe.publish(topic("eg-101", "sim/input/panic"), "press")
        [panic] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                 and m.json()["type"] == "panic")
        ev = panic.json()
        assert ev["office"] == "eg-101" and ev["schema"] == 1 and ev["test"] is False
        assert ev["seq"] >= 2 and ev["ts"].endswith("Z")
        probe.wait_for(lambda m: m.topic == topic("eg-101", "state")
                       and m.json()["alarm"] == "active")
        # a guard station that subscribes later still sees the open alarm (retained)
        late = Probe(broker.host, broker.port, topic("eg-101", "alarm")).start()
        [alarm] = late.wait_for(lambda m: True)
        late.stop()
        body = alarm.json()
        assert alarm.retain and body["alarm_id"] == ev["alarm_id"] and body["state"] == "active"
        assert body["location"]["site"] == "Jobcenter Test" and body["presses"] == 1
        # more presses: panic_repeat with the count, never a second alarm
        probe.publish(topic("eg-101", "sim/input/panic"), "release")
        time.sleep(0.1)
        probe.publish(topic("eg-101", "sim/input/panic"), "press")
        [rep] = probe.wait_for(lambda m: m.topic.endswith("/event")
                               and m.json()["type"] == "panic_repeat")
        assert rep.json()["alarm_id"] == ev["alarm_id"] and rep.json()["presses"] == 2
        assert len(probe.events(etype="panic")) == 1
        # silent: no output changed because of the presses
        time.sleep(0.2)
        assert all(o == {"relay": False, "ack_led": False, "neighbor_led": False}
                   for o in outputs(probe))
    finally:
        office.stop()
        probe.stop()


def test_release_pulse_timing_on_sim_output(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path, door={"release_s": 1, "held_open_s": 5})
    try:
        probe.publish(topic("eg-101", "sim/input/release"), "press")
        [on] = probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.json()["relay"])
        [off] = probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.at > on.at
                               and not m.json()["relay"], timeout=5)
        pulse = off.at - on.at
        assert 0.9 <= pulse <= 1.6, pulse  # correctness bound around release_s = 1
        probe.wait_for(lambda m: m.topic.endswith("/event") and m.json()["type"] == "door_locked")
        released = probe.events(etype="door_released")[0]
        assert released["source"] == "button" and released["seconds"] == 1
    finally:
        office.stop()
        probe.stop()


def test_door_closing_after_opening_relocks_at_once(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path, door={"release_s": 10, "held_open_s": 20})
    try:
        probe.publish(topic("eg-101", "sim/input/release"), "press")
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.json()["relay"])
        probe.publish(topic("eg-101", "sim/input/release"), "release")
        probe.publish(topic("eg-101", "sim/input/door"), "open")
        probe.wait_for(lambda m: m.topic.endswith("/event") and m.json()["type"] == "door_opened")
        t0 = time.monotonic()
        probe.publish(topic("eg-101", "sim/input/door"), "close")
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.at > t0
                       and not m.json()["relay"], timeout=3)
        assert time.monotonic() - t0 < 2  # long before release_s = 10
        assert not probe.events(etype="door_forced")
    finally:
        office.stop()
        probe.stop()


def test_forced_door_is_reported(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path)
    try:
        time.sleep(0.1)
        probe.publish(topic("eg-101", "sim/input/door"), "open")
        probe.wait_for(lambda m: m.topic.endswith("/event") and m.json()["type"] == "door_forced")
    finally:
        office.stop()
        probe.stop()


def test_sigterm_relay_off_offline_exit_0(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path, door={"release_s": 10, "held_open_s": 20})
    try:
        probe.publish(topic("eg-101", "sim/input/release"), "press")
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.json()["relay"])
        t0 = time.monotonic()
        rc = office.stop()
        assert rc == 0
        assert time.monotonic() - t0 < 2.0
        probe.wait_for(lambda m: m.topic.endswith("sim/output") and m.at > t0
                       and not m.json()["relay"], timeout=2)
        probe.wait_for(lambda m: m.topic.endswith("availability") and m.payload == b"offline"
                       and m.at > t0, timeout=2)
    finally:
        office.kill()
        probe.stop()


def test_crash_leaves_will_offline(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path)
    try:
        t0 = time.monotonic()
        office.kill()
        probe.wait_for(lambda m: m.topic.endswith("availability") and m.payload == b"offline"
                       and m.at > t0, timeout=8)
    finally:
        probe.stop()


def test_bad_config_refused_with_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "bad.toml"
    cfg.write_text('[office]\nid = "Bad Id"\n[door]\nrelease_s = 99\n')
    res = subprocess.run([sys.executable, "-m", "controller", "run", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "office.id:" in res.stderr and "door.release_s:" in res.stderr
    assert "Traceback" not in res.stderr


def test_state_is_retained_and_heartbeats(broker: Mosquitto, tmp_path: Path) -> None:
    office, probe = started(broker, tmp_path, alarm={"heartbeat_s": 0.5})
    try:
        time.sleep(1.6)
        states = [m for m in probe.msgs if m.topic == topic("eg-101", "state")]
        assert len(states) >= 3
        body = json.loads(states[-1].payload)
        assert body["door"] == "locked" and body["alarm"] == "none" and body["heartbeat_s"] == 0.5
        assert body["version"] and body["uptime_s"] > 0
    finally:
        office.stop()
        probe.stop()


@pytest.mark.parametrize("wiring", ["nc", "no"])
def test_wiring_is_transparent_to_sim_inputs(broker: Mosquitto, tmp_path: Path,
                                             wiring: str) -> None:
    office, probe = started(broker, tmp_path, hardware={"panic_contact": wiring})
    try:
        assert not probe.events(etype="panic")  # an idle nc line is not an alarm
        probe.publish(topic("eg-101", "sim/input/panic"), "press")
        probe.wait_for(lambda m: m.topic.endswith("/event") and m.json()["type"] == "panic")
    finally:
        office.stop()
        probe.stop()
