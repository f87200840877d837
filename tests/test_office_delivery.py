"""Delivery guarantees of the office: outages, SIGKILL, restarts (contract §6)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from controller.office.compose import build_daemon
from controller.office.daemon import Daemon
from controller.office.office_config import OfficeConfig
from tests.broker import Mosquitto
from tests.office_proc import OfficeProc, office_sections
from tests.probe import Probe

P = "officesec"


def in_process_daemon(tmp_path: Path, port: int) -> tuple[Daemon, MockFactory]:
    sections = office_sections(tmp_path, port, mqtt={"host": "127.0.0.1", "port": port,
                                                     "keepalive_s": 2, "reconnect_max_s": 1.0})
    sections.pop("log")
    cfg = OfficeConfig(**sections)
    factory = MockFactory()
    daemon = build_daemon(cfg, factory=factory)
    daemon.start()
    return daemon, factory


def wait(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def make_events(factory: MockFactory, count: int) -> None:
    """`count` events through the mock pins: panic presses and release presses, interleaved.

    Each input is toggled no faster than the 50 ms debounce, as a real hand would.
    """
    panic, release = factory.pin(17), factory.pin(27)
    made = 0
    while made < count:
        panic.drive_high()  # nc wiring: high = pressed -> panic / panic_repeat
        made += 1
        if made < count:
            release.drive_low()  # pressed -> door_released
            made += 1
        time.sleep(0.06)
        panic.drive_low()
        release.drive_high()
        time.sleep(0.06)


def test_broker_down_100_events_then_all_delivered_once_in_order(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    daemon, factory = in_process_daemon(tmp_path, broker.port)
    try:
        wait(lambda: daemon.online and daemon.outbox.pending_count == 0)
        first_seq = daemon.outbox.last_seq + 1
        broker.stop()
        wait(lambda: not daemon.link.connected)
        make_events(factory, 100)
        wait(lambda: daemon.outbox.last_seq >= first_seq + 99)
        assert daemon.outbox.pending_count >= 100  # kept, waiting for the broker
        broker.start()
        probe = Probe(broker.host, broker.port, f"{P}/office/eg-101/event").start()
        wait(lambda: daemon.outbox.pending_count == 0, timeout=20)
        wait(lambda: len({e["id"] for e in probe.events()}) >= 100 + 0, timeout=10)
        time.sleep(0.3)
        got = [e for e in probe.events() if e["seq"] >= first_seq]
        seqs = [e["seq"] for e in got]
        assert len(got) >= 100
        assert seqs == sorted(seqs), "re-sent out of seq order"
        assert len(seqs) == len(set(seqs)), "delivered twice"
        assert seqs[:100] == list(range(first_seq, first_seq + 100))
        probe.stop()
    finally:
        daemon.stop()
        broker.kill()


def test_sigkill_mid_stream_loses_nothing_and_seq_continues(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq").start()
    probe = Probe(broker.host, broker.port, f"{P}/office/+/event").start()
    office = OfficeProc(tmp_path / "o", broker.port).start()
    stop = threading.Event()

    def presses() -> None:
        pub = Probe(broker.host, broker.port, "none/none").start()
        while not stop.is_set():
            for payload in ("press", "release"):
                pub.publish(f"{P}/office/eg-101/sim/input/release", payload)
                pub.publish(f"{P}/office/eg-101/sim/input/panic", payload)
                time.sleep(0.06)
        pub.stop()

    try:
        office.wait_log("mqtt_connected")
        feeder = threading.Thread(target=presses, daemon=True)
        feeder.start()
        time.sleep(1.5)
        office.kill()  # SIGKILL in the middle of the stream
        time.sleep(0.3)
        db = sqlite3.connect(office.db)
        stored_before = dict(db.execute("SELECT id, seq FROM events"))
        db.close()
        office.start()
        office.wait_log("mqtt_connected", timeout=20, count=2)
        time.sleep(1.0)
        stop.set()
        feeder.join(5)
        time.sleep(0.5)
        assert office.stop() == 0
        db = sqlite3.connect(office.db)
        stored = dict(db.execute("SELECT id, seq FROM events"))
        pending = db.execute("SELECT COUNT(*) FROM events WHERE delivered_at IS NULL").fetchone()
        db.close()
        received: dict[str, int] = {}
        for ev in probe.events("eg-101"):
            received[ev["id"]] = ev["seq"]
        # every event the office had made durable before the kill was delivered
        assert set(stored_before) <= set(received), "lost events stored before SIGKILL"
        assert set(stored) <= set(received), "stored events never delivered"
        assert pending[0] == 0
        # a seq number is never given to two different events
        by_seq: dict[int, set[str]] = {}
        for eid, seq in received.items():
            by_seq.setdefault(seq, set()).add(eid)
        assert all(len(ids) == 1 for ids in by_seq.values()), "seq reused"
        # after the restart, seq continues above everything from before
        restarts = [e for e in probe.events("eg-101", "controller_started")]
        assert len(restarts) == 2
        assert restarts[1]["seq"] > max(stored_before.values())
        assert restarts[1].get("void_from") is not None  # unclean stop is announced
    finally:
        stop.set()
        office.kill()
        probe.stop()
        broker.kill()


def test_restart_keeps_open_alarm_and_seq(broker: Mosquitto, tmp_path: Path) -> None:
    probe = Probe(broker.host, broker.port, f"{P}/#").start()
    office = OfficeProc(tmp_path / "o", broker.port).start()
    try:
        # the state comes after the daemon's SUBSCRIBE on its connection: it now listens
        probe.wait_for(lambda m: m.topic.endswith("/state"), timeout=10)
        probe.publish(f"{P}/office/eg-101/sim/input/panic", "press")
        [panic] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                 and m.json()["type"] == "panic")
        assert office.stop() == 0
        probe.clear()
        office.start()
        probe.wait_for(lambda m: m.topic.endswith("/state") and m.json()["alarm"] == "active"
                       and m.json()["alarm_id"] == panic.json()["alarm_id"])
        [started] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                   and m.json()["type"] == "controller_started")
        assert started.json()["seq"] == panic.json()["seq"] + 1  # clean stop: no void range
        assert "void_from" not in started.json()
    finally:
        office.kill()
        probe.stop()
