"""Issue 7 §5: a full outbox keeps every alarm; a broken database still lets alarms out.

Outbox limit: an in-process office (MockFactory pins) with the smallest
`storage.max_events` makes more events than fit while the broker is down.
When the broker is back, the state counts what was dropped, every alarm event
arrives, and the non-alarm events that survived are the newest ones.

Broken storage: `officesec run` with garbage bytes where the SQLite file should
be, or a directory in its place (chmod does not stop root, which CI is), must
start anyway, report the fault (a `storage_fault` event, "storage" in the
state's faults, a log line naming the path) and still publish a live alarm.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.office.compose import build_daemon
from controller.office.office_config import OfficeConfig
from controller.protocol.messages import ALARM_EVENT_TYPES
from tests.broker import Mosquitto
from tests.chaos.support import record, wait_until
from tests.office_proc import OfficeProc, office_sections
from tests.probe import Probe

P = "officesec"
OFFICE = "res-01"
MAX_EVENTS = 100  # the smallest limit the config accepts
DOOR_CYCLES = 70  # door opened / forced / closed: two non-alarm events and one alarm each
PANIC_EVERY = 7  # one panic press per this many door cycles


def test_full_outbox_keeps_alarms_and_counts_drops(tmp_path: Path) -> None:
    # persistent broker and probe session: the probe misses nothing across the restart
    broker = Mosquitto(tmp_path / "mq", persistence=True).start()
    probe = Probe(broker.host, broker.port, f"{P}/office/{OFFICE}/#", client_id="res-probe",
                  persistent=True)
    probe.client.reconnect_delay_set(1, 1)
    probe.start()
    sections = office_sections(tmp_path, broker.port, OFFICE,
                               mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 1},
                               storage={"max_events": MAX_EVENTS})
    sections.pop("log")
    factory = MockFactory()
    daemon = build_daemon(OfficeConfig(**sections), factory=factory)
    daemon.start()
    try:
        wait_until(lambda: daemon.online and daemon.outbox.pending_count == 0, 15, "online")
        first = daemon.outbox.last_seq + 1
        broker.stop()
        wait_until(lambda: not daemon.link.connected, 10, "disconnected")
        panic, door = factory.pin(17), factory.pin(23)
        for cycle in range(DOOR_CYCLES):
            door.drive_high()  # contact open (pull-up, switch to ground = closed)
            if cycle % PANIC_EVERY == 0:
                panic.drive_high()  # nc: high = pressed
            time.sleep(0.06)
            door.drive_low()
            panic.drive_low()
            time.sleep(0.06)
        time.sleep(0.3)
        last = daemon.outbox.last_seq
        made = last - first + 1
        assert daemon.outbox.pending_count <= MAX_EVENTS
        dropped = daemon.outbox.dropped
        assert dropped > 0
        probe.clear()
        broker.start()
        wait_until(lambda: daemon.online and daemon.outbox.pending_count == 0, 20, "replayed")
        wait_until(lambda: len(probe.events(OFFICE)) >= made - dropped, 20, "replay seen")
        got = {e["seq"]: e for e in probe.events(OFFICE) if first <= e["seq"] <= last}
        alarms = [e for e in got.values() if e["type"] in ALARM_EVENT_TYPES]
        others = sorted(s for s, e in got.items() if e["type"] not in ALARM_EVENT_TYPES)
        missing = sorted(set(range(first, last + 1)) - set(got))
        assert len(missing) == dropped, (len(missing), dropped)
        # what was dropped is the oldest non-alarm events, nothing else
        assert all(s < min(others) for s in missing)
        n_panic = -(-DOOR_CYCLES // PANIC_EVERY)
        assert sum(e["type"] in ("panic", "panic_repeat") for e in alarms) == n_panic
        assert sum(e["type"] == "door_forced" for e in alarms) == DOOR_CYCLES
        state = wait_until(lambda: probe.last(f"{P}/office/{OFFICE}/state"), 5, "state")
        assert state.json()["outbox_dropped"] == dropped
        record("outbox_full", max_events=MAX_EVENTS, events_made=made,
               alarm_events_made=n_panic + DOOR_CYCLES, alarm_events_delivered=len(alarms),
               non_alarm_delivered=len(others), dropped_oldest_non_alarm=dropped,
               state_outbox_dropped=state.json()["outbox_dropped"])
    finally:
        daemon.stop()
        factory.reset()
        probe.stop()
        broker.kill()


@pytest.mark.parametrize("damage", ["garbage_file", "directory"])
def test_broken_storage_still_sends_live_alarms(tmp_path: Path, broker: Mosquitto,
                                                damage: str) -> None:
    probe = Probe(broker.host, broker.port, f"{P}/office/{OFFICE}/#").start()
    office = OfficeProc(tmp_path / "o", broker.port, OFFICE)
    if damage == "garbage_file":
        office.db.write_bytes(b"this is not a database\x00\xff" * 4096)
    else:
        office.db.mkdir()
    office.start()
    try:
        [fault] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                 and m.json()["type"] == "storage_fault", timeout=15)
        assert str(office.db) in fault.json()["reason"]
        probe.wait_for(lambda m: m.topic.endswith("/state")
                       and "storage" in m.json()["faults"], timeout=5)
        assert "storage_open_failed" in office.log_text()
        began = time.monotonic()
        probe.publish(f"{P}/office/{OFFICE}/sim/input/panic", "press")
        [panic] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                 and m.json()["type"] == "panic", timeout=10)
        alarm_s = panic.at - began
        probe.wait_for(lambda m: m.topic.endswith("/alarm") and m.payload != b""
                       and m.json()["alarm_id"] == panic.json()["alarm_id"], timeout=5)
        assert office.proc is not None and office.proc.poll() is None
        record("broken_storage", damage=damage, fault_reported=True,
               live_alarm_delivered=True, press_to_event_ms=round(alarm_s * 1000, 1))
    finally:
        office.kill()
        probe.stop()
