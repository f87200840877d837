"""Inputs and effects of the office state machine: plain frozen values.

Kept apart from `machine.py` so the daemon, the tests and the tools can name
them without pulling in the logic, and so each file stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from controller.protocol.names import (
    ALARM_COMMANDS,
    INPUT_NAMES,
    LINE_CONDITIONS,
    OUTPUT_NAMES,
    InputName,
    LineCondition,
    OfficeCommand,
    OutputName,
)

__all__ = ["ALARM_COMMANDS", "INPUT_NAMES", "LINE_CONDITIONS", "OUTPUT_NAMES", "InputName",
           "LineCondition", "OfficeCommand", "OutputName"]


# ---------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Edge:
    """A raw level change of one input; `active` is logical (pressed / door open)."""

    name: InputName
    active: bool
    at: float
    wall: datetime
    uid: str = ""  # a fresh id the machine may use as an alarm id


@dataclass(frozen=True)
class Tick:
    """Time has passed; deadlines up to `at` are due."""

    at: float
    wall: datetime


@dataclass(frozen=True)
class AlarmRecord:
    """The open alarm, as it survives restarts and goes on the retained topic."""

    alarm_id: str
    raised_at: datetime
    presses: int = 1
    state: Literal["active", "acknowledged"] = "active"
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    test: bool = False


@dataclass(frozen=True)
class Started:
    """The daemon came up: initial input levels and what was persisted before."""

    at: float
    wall: datetime
    levels: dict[str, bool]
    alarm: AlarmRecord | None = None
    lockdown: bool = False
    uid: str = ""
    void: tuple[int, int] | None = None  # seq numbers skipped after a crash (never used)
    panic_was_active: bool = False  # the panic input was already active before this start
    last_walk_test: datetime | None = None  # last physical press (walk test), None: never
    line: LineCondition = "ok"  # a supervised panic line's condition at start


@dataclass(frozen=True)
class CommandIn:
    """An authenticated guard command (signature, window, nonce already checked)."""

    cmd: OfficeCommand
    by: str
    nonce: str
    at: float
    wall: datetime
    alarm_id: str | None = None
    uid: str = ""


@dataclass(frozen=True)
class NeighborAlarm:
    """A neighbour's retained alarm topic changed (open or resolved)."""

    office: str
    open: bool
    at: float
    wall: datetime


@dataclass(frozen=True)
class NeighborsResync:
    """The link (re)connected: the retained alarms are about to be delivered again.

    A neighbour resolved while we were offline sends nothing (an empty retained
    payload is not redelivered), so every neighbour not confirmed open again
    within a short settle time is dropped.
    """

    at: float
    wall: datetime


@dataclass(frozen=True)
class LineChanged:
    """A supervised panic line changed condition (short, cut, tamper, or ok again)."""

    condition: LineCondition
    at: float
    wall: datetime


Input = Edge | Tick | Started | CommandIn | NeighborAlarm | NeighborsResync | LineChanged


# --------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Emit:
    """Publish an event of this type (the daemon adds id, seq, office)."""

    type: str
    wall: datetime
    test: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SetOutput:
    """Drive an output: relay, ack LED (steady) or neighbour LED (blinking pattern)."""

    name: OutputName
    on: bool


@dataclass(frozen=True)
class AlarmChanged:
    """The open alarm changed (None: resolved) - persist it and publish it retained."""

    alarm: AlarmRecord | None


Effect = Emit | SetOutput | AlarmChanged
