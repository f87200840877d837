"""Nothing lost, nothing twice: duplicates, reordering, gaps, lost tails, outages, crashes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.guard.service import FAULT_ENV
from tests.broker import Mosquitto
from tests.guard_proc import USERS, GuardProc, SSEClient, guard_and_broker, wait_for
from tests.office_sim import OfficeSim


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[GuardProc, Mosquitto]]:
    """One broker and one station for the tests that need no restart; distinct offices."""
    with guard_and_broker("officesec-guard-dl-") as pair:
        yield pair


@pytest.fixture
def guard(shared: tuple[GuardProc, Mosquitto]) -> GuardProc:
    return shared[0]


@pytest.fixture
def broker(shared: tuple[GuardProc, Mosquitto]) -> Mosquitto:
    return shared[1]


def _events(guard: GuardProc, office: str = "eg-101") -> list[dict]:
    return list(guard.get("/api/events", office=office, limit=10000))


def test_duplicates_and_reordering(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "dl-1", public_key=guard.public_key, answer=False)
    try:
        first = sim.event("controller_started")
        sim.event("door_opened")
        sim.publish(first)  # redelivery of the same id
        late = sim.make_event("door_closed")  # seq 3, delivered after seq 4
        sim.event("door_opened")
        wait_for(lambda: guard.office("dl-1")["events_may_be_missing"], what="gap flagged")
        sim.publish(late)
        wait_for(lambda: len(_events(guard, "dl-1")) == 4, what="4 events")
        wait_for(lambda: not guard.office("dl-1")["events_may_be_missing"], what="gap filled")
        office = guard.office("dl-1")
        assert office["duplicates"] == 1
        seqs = sorted(e["seq"] for e in _events(guard, "dl-1"))
        assert seqs == [1, 2, 3, 4]
    finally:
        sim.close()


def test_gap_triggers_signed_resend_and_is_filled(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "dl-2", public_key=guard.public_key)
    try:
        sim.event("controller_started")
        lost = sim.make_event("panic", alarm_id=__import__("uuid").uuid4())  # broker "lost" it
        sim.event("door_opened")
        (resend,) = sim.wait_commands("resend")
        assert (resend.from_seq, resend.to_seq) == (2, 2)
        assert sim.rejections == []
        wait_for(lambda: len(_events(guard, "dl-2")) == 3, what="gap filled by resend")
        assert not guard.office("dl-2")["events_may_be_missing"]
        ids = {e["id"] for e in _events(guard, "dl-2")}
        assert str(lost.id) in ids
        assert any(a["alarm_id"] == str(lost.alarm_id) for a in guard.alarms())
    finally:
        sim.close()


def test_lost_tail_is_found_from_the_state(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "dl-3", public_key=guard.public_key, heartbeat_s=0.5)
    try:
        sim.event("controller_started")
        wait_for(lambda: len(_events(guard, "dl-3")) == 1, what="first event")
        tail = sim.make_event("door_forced")  # published by nobody: the tail is lost
        sim.start_heartbeat()  # state says seq 2
        (resend,) = sim.wait_commands("resend", timeout=10)
        assert (resend.from_seq, resend.to_seq) == (2, 2)
        wait_for(lambda: str(tail.id) in {e["id"] for e in _events(guard, "dl-3")}, what="tail")
    finally:
        sim.close()


def test_station_down_then_everything_arrives_once(tmp_path: Path,
                                                   persistent_broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", persistent_broker.port).start()
    sim = OfficeSim(persistent_broker.port, public_key=guard.public_key)
    try:
        sim.event("controller_started")
        wait_for(lambda: len(_events(guard)) == 1, what="first event")
        assert guard.stop() == 0
        sent = [sim.event("door_opened" if i % 2 else "door_closed") for i in range(30)]
        panic = sim.press()
        time.sleep(0.3)
        guard.start()
        wait_for(lambda: len(_events(guard)) == 32, what="all 32 events")
        ids = [e["id"] for e in _events(guard)]
        assert len(set(ids)) == 32
        assert {str(e.id) for e in sent} <= set(ids)
        assert any(a["alarm_id"] == str(panic.alarm_id) for a in guard.alarms())
        assert not guard.office("eg-101")["events_may_be_missing"]
    finally:
        sim.close()
        guard.close()


def test_crash_before_commit_means_redelivery_not_loss(tmp_path: Path,
                                                       persistent_broker: Mosquitto) -> None:
    guard = GuardProc(tmp_path / "guard", persistent_broker.port)
    guard.start(env={FAULT_ENV: "3"})
    sim = OfficeSim(persistent_broker.port, public_key=guard.public_key)
    try:
        events = [sim.event("door_opened") for _ in range(5)]
        assert guard.proc is not None
        assert guard.proc.wait(10) == 70  # died after receiving, before committing event 3
        guard.start()
        wait_for(lambda: len(_events(guard)) == 5, what="5 events after restart")
        stored = _events(guard)
        assert sorted(e["id"] for e in stored) == sorted(str(e.id) for e in events)
        assert sorted(e["seq"] for e in stored) == [1, 2, 3, 4, 5]
    finally:
        sim.close()
        guard.close()


def test_silent_office_is_stale_within_5s(guard: GuardProc, broker: Mosquitto) -> None:
    sse = SSEClient(guard.url, ("alice", USERS["alice"][0]))
    sim = OfficeSim(broker.port, "dl-4", heartbeat_s=1.0).start_heartbeat()
    try:
        wait_for(lambda: guard.office("dl-4")["online"], what="office online")
        sim.heartbeat = False  # hung: connection and will stay, states stop
        silent_from = time.monotonic()
        _, _, office, received = sse.wait(lambda k, d: k == "office" and d["id"] == "dl-4"
                                          and d["stale"], timeout=10)
        assert received - silent_from < 5.0
        assert office["availability"] == "online"  # the broker still thinks it is fine
        sim.heartbeat = True
        sse.wait(lambda k, d: k == "office" and d["id"] == "dl-4" and not d["stale"])
    finally:
        sim.close()
        sse.close()


def test_malformed_payloads_are_dropped(guard: GuardProc, broker: Mosquitto) -> None:
    sim = OfficeSim(broker.port, "dl-5")
    try:
        for leaf in ("event", "state", "alarm", "availability"):
            sim.raw(leaf, b"\xff{not json")
        sim.raw("event", b'{"schema":1}')
        sim.raw("state", b"[]")
        sim.client.publish("officesec/office/BAD ID/event", b"{}", qos=1)
        sim.event("controller_started")
        wait_for(lambda: len(_events(guard, "dl-5")) == 1, what="good event after bad ones")
        health = guard.get("/healthz")
        assert health["ingest"]["dropped"] >= 6
        assert health["status"] == "ok"
    finally:
        sim.close()
