"""Login throttling: pure bookkeeping, time passed in.

Three budgets, each over a sliding window of `window_s`:

- per user name **and** client address: `attempts` failures lock that pair
  for `window_s`, doubling with every further lock (up to 16 x), so a guesser
  gets a handful of tries per hour, and only from his own address;
- per client address, across all names: `attempts * 10` failures lock the
  address (password spraying);
- per user name, across all addresses: beyond `attempts * 4` failures the
  name is closed to every address it has *not* logged in from before, so a
  distributed guesser is stopped but cannot lock the real guard out.

An attempt is counted before the password is checked (the check takes tens of
milliseconds in a thread); the caller serialises attempts per name, so a
parallel burst verifies at most `attempts` passwords.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MAX_KEYS = 10_000  # bookkeeping is bounded even against a stream of invented names
ADDRESS_FACTOR = 10
NAME_FACTOR = 4
MAX_BACKOFF = 16


@dataclass
class _Budget:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    locks: int = 0


class LoginThrottle:
    """Decides whether an attempt may be verified at all, and records its outcome."""

    def __init__(self, attempts: int, window_s: float) -> None:
        """`attempts` failures per `window_s` (the config's lockout_attempts / lockout_s)."""
        self.attempts = attempts
        self.window_s = window_s
        self._pairs: dict[str, _Budget] = {}  # key: name NUL address
        self._addresses: dict[str, _Budget] = {}
        self._names: dict[str, _Budget] = {}

    def _get(self, table: dict[str, _Budget], key: str, now: float) -> _Budget:
        budget = table.get(key)
        if budget is None:
            if len(table) >= MAX_KEYS:
                self._prune(table, now)
            budget = _Budget()
            table[key] = budget
        while budget.failures and now - budget.failures[0] > self.window_s:
            budget.failures.popleft()
        return budget

    def _prune(self, table: dict[str, _Budget], now: float) -> None:
        for key, budget in list(table.items()):
            if budget.locked_until <= now and (
                    not budget.failures or now - budget.failures[-1] > self.window_s):
                del table[key]
        while len(table) >= MAX_KEYS:  # all active: forget the oldest half
            for key in list(table)[: MAX_KEYS // 2]:
                del table[key]

    def blocked(self, name: str, address: str, now: float, *, trusted: bool) -> float | None:
        """Seconds until an attempt for `name` from `address` may be verified, or None."""
        waits = [b.locked_until - now
                 for b in (self._get(self._pairs, f"{name}\0{address}", now),
                           self._get(self._addresses, address, now))
                 if b.locked_until > now]
        name_budget = self._get(self._names, name, now)
        if not trusted and len(name_budget.failures) >= self.attempts * NAME_FACTOR:
            waits.append(self.window_s - (now - name_budget.failures[0]))
        return max(waits) if waits else None

    def attempt(self, name: str, address: str, now: float) -> None:
        """Count an attempt as a failure before verifying (undone by `succeeded`)."""
        pair = self._get(self._pairs, f"{name}\0{address}", now)
        addr = self._get(self._addresses, address, now)
        for budget, limit in ((pair, self.attempts), (addr, self.attempts * ADDRESS_FACTOR)):
            budget.failures.append(now)
            if len(budget.failures) >= limit:
                budget.locks = min(budget.locks + 1, MAX_BACKOFF.bit_length())
                budget.locked_until = now + self.window_s * 2 ** (budget.locks - 1)
                budget.failures.clear()
        self._get(self._names, name, now).failures.append(now)

    def succeeded(self, name: str, address: str, now: float) -> None:
        """The password was right: this pair starts afresh; the attempt was no failure."""
        self._pairs.pop(f"{name}\0{address}", None)
        for budget in (self._get(self._addresses, address, now),
                       self._get(self._names, name, now)):
            if budget.failures:
                budget.failures.pop()

    def locked_now(self, name: str, address: str, now: float) -> bool:
        """The pair is locked (after the attempt just counted): for the audit trail."""
        return self._get(self._pairs, f"{name}\0{address}", now).locked_until > now
