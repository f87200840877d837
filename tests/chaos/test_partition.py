"""Issue 7 §2: an office cut off from the broker keeps its events and delivers them in order.

The office runs in-process (controller.office.compose.build_daemon, gpiozero MockFactory) so
the test can press its buttons while the network is down; it reaches the
broker only through a TCP proxy that the test cuts like a pulled cable (bytes
swallowed, no reset). The guard station (a real `officesec guard`) must flag
the office stale within 5 s, and after the cable is back see it fresh again and
receive every event made during the partition, once and in seq order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.office.compose import build_daemon
from controller.office.office_config import OfficeConfig
from tests.broker import Mosquitto
from tests.chaos.support import TcpProxy, record, size, wait_until
from tests.guard_proc import GuardProc
from tests.office_proc import office_sections
from tests.probe import Probe

P = "officesec"
OFFICE = "part-01"
PRESS_EVERY_S = 0.5  # one button press (panic or door release) per this while cut off
pytestmark = pytest.mark.timeout(180 + 2 * size("OFFICESEC_CHAOS_PARTITION_S"))


def guard_seqs(guard: GuardProc) -> list[int]:
    return sorted(e["seq"] for e in guard.get("/api/events", office=OFFICE, limit=10000))


def test_partitioned_office_keeps_and_delivers_in_order(tmp_path: Path) -> None:
    partition_s = size("OFFICESEC_CHAOS_PARTITION_S")
    broker = Mosquitto(tmp_path / "mq").start()
    proxy = TcpProxy(broker.port)
    guard = GuardProc(tmp_path / "guard", broker.port, roster=[OFFICE]).start()
    sections = office_sections(tmp_path, proxy.port, OFFICE,
                               mqtt={"keepalive_s": 2, "reconnect_min_s": 0.2,
                                     "reconnect_max_s": 1},
                               alarm={"heartbeat_s": 1},
                               security={"guard_public_key": str(guard.public_key)})
    sections.pop("log")
    factory = MockFactory()
    daemon = build_daemon(OfficeConfig(**sections), factory=factory)
    probe = Probe(broker.host, broker.port, f"{P}/office/{OFFICE}/event").start()
    daemon.start()
    try:
        wait_until(lambda: daemon.online and daemon.outbox.pending_count == 0, 15, "online")
        wait_until(lambda: guard_seqs(guard), 15, "guard has the first event")
        wait_until(lambda: not guard.office(OFFICE)["stale"], 10, "office fresh")
        first = daemon.outbox.last_seq + 1

        proxy.cut(silent=True)
        cut_at = time.monotonic()
        stale_at = None
        panic, release = factory.pin(17), factory.pin(27)
        presses = 0
        while time.monotonic() - cut_at < partition_s:
            pin = panic if presses % 2 == 0 else release
            pressed, idle = (pin.drive_high, pin.drive_low) if pin is panic else (
                pin.drive_low, pin.drive_high)
            pressed()
            time.sleep(0.08)
            idle()
            presses += 1
            if stale_at is None and guard.office(OFFICE)["stale"]:
                stale_at = time.monotonic()
            time.sleep(PRESS_EVERY_S - 0.08)
        assert stale_at is not None, "guard never flagged the office stale"
        stale_s = stale_at - cut_at
        assert stale_s < 5.0, f"stale after {stale_s:.1f} s"
        wait_until(lambda: daemon.outbox.last_seq >= first + presses - 1, 10, "events made")
        made = daemon.outbox.last_seq - first + 1
        assert not daemon.link.connected
        assert daemon.outbox.pending_count >= made
        assert guard_seqs(guard)[-1] < first  # nothing leaked through the cut
        probe.clear()

        proxy.heal()
        healed_at = time.monotonic()
        last = daemon.outbox.last_seq
        wait_until(lambda: not guard.office(OFFICE)["stale"], 15, "office fresh again")
        fresh_s = time.monotonic() - healed_at
        wait_until(lambda: set(range(first, last + 1)) <= set(guard_seqs(guard)), 60,
                   "every event at the guard")
        delivered_s = time.monotonic() - healed_at
        wait_until(lambda: len(probe.events(OFFICE)) >= made, 10, "events seen by the probe")
        arrived = [e["seq"] for e in probe.events(OFFICE) if first <= e["seq"] <= last]
        # at least once: paho re-sends what was in flight when the cable went, then the
        # outbox replays every pending event; the first copies must come in seq order
        first_copies = list(dict.fromkeys(arrived))
        assert first_copies == list(range(first, last + 1)), "not delivered in seq order"
        stored = guard.get("/api/events", office=OFFICE, limit=10000)
        assert len({e["id"] for e in stored}) == len(stored)
        assert guard.office(OFFICE)["online"]
        assert not guard.office(OFFICE)["events_may_be_missing"]
        glog = [e.get("event") for e in guard.log_events()]
        record("partition", partition_s=partition_s, events_during_partition=made,
               guard_resend_requests=glog.count("resend_requested"),
               guard_redeliveries_dropped=guard.office(OFFICE)["duplicates"],
               delivered=len([s for s in guard_seqs(guard) if first <= s <= last]),
               stale_detect_s=round(stale_s, 2), fresh_after_heal_s=round(fresh_s, 2),
               reconnect_to_delivered_s=round(delivered_s, 2),
               copies_seen_at_broker=len(arrived),
               stored_twice=len(stored) - len({e["id"] for e in stored}))
    finally:
        daemon.stop()
        factory.reset()
        probe.stop()
        guard.close()
        proxy.close()
        broker.kill()
