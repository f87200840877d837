"""A whole fleet going silent at once: fault alarms are raised in bounded steps (issue #19).

Real SQLite store, the station's own live model and fault tracker; time is passed in.
"""

from __future__ import annotations

from pathlib import Path

from controller.guard.faults import MAX_CHANGES_PER_TICK, FaultTracker
from controller.guard.guard_config import FaultsCfg
from controller.guard.hub import Hub
from controller.guard.model import LiveModel
from controller.guard.store import Store

N = 2 * MAX_CHANGES_PER_TICK + 50


def test_a_fleet_going_offline_is_raised_over_a_few_ticks_and_nothing_is_left_out(
        tmp_path: Path) -> None:
    store = Store(str(tmp_path / "guard.sqlite3"), station="guard-1")
    model = LiveModel([{"id": f"o-{i:04d}", "site": "S"} for i in range(N)])
    raised: list[str] = []
    tracker = FaultTracker(store, model, Hub(), FaultsCfg(), guard_id="guard-1", started=0.0,
                           on_raised=lambda alarm_id, _mono: raised.append(alarm_id))
    tracker.set_broker(True, 0.0)
    for view in model.offices.values():
        model.on_availability(view.id, "offline", 1.0)  # the switch of the whole floor died
    per_tick = []
    for tick in range(5):
        tracker.tick(1000.0 + tick, 100.0 + tick)
        per_tick.append(len(raised) - sum(per_tick))
    assert per_tick[0] == MAX_CHANGES_PER_TICK  # bounded: the loop is free again at once
    assert sum(per_tick) == N and per_tick[3:] == [0, 0]  # and every office got its alarm
    faults = store.open_faults()
    assert len(faults) == N and {f["fault"] for f in faults} == {"offline"}
    assert len({f["office"] for f in faults}) == N
