"""Issue 16 item 7: escalation and resend timeouts run on the monotonic clock.

The station is driven with a controllable clock: `tick(wall, mono)` gets a wall
clock that is stepped an hour back (or forward) while the monotonic clock runs
on normally; escalation must come on time regardless.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.guard.guard_config import GuardConfig
from controller.guard.service import GuardService
from controller.protocol.messages import Event, Topics, utcnow
from controller.protocol.signing import keygen, load_private_key
from controller.settings import build

AFTER_S = 30.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[GuardService]:
    cfg = build(GuardConfig, {"store": {"path": str(tmp_path / "guard.sqlite3")},
                              "escalation": {"after_s": AFTER_S}})
    svc = GuardService(cfg)
    try:
        yield svc
    finally:
        svc.store.close()


def _ingest(svc: GuardService, event: Event, wall: float, mono: float) -> None:
    after: list[Callable[[], None]] = []
    svc.ingest.handle(Topics("officesec").event(event.office), event.to_bytes(), wall, mono,
                      after)
    svc.store.commit()
    for fn in after:
        fn()


def _panic(office: str = "eg-101") -> Event:
    return Event(id=uuid.uuid4(), office=office, seq=1, ts=utcnow(), type="panic",
                 alarm_id=uuid.uuid4())


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0])
def test_escalation_is_on_time_when_the_wall_clock_steps(service: GuardService,
                                                         step_s: float) -> None:
    wall, mono = time.time(), time.monotonic()
    event = _panic()
    _ingest(service, event, wall, mono)
    # the wall clock jumps; the monotonic clock only moves on by the time really passed
    assert service.escalator.tick(wall + step_s + AFTER_S - 1, mono + AFTER_S - 1) == []
    alarm: dict[str, Any] = service.store.alarm(str(event.alarm_id)) or {}
    assert alarm["escalated_at"] is None
    escalated = service.escalator.tick(wall + step_s + AFTER_S + 0.5, mono + AFTER_S + 0.5)
    assert [a["alarm_id"] for a in escalated] == [str(event.alarm_id)]
    assert escalated[0]["escalation_level"] == 1


def test_escalates_at_counts_down_on_the_monotonic_clock(service: GuardService) -> None:
    event = _panic()
    _ingest(service, event, time.time(), time.monotonic())
    start = time.monotonic()
    service.escalator.wall = lambda: time.time() - 3600  # the wall clock went back an hour
    alarm: dict[str, Any] = service.store.alarm(str(event.alarm_id)) or {}
    assert AFTER_S - 1 < alarm["escalates_in_s"] <= AFTER_S
    service.escalator.mono = lambda: start + 10
    alarm = service.store.alarm(str(event.alarm_id)) or {}
    assert AFTER_S - 11 < alarm["escalates_in_s"] <= AFTER_S - 9


def test_gap_resend_retry_is_on_the_monotonic_clock(service: GuardService) -> None:
    key = service.commander  # a signing key is needed to ask for a resend
    with tempfile.TemporaryDirectory() as tmp:
        keygen(Path(tmp))
        key.key = load_private_key(Path(tmp) / "guard-signing.key")
    sent: list[bytes] = []
    key._publish = lambda _topic, payload: sent.append(payload) is None
    wall, mono = time.time(), time.monotonic()
    service.store.note_seq("eg-101", 1, wall)
    service.store.note_seq("eg-101", 5, wall)  # 2..4 missing
    service.repairer.tick(wall, mono)
    assert len(sent) == 1
    service.repairer.tick(wall - 3600, mono + 1)  # retry_after(1) is 2 s: not yet
    assert len(sent) == 1
    service.repairer.tick(wall - 3600 + 2.5, mono + 2.5)  # clock stepped back: still retried
    assert len(sent) == 2
