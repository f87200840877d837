"""Security events seen by the guard station: counted, kept (bounded), logged and pushed.

A security event is input that an honest office never sends: an alarm update
for another office's alarm, a flood beyond its rate, a location that
contradicts the roster, an office id nobody expects. The guard drops the
input and shows the event on the console (`GET /api/security`, SSE kind
`security`), so a misbehaving or compromised controller is noticed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from controller.guard.ratelimit import Throttle

log = structlog.get_logger("officesec.guard.security")

RECENT = 200
KINDS = ("alarm_office_mismatch", "rate_limited", "unknown_office", "location_mismatch")


class SecurityLog:
    """Counters per kind and office, the last `RECENT` events, one log line per key and 10 s."""

    def __init__(self, publish: Callable[[str, Any], None]) -> None:
        """`publish(kind, data)` is the hub's publish (the event loop's thread)."""
        self.publish = publish
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.by_office: dict[str, int] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._throttle = Throttle(10.0)
        self._max_offices = 1000

    def record(self, kind: str, office: str, detail: str, *, push: bool = True,
               **extra: Any) -> None:
        """Count one event; log and push it unless the same (kind, office) was just reported."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if office in self.by_office or len(self.by_office) < self._max_offices:
            self.by_office[office] = self.by_office.get(office, 0) + 1
        held = self._throttle.allow(f"{kind}:{office}", time.monotonic())
        if held is None:
            return
        entry = {"at": time.time(), "kind": kind, "office": office, "detail": detail[:300],
                 "repeats_not_shown": held, **extra}
        self.recent.append(entry)
        log.warning("security_event", **entry)
        if push:
            self.publish("security", entry)

    def summary(self) -> dict[str, Any]:
        """What `/api/security` answers: totals, per office, newest events first."""
        return {"counts": dict(self.counts), "total": sum(self.counts.values()),
                "by_office": dict(sorted(self.by_office.items())),
                "recent": list(reversed(self.recent))}
