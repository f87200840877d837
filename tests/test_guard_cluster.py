"""Leader election over PostgreSQL (cluster.py) in-process: one leader, fencing, takeover."""

from __future__ import annotations

import asyncio
import time

import psycopg

from controller.guard.cluster import LEADER_LOCK, PgCluster
from tests.pg import fresh_database


def _cluster(url: str, name: str, log: list[tuple[str, bool]]) -> PgCluster:
    return PgCluster(url, name, on_leader=lambda lead: log.append((name, lead)),
                     on_alarms=lambda ids: None, on_resync=lambda: None, heartbeat_s=0.2)


async def _until(pred: object, timeout: float) -> float:
    start = time.monotonic()
    while not pred():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def test_one_leader_and_a_fenced_takeover_when_its_session_dies() -> None:
    async def scenario(url: str) -> None:
        log: list[tuple[str, bool]] = []
        a, b = _cluster(url, "a", log), _cluster(url, "b", log)
        await a.start()
        assert a.leader  # a lone station leads before it takes its first message
        await b.start()
        await asyncio.sleep(1.0)
        assert a.leader and not b.leader
        # the leader's database session is killed (server restart, network cut, DBA):
        # it must stop leading by itself, and the other one takes over
        with psycopg.connect(url, autocommit=True) as admin:
            pids = [r[0] for r in admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                (LEADER_LOCK & 0xFFFFFFFF,))]
            assert len(pids) == 1
            admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        took = await _until(lambda: b.leader, 5)
        await _until(lambda: not a.leader, 5)
        assert b.leader and not a.leader, log
        assert ("a", False) in log and took < 5
        await a.stop()
        await b.stop()

    with fresh_database() as url:
        asyncio.run(scenario(url))
