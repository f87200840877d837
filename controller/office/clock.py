"""Time as a collaborator: the daemon asks a clock, so tests can pass a fake one.

The state machine already takes `now` as an argument; this is the same idea one
level up. `SystemClock` is what runs on a Pi; `controller.office.testing.FakeClock`
is what the tests use to get past a debounce or a release pulse without sleeping.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from controller.protocol.messages import utcnow


class Clock(Protocol):
    """Monotonic seconds for timers, wall time (UTC) for what goes on the wire."""

    def monotonic(self) -> float:
        """Seconds on a clock that never steps back (timers, debounce, pulses)."""
        ...

    def wall(self) -> datetime:
        """Now in UTC, for event timestamps only (never for timing)."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    def wall(self) -> datetime:
        """UTC now, millisecond precision as on the wire."""
        return utcnow()
