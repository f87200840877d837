"""Scheduled drills: every online office is sent `test`, must raise a drill alarm in time.

The drill's `panic` event (test=true, carrying the command's nonce) is the
answer; the station then resolves it itself (by "selftest"). Offices that
did not answer are listed for the guards (API and SSE).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from controller.guard.commander import Commander, Outcome
from controller.guard.guard_config import SelfTestCfg
from controller.guard.hub import Hub

log = structlog.get_logger("officesec.guard.selftest")

SELFTEST_USER = "selftest"


class SelfTester:
    """Runs one drill round now (`run`) or on its schedule (`loop`)."""

    def __init__(self, cfg: SelfTestCfg, commander: Commander, hub: Hub,
                 online: Callable[[], list[str]],
                 resolve: Callable[[str, str, str], Awaitable[Outcome]]) -> None:
        """`resolve(alarm_id, office, by)` sends a signed resolve and waits for it."""
        self.cfg = cfg
        self.commander = commander
        self.hub = hub
        self.online = online
        self.resolve = resolve
        self.last: dict[str, Any] | None = None
        self.running = False
        self.leads: Callable[[], bool] = lambda: True  # scheduled rounds: the leader only

    def report(self) -> dict[str, Any]:
        """The last round's result (for the API)."""
        return {"interval_h": self.cfg.interval_h, "answer_within_s": self.cfg.answer_within_s,
                "running": self.running, "last": self.last}

    async def loop(self) -> None:
        """Run a round every `interval_h` (the first one after one interval)."""
        if self.cfg.interval_h <= 0:
            return
        while True:
            await asyncio.sleep(self.cfg.interval_h * 3600)
            if self.leads():
                await self.run()

    async def run(self) -> dict[str, Any]:
        """Drill every online office at once; returns the round's result."""
        if not self.commander.can_sign:
            self.last = {"started_at": time.time(), "error": "no signing key configured",
                         "results": {}, "failed": []}
            return self.last
        self.running = True
        started = time.time()
        offices = self.online()
        log.info("selftest_started", offices=len(offices))
        try:
            results = await asyncio.gather(*(self._one(o) for o in offices))
        finally:
            self.running = False
        by_office = dict(zip(offices, results, strict=True))
        failed = sorted(o for o, r in by_office.items() if r != "ok")
        self.last = {"started_at": started, "finished_at": time.time(), "results": by_office,
                     "failed": failed}
        log.log(30 if failed else 20, "selftest_finished", offices=len(offices),
                failed=failed)
        self.hub.publish("selftest", self.last)
        return self.last

    async def _one(self, office: str) -> str:
        command = self.commander.build("test", office, SELFTEST_USER)
        outcome = await self.commander.send_and_wait(command, self.cfg.answer_within_s)
        if outcome.status != "confirmed" or outcome.event is None:
            return f"{outcome.status}: {outcome.reason}" if outcome.reason else outcome.status
        event = outcome.event
        if event.type != "panic" or not event.test or event.alarm_id is None:
            return f"unexpected answer: {event.type}"
        resolved = await self.resolve(str(event.alarm_id), office, SELFTEST_USER)
        if resolved.status != "confirmed":
            return f"drill raised but not resolved: {resolved.status}"
        return "ok"
