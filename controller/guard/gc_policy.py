"""Keep Python's cyclic garbage collector from pausing the event loop of a big station.

A station following thousands of offices holds hundreds of thousands of
long-lived objects (office views, their states, token buckets, topic
caches). Every full (generation 2) collection walks all of them while the
event loop waits: measured 36-176 ms with 5,000 offices on this machine, a
tail an alarm would wait behind. Nearly all of these objects are freed by
reference counting (no cycles), so walking them finds nothing.

So every `FREEZE_S` (2 s) the station runs a cheap young collection and then
`gc.freeze()`s what survived: a full collection then only walks what was
allocated since. Every `FULL_S` it unfreezes and runs one full collection
(timed and logged), so that cycles which became garbage after being frozen
are still reclaimed, at a known, rare moment instead of at random.
"""

from __future__ import annotations

import gc
import time

import structlog

log = structlog.get_logger("officesec.guard.gc")

FREEZE_S = 2.0
FULL_S = 6 * 3600.0


class GcPolicy:
    """Call `tick(mono)` from the station's ticker."""

    def __init__(self, mono: float, *, freeze_s: float = FREEZE_S, full_s: float = FULL_S
                 ) -> None:
        """Start the clocks at `mono`."""
        self.freeze_s = freeze_s
        self.full_s = full_s
        self._frozen_at = mono
        self._full_at = mono
        self.full_pause_ms = 0.0

    def tick(self, mono: float) -> None:
        """Freeze the survivors now and then; a full collection rarely."""
        if mono - self._full_at >= self.full_s:
            self._full_at = self._frozen_at = mono
            gc.unfreeze()
            start = time.perf_counter()
            found = gc.collect()
            self.full_pause_ms = (time.perf_counter() - start) * 1000
            gc.freeze()
            log.info("gc_full_collection", ms=round(self.full_pause_ms, 1), collected=found,
                     frozen=gc.get_freeze_count())
        elif mono - self._frozen_at >= self.freeze_s:
            self._frozen_at = mono
            gc.collect(1)  # young objects only: short
            gc.freeze()
