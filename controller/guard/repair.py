"""Gap repair: ask offices to publish missing events again (`resend`).

A broker's PUBACK is not the end of the road: a broker that crashes before
saving can lose what it acknowledged. The station therefore asks again for
every gap in an office's `seq`, and for a lost tail (the `seq` in the
office's state is ahead of the store for longer than a grace period).
Requests are chunked (10,000 events), rate-limited and retried with backoff,
timed on the monotonic clock (a clock step neither stalls nor floods them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from controller.guard.commander import Commander
from controller.guard.model import LiveModel
from controller.guard.store import Store
from controller.protocol.names import MAX_RESEND

log = structlog.get_logger("officesec.guard.repair")

TAIL_GRACE_S = 2.0
MAX_REQUESTS_PER_TICK = 20


def retry_after(requests: int) -> float:
    """Seconds to wait before asking again for a gap already asked `requests` times."""
    if requests == 0:
        return 0.0
    return float(min(2 * 2 ** (requests - 1), 60 if requests < 10 else 300))


class Repairer:
    """Called on every tick of the service with the current clocks."""

    def __init__(self, store: Store, model: LiveModel, commander: Commander,
                 on_gap: Callable[[str], None], by: str) -> None:
        """`on_gap(office)` pushes the office's new gap list to the dashboard."""
        self.store = store
        self.model = model
        self.commander = commander
        self.on_gap = on_gap
        self.by = by
        self.requests_sent = 0
        self._warned_unsigned = False
        self._asked: dict[tuple[str, int], float] = {}  # gap -> monotonic time last asked

    def tick(self, wall: float, mono: float) -> None:
        """Find lost tails, then (re)request open gaps that are due."""
        self._tails(wall, mono)
        if not self.commander.can_sign:
            if not self._warned_unsigned and self.store.gaps():
                log.error("gap_repair_impossible", reason="no signing key configured")
                self._warned_unsigned = True
            return
        sent = 0
        gaps = self.store.gaps()
        for gap in gaps:
            if sent >= MAX_REQUESTS_PER_TICK:
                break
            key = (gap["office"], gap["from_seq"])
            asked = self._asked.get(key)
            if asked is None and gap["last_request"] is not None:
                # asked before a restart: only the wall clock knows when; never in the future
                asked = mono - max(0.0, wall - gap["last_request"])
                self._asked[key] = asked
            if asked is not None and mono - asked < retry_after(gap["requests"]):
                continue
            self._request(gap, wall)
            self._asked[key] = mono
            sent += 1
        if len(self._asked) > 2 * len(gaps) + 1000:
            live = {(g["office"], g["from_seq"]) for g in gaps}
            self._asked = {k: v for k, v in self._asked.items() if k in live}
        if sent:
            self.store.commit()

    def _tails(self, wall: float, mono: float) -> None:
        for view in self.model.offices.values():
            state_seq = (view.state or {}).get("seq")
            pending = (view.state or {}).get("outbox_pending")
            if (not isinstance(state_seq, int) or state_seq <= self.store.max_seq(view.id)
                    or (isinstance(pending, int) and pending > 0)):
                # an office still replaying its outbox is not missing its tail: asking
                # for a resend now would only send everything twice
                view.tail_ahead_since = None
                continue
            if self.store.max_seq(view.id) == 0:
                continue
            if view.tail_ahead_since is None:
                view.tail_ahead_since = mono
            elif mono - view.tail_ahead_since >= TAIL_GRACE_S:
                gap = self.store.tail_gap(view.id, state_seq, wall)
                view.tail_ahead_since = None
                if gap:
                    self.store.commit()
                    log.warning("seq_tail_missing", office=view.id, from_seq=gap[0],
                                to_seq=gap[1])
                    self.on_gap(view.id)

    def _request(self, gap: dict[str, Any], wall: float) -> None:
        lo = gap["from_seq"]
        hi = min(gap["to_seq"], lo + MAX_RESEND - 1)
        command = self.commander.build("resend", gap["office"], self.by, from_seq=lo, to_seq=hi)
        self.commander.send(command)
        self.store.gap_requested(gap["office"], lo, wall)
        self.requests_sent += 1
        log.info("resend_requested", office=gap["office"], from_seq=lo, to_seq=hi,
                 attempt=gap["requests"] + 1)
