"""Issue 7 §3 (MQTT): a flood of hostile payloads on every topic the office and guard read.

A real office (`officesec run`, mock pins, one neighbour) and a real guard
station take N generated payloads (tests/chaos/payloads.py) spread over every
topic they subscribe: the office's cmd, its neighbour's alarm and its sim
inputs; the guard's availability/state/alarm/event of the real office, of an
unknown office and of ill-formed office ids. Afterwards both processes are
alive, their memory is bounded, the relay never moved, the guard stored
nothing that the office did not produce, and a genuine press -> ack ->
resolve still works end to end.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import ValidationError

from controller.protocol.messages import SIM_PAYLOADS, Alarm, Event, State
from tests.broker import Mosquitto
from tests.chaos.payloads import generate
from tests.chaos.support import record, rss_kib, size, wait_until
from tests.guard_proc import GuardProc
from tests.office_proc import OfficeProc
from tests.probe import Probe

P = "officesec"
OFFICE, NEIGHBOR, OTHER = "fz-01", "fz-nb", "fz-other"
RSS_GROWTH_LIMIT_KIB = 64 * 1024  # a correctness bound: a leak of 10k+ payloads shows up
IN_FLIGHT = 300
pytestmark = pytest.mark.timeout(180 + size("OFFICESEC_CHAOS_PAYLOADS") // 50)


def topics() -> list[str]:
    office = [f"{P}/office/{OFFICE}/cmd", f"{P}/office/{NEIGHBOR}/alarm"]
    office += [f"{P}/office/{OFFICE}/sim/input/{n}" for n in (*SIM_PAYLOADS, "bogus")]
    guard = [f"{P}/office/{oid}/{leaf}" for leaf in ("availability", "state", "alarm", "event")
             for oid in (OFFICE, OTHER, "UPPER-case", "x" * 40, "\u00fcml")]
    return office + guard


def is_valid(topic: str, payload: bytes) -> bool:
    """True for the rare payload that is a valid message for its topic (not garbage)."""
    leaf = topic.rsplit("/", 1)[-1]
    model = {"event": Event, "state": State, "alarm": Alarm}.get(leaf)
    if "/sim/input/" in topic:
        return payload.decode("ascii", "replace").strip() in ("press", "release", "open",
                                                                "close")
    if leaf == "availability":
        return payload in (b"online", b"offline")
    if leaf == "alarm" and not payload:
        return True
    if model is None:
        return False  # cmd: a well-formed but unsigned command is an attack, keep it
    try:
        model.model_validate_json(payload)
    except (ValidationError, ValueError):
        return False
    return True


class Flooder:
    """A publisher that keeps at most IN_FLIGHT unacknowledged messages."""

    def __init__(self, broker: Mosquitto) -> None:
        self.slots = threading.Semaphore(IN_FLIGHT)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.max_inflight_messages_set(IN_FLIGHT)
        self.client.on_publish = lambda *_a: self.slots.release()
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert connected.wait(5)

    def send(self, topic: str, payload: bytes, retain: bool) -> None:
        assert self.slots.acquire(timeout=30), "broker stopped acknowledging"
        self.client.publish(topic, payload, qos=1, retain=retain)

    def drain(self) -> None:
        for _ in range(IN_FLIGHT):
            assert self.slots.acquire(timeout=60), "broker stopped acknowledging"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def guard_store(guard: GuardProc, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{guard.workdir / 'guard.sqlite3'}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def test_hostile_payloads_on_every_topic(tmp_path: Path) -> None:
    count = size("OFFICESEC_CHAOS_PAYLOADS")
    broker = Mosquitto(tmp_path / "mq").start()
    guard = GuardProc(tmp_path / "guard", broker.port, roster=[OFFICE],
                      security={"command_timeout_s": 5})
    office = OfficeProc(tmp_path / "office", broker.port, OFFICE,
                        office={"neighbors": [NEIGHBOR]},
                        security={"guard_public_key": str(guard.public_key)},
                        log={"level": "warning", "json": True})
    probe = Probe(broker.host, broker.port, f"{P}/office/{OFFICE}/sim/output")
    flooder = None
    try:
        guard.start()
        office.start()
        probe.start()
        wait_until(lambda: guard.office(OFFICE)["online"] and not guard.office(OFFICE)["stale"],
                   20, "office online at the guard")
        flooder = Flooder(broker)
        names = topics()
        payloads = generate(count + count // 10 + 1000, seed=11)  # ample: about 1 % are valid
        sent: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        skipped = 0

        def flood(n: int) -> int:
            """Publish n garbage payloads (valid ones drawn by chance do not count)."""
            nonlocal skipped
            assert flooder is not None
            done = 0
            for i, (kind, payload) in enumerate(payloads):
                topic = names[(i * 7919) % len(names)]
                if is_valid(topic, payload):
                    skipped += 1
                    continue
                retain = i % 20 == 0 and (topic.endswith("/cmd") or f"/{OFFICE}/" not in topic)
                flooder.send(topic, payload, retain)
                sent[topic] += 1
                kinds[kind] += 1
                done += 1
                if done >= n:
                    break
            flooder.drain()
            for _ in range(IN_FLIGHT):
                flooder.slots.release()
            return done

        warm_up = flood(300)  # warm up every code path before taking the memory baseline
        sent.clear()
        kinds.clear()
        skipped = 0
        time.sleep(2)
        assert office.proc is not None and guard.proc is not None
        rss_before = {"office": rss_kib(office.proc.pid), "guard": rss_kib(guard.proc.pid)}
        began = time.monotonic()
        assert flood(count) == count
        flood_s = time.monotonic() - began

        # a genuine press after the flood: it is processed after every garbage message
        probe.publish(f"{P}/office/{OFFICE}/sim/input/panic", "press")
        time.sleep(0.1)
        probe.publish(f"{P}/office/{OFFICE}/sim/input/panic", "release")
        # panic alarms only: an office slowed down by the flood may also be a (stale) fault
        panics = lambda: [a for a in guard.alarms() if a["kind"] != "fault"]  # noqa: E731
        alarms = wait_until(panics, 120, "the genuine alarm at the guard")
        drained_s = time.monotonic() - began
        assert office.proc.poll() is None, office.log_text()[-3000:]
        assert guard.proc.poll() is None, guard.log_text()[-3000:]
        # nothing was caught by a last-resort handler either (a contained crash)
        for text in (office.log_text(), guard.log_text()):
            assert "Traceback" not in text and "_failed" not in text, text[-3000:]
        rss_after = {"office": rss_kib(office.proc.pid), "guard": rss_kib(guard.proc.pid)}
        for name, before in rss_before.items():
            assert rss_after[name] - before < RSS_GROWTH_LIMIT_KIB, (name, before,
                                                                     rss_after[name])

        # nothing moved: the relay stayed off, no neighbour light from garbage
        outputs = [m.json() for m in probe.msgs]
        assert outputs and not any(o["relay"] for o in outputs)
        assert not any(o["neighbor_led"] for o in outputs)
        assert len(alarms) == 1 and alarms[0]["office"] == OFFICE
        view = guard.office(OFFICE)
        assert view["online"] and not view["lockdown"] and view["door"] == "locked"
        # the store holds only what the office really produced
        conn = sqlite3.connect(f"file:{office.db}?mode=ro", uri=True)
        genuine = {r[0] for r in conn.execute("SELECT id FROM events")}
        conn.close()
        stored = {r[0] for r in guard_store(guard, "SELECT id FROM events")}
        assert stored <= genuine, stored - genuine
        assert {r[0] for r in guard_store(guard, "SELECT id FROM offices")} <= {OFFICE}
        assert {r[0] for r in guard_store(guard, "SELECT office FROM alarms")} == {OFFICE}

        # and the genuine path still works: ack lights the discreet LED, resolve closes
        alarm_id = alarms[0]["alarm_id"]
        resp = guard.client.post(f"/api/alarms/{alarm_id}/ack")
        assert resp.status_code == 200, resp.text
        probe.wait_for(lambda m: m.json()["ack_led"], timeout=10)
        resp = guard.client.post(f"/api/alarms/{alarm_id}/resolve",
                                   json={"outcome": "handled"})
        assert resp.status_code == 200, resp.text
        wait_until(lambda: not panics(), 10, "alarm resolved")
        rejected = len(guard.get("/api/events", office=OFFICE, type="command_rejected",
                                 limit=10000))
        health = guard.get("/healthz")
        record("hostile_mqtt", payloads=sum(sent.values()), warm_up=warm_up,
               skipped_as_valid=skipped,
               topics=len(sent), by_kind=dict(kinds),
               office_topics=sum(n for t, n in sent.items()
                                 if t.endswith("/cmd") or "/sim/" in t or NEIGHBOR in t),
               guard_dropped=health.get("ingest", {}).get("dropped"),
               command_rejected_events=rejected, crashes=0,
               rss_before_kib=rss_before, rss_after_kib=rss_after,
               flood_s=round(flood_s, 1), drained_s=round(drained_s, 1))
    finally:
        if flooder is not None:
            flooder.close()
        probe.stop()
        office.kill()
        guard.close()
        broker.kill()
