"""Helpers for driving the real state machine with plain times (no tests here).

Times are plain floats (monotonic seconds); the wall clock is derived from them,
so every test reads as a timeline.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.office.machine import (
    AlarmChanged,
    AlarmRecord,
    CommandIn,
    Effect,
    Emit,
    Machine,
    NeighborAlarm,
    SetOutput,
    Started,
    Tick,
)
from controller.office.machine import Edge as EdgeIn

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def wall(at: float) -> datetime:
    return T0 + timedelta(seconds=at)


def new_id() -> str:
    return str(uuid.uuid4())


def make(**kw: Any) -> Machine:
    """A machine with the defaults of a typical office (contact, no remote release)."""
    cfg: dict[str, Any] = {"release_s": 5.0, "held_open_s": 30.0, "line_fault_s": 60.0,
                           "has_contact": True, "allow_remote_release": False}
    cfg.update(kw)
    return Machine(**cfg)


class Driver:
    """Feeds inputs to one machine and keeps the effects of the last input."""

    def __init__(self, machine: Machine | None = None, **kw: Any) -> None:
        self.m = machine or make(**kw)
        self.fx: list[Effect] = []

    def start(self, at: float = 0.0, levels: dict[str, bool] | None = None,
              alarm: AlarmRecord | None = None, lockdown: bool = False,
              uid: str = "", **more: Any) -> list[Effect]:
        lv = {"panic": False, "release": False, "door": False, "rex": False}
        lv.update(levels or {})
        return self._do(Started(at, wall(at), lv, alarm, lockdown, uid or new_id(), **more))

    def edge(self, name: str, active: bool, at: float, uid: str = "") -> list[Effect]:
        return self._do(EdgeIn(name, active, at, wall(at), uid or new_id()))  # type: ignore[arg-type]

    def press(self, name: str, at: float, hold: float = 0.2) -> list[Effect]:
        """A clean press and release; returns the effects of the press.

        An input that must hold its level (release, fire) counts `stable_s` after
        its edge: here the edge comes that much before `at`, so the press takes
        effect AT `at` (the tick when it has been stable long enough), and its
        letting go has settled by `at + hold`.
        """
        stable = self.m.inputs[name].stable_s
        fx = self.edge(name, True, at - stable)
        if stable:
            fx = fx + self.tick(at)
            self.edge(name, False, at + hold - stable)
            self.tick(at + hold)
        else:
            self.edge(name, False, at + hold)
        return fx

    def tick(self, at: float) -> list[Effect]:
        return self._do(Tick(at, wall(at)))

    def run_until(self, at: float) -> list[Effect]:
        """Tick at every deadline up to `at`, as the daemon does; all effects in order."""
        out: list[Effect] = []
        for _ in range(10_000):  # a deadline that never clears is a bug, not a hang
            due = self.m.next_deadline()
            if due is None or due > at:
                return out
            out += self.tick(due)
        raise AssertionError(f"deadline {self.m.next_deadline()} does not clear when due")

    def cmd(self, name: str, at: float, alarm_id: str | None = None, by: str = "guard-1",
            nonce: str = "", uid: str = "") -> list[Effect]:
        return self._do(CommandIn(name, by, nonce or new_id(), at, wall(at),  # type: ignore[arg-type]
                                  alarm_id, uid or new_id()))

    def neighbor(self, office: str, is_open: bool, at: float) -> list[Effect]:
        return self._do(NeighborAlarm(office, is_open, at, wall(at)))

    def _do(self, event: Any) -> list[Effect]:
        self.fx = self.m.handle(event)
        return self.fx

    @property
    def alarm_id(self) -> str:
        assert self.m.alarm is not None
        return self.m.alarm.alarm_id


def types(fx: list[Effect]) -> list[str]:
    return [e.type for e in fx if isinstance(e, Emit)]


def emits(fx: list[Effect], etype: str) -> list[Emit]:
    return [e for e in fx if isinstance(e, Emit) and e.type == etype]


def one(fx: list[Effect], etype: str) -> Emit:
    found = emits(fx, etype)
    assert len(found) == 1, f"expected one {etype}, got {types(fx)}"
    return found[0]


def outs(fx: list[Effect]) -> list[tuple[str, bool]]:
    return [(e.name, e.on) for e in fx if isinstance(e, SetOutput)]


def alarms(fx: list[Effect]) -> list[AlarmRecord | None]:
    return [e.alarm for e in fx if isinstance(e, AlarmChanged)]
