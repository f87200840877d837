"""Stations that share the heartbeats: MQTT 5 shared subscription for `state` (issue #19).

Beyond what one station can read, `[guard] ingest_group` splits the offices'
states (the bulk: one per office per heartbeat) across every station of the
group with `$share/GROUP/<prefix>/office/+/state`: the broker gives each
message to one member. Events, alarms and availability stay unshared on
every station's own persistent session, so every station still sees every
alarm at once and the store de-duplicates them by id.

A station then hears only some heartbeats of an office (with Mosquitto's
round robin, often none at all), so two things are shared through the one
PostgreSQL store:

- **When an office was last heard.** Every `SYNC_S` each member writes, for
  the offices it heard since, the time on the database server's clock (so
  the stations' own clocks do not matter), and reads it back for the offices
  it has not heard itself for more than a heartbeat and a half. Staleness is
  judged from the newer of the two, with `GRACE_S` added for the time the
  news takes (two sync rounds).
- **What the office said.** A state that changes more than the clock is
  stored (as before) and announced with `pg_notify`; the other members re-read
  it (`Follow._on_offices`), so the leader's fault alarms (panic line, storage)
  and every screen show it, whichever member received it.

The shared subscription runs on its own clean-start MQTT session (`<client
id>-states`, logged in as `<username>-states` with the same password, which
`officesec provision` creates with read access to the states only): a member
that dies drops out of the group with its connection, where a persistent
session would keep receiving (and queuing) its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from controller.guard.consumer import BatchReadClient
from controller.guard.db import redact_url
from controller.guard.guard_config import GuardConfig
from controller.guard.model import LiveModel
from controller.guard.paho_loop import LoopDriver
from controller.guard.store import Store
from controller.mqttclient import connect_kwargs, make_client
from controller.protocol.messages import MAX_PAYLOAD_BYTES, Topics
from controller.protocol.names import STATES_ACCOUNT_SUFFIX
from controller.settings import MqttCfg

log = structlog.get_logger("officesec.guard.share")

SYNC_S = 0.5
GRACE_S = 2 * SYNC_S + 0.2  # a heartbeat another member heard reaches us at most this late
ASK_AFTER = 1.5  # read the shared time for offices we have not heard for this many heartbeats
CONNECT: dict[str, Any] = {"connect_timeout": 3, "keepalives": 1, "keepalives_idle": 5,
                           "keepalives_interval": 2, "keepalives_count": 2}
WRITE = (
    "INSERT INTO office_heard(office, heard_at)"
    " SELECT o, EXTRACT(EPOCH FROM clock_timestamp()) - a"
    " FROM unnest(%s::text[], %s::float8[]) AS t(o, a) ORDER BY o"  # one order: no deadlocks
    " ON CONFLICT (office) DO UPDATE SET heard_at = GREATEST(office_heard.heard_at,"
    " EXCLUDED.heard_at)")
READ = ("SELECT office, EXTRACT(EPOCH FROM clock_timestamp()) - heard_at FROM office_heard"
        " WHERE office = ANY(%s::text[])")  # an index lookup per id: 20,000 in ~40 ms

Deliver = Callable[[str, bytes, int, int, bool], None]


def _array(items: Iterable[str]) -> str:
    """A PostgreSQL array literal: thousands of ids as one text value, not one parameter each.

    psycopg's per-element list dumping was a tenth of the sync's cost at
    20,000 offices. Every element is quoted, so an odd id seen on a topic
    (a comma, a brace) stays one element.
    """
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for i in items) + "}"


def share_topic(group: str, topics: Topics) -> str:
    """The shared subscription of every office's state."""
    return f"$share/{group}/{topics.all_offices('state')}"


