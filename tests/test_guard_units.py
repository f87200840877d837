"""Pure parts of the guard station: sequence bookkeeping, alarm life, staleness, SSE fan-out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from controller.guard.hub import Hub
from controller.guard.model import LiveModel
from controller.guard.repair import retry_after
from controller.guard.store import Store
from controller.protocol.messages import Event, State


def _event(seq: int, etype: str = "door_opened", **fields: object) -> Event:
    return Event(id=uuid.uuid4(), office="eg-101", seq=seq, ts=datetime.now(UTC),
                 type=etype, **fields)  # type: ignore[arg-type]


def _gaps(store: Store) -> list[tuple[int, int]]:
    return [(g["from_seq"], g["to_seq"]) for g in store.gaps("eg-101")]


def test_gaps_are_found_split_and_filled(store_target: str) -> None:
    store = Store(store_target)
    assert store.note_seq("eg-101", 5, 0.0).new_gap is None  # first sight is the baseline
    assert store.note_seq("eg-101", 10, 0.0).new_gap == (6, 9)
    assert store.note_seq("eg-101", 8, 0.0).filled
    assert _gaps(store) == [(6, 7), (9, 9)]
    assert not store.note_seq("eg-101", 3, 0.0).filled  # older than the baseline, no gap
    store.note_seq("eg-101", 6, 0.0)
    store.note_seq("eg-101", 7, 0.0)
    store.note_seq("eg-101", 9, 0.0)
    assert _gaps(store) == []
    assert store.tail_gap("eg-101", 12, 0.0) == (11, 12)
    assert store.tail_gap("eg-101", 12, 0.0) is None
    # nothing stored yet: the office's first events were lost; ask for a bounded window
    assert store.tail_gap("eg-109", 3, 0.0) == (1, 3)
    assert store.tail_gap("eg-110", 5000, 0.0, first_window=1000) == (4001, 5000)


def test_void_range_is_not_a_gap_and_reset_starts_over(store_target: str) -> None:
    store = Store(store_target)
    store.note_seq("eg-101", 1, 0.0)
    store.note_seq("eg-101", 300, 0.0)
    assert _gaps(store) == [(2, 299)]
    assert store.void_range("eg-101", 10, 299)
    assert _gaps(store) == [(2, 9)]
    assert store.note_seq("eg-101", 1, 0.0, started=True).reset
    assert _gaps(store) == []
    assert store.max_seq("eg-101") == 1


def test_duplicates_are_counted_and_alarm_state_only_moves_forward(store_target: str) -> None:
    store = Store(store_target)
    event = _event(1)
    assert store.insert_event(event, 0.0)
    assert not store.insert_event(event, 0.0)
    assert store.office_rows()["eg-101"]["duplicates"] == 1
    alarm_id = str(uuid.uuid4())
    row, _ = store.upsert_alarm(alarm_id, "eg-101", state="resolved", at="t2", now=0.0, by="a")
    assert row["state"] == "closed" and row["resolved_by"] == "a"
    row, changed = store.upsert_alarm(alarm_id, "eg-101", state="active", at="t1", now=0.0)
    assert row["state"] == "closed"  # a late panic does not reopen it
    assert not changed


def _state(seq: int = 0, heartbeat_s: float = 1.0, **fields: object) -> State:
    base: dict[str, object] = {"office": "eg-101", "ts": datetime.now(UTC), "seq": seq,
                               "door": "locked", "contact": "closed", "alarm": "none",
                               "version": "1", "uptime_s": 1.0, "outbox_pending": 0,
                               "heartbeat_s": heartbeat_s}
    base.update(fields)
    return State(**base)  # type: ignore[arg-type]


def test_staleness_uses_three_heartbeats() -> None:
    model = LiveModel([{"id": "eg-101"}, {"id": "eg-102"}])
    assert model.on_state("eg-101", _state(), now=100.0)
    assert not model.on_state("eg-101", _state(uptime_s=2.0), now=100.5)  # clock only
    assert model.on_state("eg-101", _state(contact="open"), now=101.0)
    assert model.tick(103.9) == []
    assert model.tick(104.1) == ["eg-101"]
    views = {v["id"]: v for v in model.snapshot(104.1)}
    assert views["eg-101"]["stale"] and not views["eg-101"]["missing"]
    assert views["eg-102"]["missing"] and not views["eg-102"]["stale"]
    assert model.on_state("eg-101", _state(contact="open"), now=104.2)  # fresh again
    assert not model.offices["eg-101"].stale


def test_retry_backoff_grows_and_is_capped() -> None:
    assert retry_after(0) == 0
    assert retry_after(1) < retry_after(3) <= 60
    assert retry_after(50) == 300


def test_slow_sse_client_is_dropped_not_buffered() -> None:
    async def scenario() -> None:
        hub = Hub(queue_size=3)
        slow, fast = hub.subscribe(), hub.subscribe()
        received: list[str] = []

        async def reader() -> None:
            async for msg in hub.stream(fast, []):
                received.append(msg["id"])

        task = asyncio.create_task(reader())
        for i in range(10):
            hub.publish("office", {"i": i})
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert slow.dropped and slow not in hub.subscribers
        assert hub.dropped_clients == 1
        assert received == [str(i) for i in range(1, 11)]
        assert [m async for m in hub.stream(slow, [])] == []  # its stream simply ends
        task.cancel()

    asyncio.run(scenario())


def test_heartbeat_fast_path_checks_the_clock_fields() -> None:
    import json

    model = LiveModel([])
    state = _state(contact="open")
    raw = json.loads(state.to_bytes())
    model.on_state("eg-101", state, now=10.0)
    model.offices["eg-101"].raw_state = raw
    beat = dict(raw, ts="2026-11-25T10:00:00.000Z", uptime_s=99.5)
    assert model.heartbeat("eg-101", beat, now=11.0)
    assert model.offices["eg-101"].last_state_at == 11.0
    assert model.offices["eg-101"].state["uptime_s"] == 99.5  # type: ignore[index]
    assert not model.heartbeat("eg-101", dict(raw, ts="yesterday"), now=12.0)
    assert not model.heartbeat("eg-101", dict(raw, uptime_s=True), now=12.0)
    assert not model.heartbeat("eg-101", dict(raw, contact="closed"), now=12.0)  # a change
    assert not model.heartbeat("eg-101", {**raw, "extra": 1}, now=12.0)
    assert model.offices["eg-101"].last_state_at == 11.0


def test_a_burst_of_office_changes_goes_out_as_one_snapshot() -> None:
    import json

    from controller.guard.guard_config import GuardConfig, StoreCfg
    from controller.guard.pushes import OFFICE_BURST
    from controller.guard.service import GuardService

    async def scenario() -> None:
        service = GuardService(GuardConfig(store=StoreCfg(path=":memory:")))
        sub = service.hub.subscribe()
        for i in range(3):
            service.model.get(f"a-{i}", 0.0)
            service.pusher.changed(f"a-{i}")
        service.pusher.flush()
        kinds = [json.loads(sub.queue.get_nowait()["data"])["kind"]  # type: ignore[index]
                 for _ in range(sub.queue.qsize())]
        assert kinds == ["office"] * 3
        for i in range(OFFICE_BURST + 1):
            service.model.get(f"b-{i}", 0.0)
            service.pusher.changed(f"b-{i}")
        service.pusher.flush()
        assert sub.queue.qsize() == 1
        msg = json.loads(sub.queue.get_nowait()["data"])  # type: ignore[index]
        assert msg["kind"] == "snapshot"
        assert len(msg["data"]["offices"]) == OFFICE_BURST + 4
        service.store.close()

    asyncio.run(scenario())


def test_store_survives_reopen_and_checkpoints(store_target: str) -> None:
    path = store_target
    store = Store(path)
    for seq in range(1, 51):
        assert store.insert_event(_event(seq), 0.0)
        store.note_seq("eg-101", seq, 0.0)
    store.commit()
    store.checkpoint()
    store.close()
    again = Store(path)
    assert again.event_count("eg-101") == 50
    assert again.max_seq("eg-101") == 50
    again.close()
