"""Several guard stations on one PostgreSQL store act as one (contract §8).

Every station receives every office message on its own MQTT session and
writes to the shared store (events are unique by id there, alarms by
alarm id). Two things need more than that:

- **One leader.** Whatever must happen once per system, not once per
  station (escalation, fault alarms, `resend` repair, ack re-sends,
  scheduled drills, retention), runs only on the station holding a
  PostgreSQL session advisory lock. Each station keeps one dedicated
  connection (outside the pool: a pooled connection would keep the lock
  when returned) and tries the lock every `heartbeat_s`; the leader runs
  `SELECT 1` on it at the same rate. A failed or hung heartbeat makes the
  station stop leading *before* it reconnects (fencing); a killed leader's
  session ends with its socket, so another station takes over within about
  one heartbeat.
- **Every screen current.** A commit that changed alarms sends their ids
  with `pg_notify` (`controller/guard/db.py`); every other station listens
  on its own connection, re-reads those alarms and pushes them to its
  dashboards (SSE). A notification is only a hint: after every (re)connect
  of the listener the station pushes a fresh snapshot from the tables,
  because notifications sent while it was not listening are lost.

With SQLite there is one station: `Solo` is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from controller.guard.db import NOTIFY_CHANNEL, redact_url
from controller.guard.drills import SelfTester
from controller.guard.escalation import Escalator
from controller.guard.hub import Hub
from controller.guard.ingest import Ingest
from controller.guard.model import LiveModel
from controller.guard.pushes import OfficePusher
from controller.guard.store import Store

log = structlog.get_logger("officesec.guard.cluster")

LEADER_LOCK = 0x6F66_7365_6302  # advisory lock key of the leader ("ofsec" + 2)
HEARTBEAT_S = 1.0
CONNECT: dict[str, Any] = {"connect_timeout": 3, "keepalives": 1, "keepalives_idle": 5,
           "keepalives_interval": 2, "keepalives_count": 2, "tcp_user_timeout": 10000}


class Solo:
    """A station alone on its store (SQLite): always the leader."""

    role = "solo"

    def __init__(self) -> None:
        """Leader from the start."""
        self.leader = True
        self.since = time.time()
        self.takeovers = 0

    async def start(self) -> None:
        """Nothing to run."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def health(self) -> dict[str, Any]:
        """For /healthz."""
        return {"role": self.role, "leader": self.leader, "since": self.since}


class PgCluster(Solo):
    """Leader election and change notifications over a shared PostgreSQL store."""

    def __init__(self, url: str, station: str, *, on_leader: Callable[[bool], None],
                 on_alarms: Callable[[list[str]], None], on_resync: Callable[[], None],
                 on_offices: Callable[[list[str]], None] | None = None,
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        """Callbacks run on the event loop: leadership changed, alarms changed elsewhere."""
        super().__init__()
        self.leader = False
        self.url = url
        self.station = station
        self.on_leader = on_leader
        self.on_alarms = on_alarms
        self.on_resync = on_resync
        self.on_offices = on_offices
        self.heartbeat_s = heartbeat_s
        self.listening = False
        self.notifications = 0
        self._conn: Any = None  # the campaign's connection (it holds the lock when leading)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def role(self) -> str:  # type: ignore[override]
        """`leader` or `follower`."""
        return "leader" if self.leader else "follower"

    async def start(self) -> None:
        """Try for the lead once, then keep campaigning and listening in the background.

        Called before MQTT starts, so a lone station leads from its first message on.
        """
        import psycopg  # noqa: PLC0415

        try:
            self._conn = await asyncio.wait_for(self._connect(), 5 * self.heartbeat_s + 3)
            await self._try_lock(self._conn)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("cluster_connection_failed", url=redact_url(self.url), error=str(exc)[:200])
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._campaign()), loop.create_task(self._listen())]

    async def stop(self) -> None:
        """Stop both; the lock goes with the connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._set_leader(False, "stopped")

    def health(self) -> dict[str, Any]:
        """For /healthz: role, since when, whether change notifications arrive."""
        return {**super().health(), "listening": self.listening,
                "notifications": self.notifications, "takeovers": self.takeovers}

    def _set_leader(self, leader: bool, why: str) -> None:
        if leader == self.leader:
            return
        self.leader = leader
        self.since = time.time()
        if leader:
            self.takeovers += 1
        log.warning("cluster_leader" if leader else "cluster_follower", station=self.station,
                    why=why)
        try:
            self.on_leader(leader)
        except Exception:
            log.exception("cluster_on_leader_failed")

    async def _connect(self) -> Any:
        import psycopg  # noqa: PLC0415 - only PostgreSQL stations

        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, **CONNECT)

    async def _campaign(self) -> None:
        """Take the lock when it is free; while holding it, prove every beat that we still do."""
        import psycopg  # noqa: PLC0415

        while True:
            conn, self._conn = self._conn, None
            try:
                if conn is None:
                    conn = await asyncio.wait_for(self._connect(), 5 * self.heartbeat_s + 3)
                while True:
                    await asyncio.sleep(self.heartbeat_s)
                    if self.leader:
                        await asyncio.wait_for(conn.execute("SELECT 1"), 3 * self.heartbeat_s)
                    else:
                        await self._try_lock(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                # fence first: stop leading, then reconnect (the lock may be gone already)
                self._set_leader(False, f"store connection lost: {str(exc)[:200]}")
                log.warning("cluster_connection_failed", url=redact_url(self.url),
                            error=str(exc)[:200])
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(self.heartbeat_s)

    async def _try_lock(self, conn: Any) -> None:
        cur = await asyncio.wait_for(
            conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)), 3 * self.heartbeat_s)
        row = await cur.fetchone()
        if row and row[0]:
            self._set_leader(True, "lock acquired")

    async def _listen(self) -> None:
        """LISTEN for other stations' alarm changes; re-read everything after each reconnect."""
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        while True:
            conn = None
            try:
                conn = await asyncio.wait_for(self._connect(), 5 * self.heartbeat_s + 3)
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
                self.listening = True
                self.on_resync()
                async for note in conn.notifies():
                    self._handle(note.payload)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("cluster_listen_failed", error=str(exc)[:200])
            except Exception:
                log.exception("cluster_listen_crashed")
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(self.heartbeat_s)

    def _handle(self, payload: str) -> None:
        """One notification: the alarms (or office states) another station changed."""
        try:
            data = json.loads(payload)
            alarms = [str(i) for i in data.get("alarms", [])][:1000]
            offices = [str(i) for i in data.get("offices", [])][:1000]
            origin = str(data.get("from", ""))
        except (ValueError, AttributeError, TypeError):
            log.warning("cluster_bad_notification", payload=payload[:200])
            return
        if origin == self.station:
            return  # our own commit: already shown
        self.notifications += 1
        try:
            if alarms:
                self.on_alarms(alarms)
            if offices and self.on_offices is not None:
                self.on_offices(offices)
        except Exception:
            log.exception("cluster_on_change_failed")