class SharedStates:
    """The member's share of the states, and the heard times it trades with the others."""

    def __init__(self, mqtt_cfg: MqttCfg, client_id: str, group: str, *, url: str,
                 model: LiveModel, deliver: Deliver) -> None:
        """`deliver` takes a state as the main session's messages are taken (QoS 0)."""
        self.cfg = mqtt_cfg
        self.group = group
        self.url = url
        self.model = model
        self.deliver = deliver
        self.topic = share_topic(group, Topics(mqtt_cfg.prefix))
        self.client_id = f"{client_id}-states"[:64]
        self.connected = False
        self.received = 0
        self.written = 0
        self.heard_elsewhere = 0
        self.sync_error: str | None = None
        # its own account where the broker has one per connection (use_username_as_clientid)
        login = mqtt_cfg if mqtt_cfg.username is None else mqtt_cfg.model_copy(
            update={"username": mqtt_cfg.username + STATES_ACCOUNT_SUFFIX})
        client = make_client(login, self.client_id, client_class=BatchReadClient)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        if isinstance(client, BatchReadClient):
            client.plain = self._on_plain
        client.on_message = self._on_message
        self.client = client
        self.driver = LoopDriver(client, mqtt_cfg, connect_kwargs(mqtt_cfg, persistent=False))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Join the group and start trading heard times (on the running loop)."""
        self.driver.start()
        self._task = asyncio.get_running_loop().create_task(self._sync_loop())

    async def stop(self) -> None:
        """Leave the group (clean disconnect) and stop syncing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.driver.stop()
        self.client.disconnect()
        await asyncio.sleep(0.05)  # the DISCONNECT is written by the loop
        self.driver.detach()

    def health(self) -> dict[str, Any]:
        """For /healthz."""
        return {"group": self.group, "connected": self.connected, "received": self.received,
                "heard_written": self.written, "heard_elsewhere": self.heard_elsewhere,
                "sync_error": self.sync_error}

    # ------------------------------------------------------------------ MQTT

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any,
                    _properties: Any) -> None:
        try:
            if reason_code.is_failure:
                log.error("share_connect_refused", reason=str(reason_code))
                return
            client.subscribe(self.topic, 0)
            self.driver.connacked = True
            self.connected = True
            log.info("share_joined", topic=self.topic, client_id=self.client_id)
        except Exception:
            log.exception("share_on_connect_failed")

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any,
                       _properties: Any) -> None:
        self.connected = False
        with contextlib.suppress(Exception):
            log.warning("share_disconnected", reason=str(reason_code))

    def _on_plain(self, topic: bytes, payload: bytes, mid: int, _qos: int, retain: bool) -> None:
        try:
            if len(payload) <= MAX_PAYLOAD_BYTES:
                self.received += 1
                self.deliver(topic.decode(), payload, mid, 0, retain)
        except UnicodeDecodeError:
            log.warning("mqtt_topic_not_utf8", topic=topic[:200])
        except Exception:
            log.exception("share_on_message_failed")

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        self._on_plain(message.topic.encode(), bytes(message.payload), message.mid, 0,
                       bool(message.retain))

    # ------------------------------------------------------------ heard times

    async def _sync_loop(self) -> None:
        import psycopg  # noqa: PLC0415 - only shared (PostgreSQL) stations

        while True:
            conn = None
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, **CONNECT)
                while True:
                    await self.sync(conn)
                    self.sync_error = None
                    await asyncio.sleep(SYNC_S)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self.sync_error = str(exc)[:200]
                log.warning("share_sync_failed", url=redact_url(self.url), error=str(exc)[:200])
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(SYNC_S)

    async def sync(self, conn: Any) -> None:
        """One round: write what we heard, read what the others heard of the rest."""
        heard, self.model.heard = self.model.heard or {}, {}
        now = time.monotonic()
        if heard:
            offices = list(heard)
            try:
                await asyncio.wait_for(conn.execute(WRITE, (
                    _array(offices), _array(f"{max(0.0, now - heard[o]):.3f}" for o in offices))),
                    5)
            except BaseException:
                self.model.heard = {**heard, **(self.model.heard or {})}  # again next round
                raise
            self.written += len(offices)
        # also offices only seen so far (availability): their states may all go to others
        ask = [v.id for v in self.model.offices.values() if (v.state is not None or v.seen) and (
            v.last_state_at is None or now - v.last_state_at > ASK_AFTER * v.heartbeat_s)]
        if not ask:
            return
        cur = await asyncio.wait_for(conn.execute(READ, (_array(ask),)), 5)
        rows = await cur.fetchall()
        now = time.monotonic()
        for office, age in rows:
            if self.model.heard_elsewhere(office, now - max(0.0, float(age))):
                self.heard_elsewhere += 1


def shared_states(cfg: GuardConfig, client_id: str, model: LiveModel, store: Store,
                  deliver: Deliver) -> SharedStates | None:
    """The station's member of `[guard] ingest_group`, or None when it reads every state."""
    if cfg.guard.ingest_group is None:
        return None
    model.stale_grace_s = GRACE_S  # others hear some of our offices' heartbeats
    model.heard = {}  # and we tell them which ones we heard
    store.announce_offices = True  # and see the states we store
    return SharedStates(cfg.mqtt, client_id, cfg.guard.ingest_group, url=cfg.store.target,
                        model=model, deliver=deliver)
