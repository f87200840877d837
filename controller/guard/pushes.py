"""What the guard pushes to every screen about offices, and how late its event loop runs.

Split out of `service.py`: the coalescing of office changes into single
messages or one snapshot, and the loop-lag meter shown in /healthz and metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.guard.hub import Hub
from controller.guard.model import LiveModel

SNAPSHOT_MIN_S = 2.0  # a burst is pushed as a snapshot at most this often
OFFICE_BURST = 100  # more office changes than this at once go out as one snapshot
OFFICE_QUICK = 10  # up to this many changed offices are pushed at once, more on the next tick


class OfficePusher:
    """Collects changed offices and pushes them: one message each, or one snapshot for a burst.

    A burst (the fleet reconnecting after a broker restart, a power cut
    making many offices stale) would otherwise fill every dashboard's queue
    and drop it; a single snapshot replaces the whole picture instead.
    """

    def __init__(self, hub: Hub, model: LiveModel,
                 snapshot: Callable[[], dict[str, Any]]) -> None:
        """`snapshot` builds the whole picture (offices and open alarms) for a burst."""
        self.hub = hub
        self.model = model
        self.snapshot = snapshot
        self.dirty: set[str] = set()
        self._last_snapshot = 0.0

    def changed(self, office: str) -> None:
        """Mark an office as changed; `flush()` pushes it."""
        self.dirty.add(office)

    def flush_small(self) -> None:
        """Push now if only a few offices changed; a larger set waits for the tick's flush."""
        if len(self.dirty) <= OFFICE_QUICK:
            self.flush()

    def flush(self) -> None:
        """Push what changed since the last flush."""
        if not self.dirty:
            return
        if len(self.dirty) > OFFICE_BURST and self.hub.subscribers:
            now = time.monotonic()
            if now - self._last_snapshot < SNAPSHOT_MIN_S:
                return  # keep collecting: one snapshot covers them all
            self._last_snapshot = now
            self.dirty = set()
            self.hub.publish("snapshot", self.snapshot())
            return
        dirty, self.dirty = self.dirty, set()
        mono = time.monotonic()
        for office in sorted(dirty):
            view = self.model.offices.get(office)
            if view is not None:
                self.hub.publish("office", view.to_dict(mono))


class LagMeter:
    """The largest event-loop lag of the current and the previous minute."""

    def __init__(self) -> None:
        """Start an empty window now."""
        self._max = self._prev_max = 0.0
        self._window_start = time.monotonic()

    def note(self, lag: float, mono: float) -> None:
        """One measured lag (seconds) at monotonic time `mono`."""
        if mono - self._window_start > 60:
            self._prev_max, self._max = self._max, 0.0
            self._window_start = mono
        self._max = max(self._max, lag)

    @property
    def max_s(self) -> float:
        """The largest lag seen in the last minute or so (seconds)."""
        return max(self._max, self._prev_max)