class Station(Protocol):
    """What the cluster callbacks need from the station (GuardService)."""

    store: Store
    hub: Hub
    escalator: Escalator
    model: LiveModel
    ingest: Ingest
    selftest: SelfTester
    pusher: OfficePusher

    def health(self) -> dict[str, Any]: ...

    def offices(self) -> list[dict[str, Any]]: ...


GAP_VIEW_S = 2.0  # a follower re-reads the gap counts (kept by the leader) this often


class Follow:
    """The station's side of the cluster: what to do on leadership and on others' changes."""

    def __init__(self, svc: Station, cfg_url: str, station: str) -> None:
        """`Solo` on SQLite, `PgCluster` on a shared store."""
        self.svc = svc
        self._gaps_read = 0.0
        self.cluster: Solo = PgCluster(
            cfg_url, station, on_leader=self._on_leader, on_alarms=self._on_alarms,
            on_resync=self._on_resync, on_offices=self._on_offices,
        ) if svc.store.shared else Solo()
        svc.ingest.keeps_seq = lambda: self.leader  # gaps are kept by the leader alone
        svc.selftest.leads = lambda: self.leader  # scheduled drill rounds too

    @property
    def leader(self) -> bool:
        """Run the once-per-system work (escalation, faults, repair, drills, retention)."""
        return self.cluster.leader

    def _on_leader(self, leader: bool) -> None:
        svc = self.svc
        if leader:
            svc.store.reload_seq()  # the old leader kept the sequences until now
            svc.escalator.resume()
        svc.hub.publish("health", svc.health())

    def _on_alarms(self, ids: list[str]) -> None:
        for alarm_id in ids:
            alarm = self.svc.store.alarm(alarm_id)
            if alarm is not None:
                self.svc.hub.publish("alarm", alarm)

    def _on_offices(self, ids: list[str]) -> None:
        """Another member of the ingest group stored these offices' new states: take them."""
        mono = time.monotonic()
        for office, info in self.svc.store.office_infos(ids).items():
            state = info.get("state")
            if isinstance(state, dict) and self.svc.model.state_elsewhere(office, state, mono):
                if info.get("location"):
                    self.svc.model.offices[office].location = dict(info["location"])
                self.svc.pusher.changed(office)
        self.svc.pusher.flush_small()  # thousands at start-up: one snapshot on the next tick

    def _on_resync(self) -> None:
        if self.svc.hub.subscribers:
            self.svc.hub.publish("snapshot", {"offices": self.svc.offices(),
                                              "alarms": self.svc.store.alarms(open_only=True)})

    def follower_tick(self, mono: float) -> None:
        """A follower shows the gaps the leader records (it does not keep sequences itself)."""
        if self.leader or mono - self._gaps_read < GAP_VIEW_S:
            return
        self._gaps_read = mono
        counts: dict[str, int] = {}
        for gap in self.svc.store.gaps():
            counts[gap["office"]] = counts.get(gap["office"], 0) + 1
        for office, view in self.svc.model.offices.items():
            if view.gaps != counts.get(office, 0):
                view.gaps = counts.get(office, 0)
                self.svc.pusher.changed(office)
