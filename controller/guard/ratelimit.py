"""Token buckets and log throttling: pure, time passed in, no I/O.

Used at ingest (per office, before any parsing, so that one flooding office
costs the station a dictionary lookup per message and cannot delay another
office's panic) and for logs that a hostile client could otherwise make
repeat thousands of times a second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; starts full."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if there are enough; False means: over the limit."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        elif now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class Throttle:
    """Lets one log line per key through every `every_s`; counts what it held back."""

    def __init__(self, every_s: float = 10.0, max_keys: int = 1000) -> None:
        """Keys beyond `max_keys` share one slot, so the table itself stays bounded."""
        self.every_s = every_s
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: stay quiet; otherwise how many lines were held back since the last one."""
        if key not in self._last and len(self._last) >= self.max_keys:
            key = "*"
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


class RepeatFilter(logging.Filter):
    """A stdlib log filter: the same message at most once per `every_s` (uvicorn, asyncio).

    Without it an exhausted file-descriptor table makes asyncio log "Too many
    open files" for every failed accept, hundreds of megabytes in seconds.
    """

    def __init__(self, every_s: float = 10.0) -> None:
        """One line per distinct message text per `every_s`."""
        super().__init__()
        self.throttle = Throttle(every_s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Let the first through, count the repeats and mention them with the next one."""
        try:
            text = f"{record.name}:{record.levelno}:{record.getMessage()[:200]}"
        except (TypeError, ValueError):
            text = f"{record.name}:{record.levelno}:{record.msg!s:.200}"
        held = self.throttle.allow(text, time.monotonic())
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} (repeated {held} times, not logged)"
        return True
