"""The guard station's composition root: store, live model, MQTT, commands, timers.

Everything that changes state runs on the asyncio event loop. paho's thread
only appends to an inbox; the loop drains it in batches, commits the batch to
SQLite, acknowledges it to the broker, and then pushes the changes to the
dashboards. A crash anywhere before the commit means redelivery, not loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import structlog

from controller.guard.ack_retry import AckResender
from controller.guard.actions import Actions
from controller.guard.cluster import Follow
from controller.guard.commander import Commander
from controller.guard.consumer import GuardMqtt
from controller.guard.db import redact_url
from controller.guard.drills import SelfTester
from controller.guard.escalation import Escalator
from controller.guard.fault_texts import describe
from controller.guard.faults import FaultTracker
from controller.guard.gc_policy import GcPolicy
from controller.guard.guard_config import GuardConfig
from controller.guard.hub import Hub
from controller.guard.ingest import Ingest, IngestLimits
from controller.guard.metrics import Metrics, Sample
from controller.guard.model import LiveModel
from controller.guard.notify import Notifier
from controller.guard.pushes import LagMeter, OfficePusher
from controller.guard.repair import Repairer
from controller.guard.share import shared_states
from controller.guard.status import metrics_sample, station_health
from controller.guard.store import Store
from controller.guard.views import offices_view
from controller.protocol.messages import Event, Topics
from controller.protocol.signing import load_private_key

log = structlog.get_logger("officesec.guard.service")

TICK_S = 0.25
MAX_BATCH = 2000
STATE_BATCH = 500  # states per drain: an event arriving meanwhile waits at most one such batch
STATE_COALESCE_S = 0.02
CHECKPOINT_S = 5.0
FAULT_ENV = "OFFICESEC_FAULT_EXIT_BEFORE_COMMIT"
"""Failure injection for tests: exit (code 70) before committing the N-th stored event."""


class GuardService:
    """Owns every part of the station; the web app talks only to this object."""

    def __init__(self, cfg: GuardConfig) -> None:
        """Open the store and build the parts; nothing runs before `start()`."""
        self.cfg = cfg
        self.topics = Topics(cfg.mqtt.prefix)
        self.store = Store(cfg.store.target, station=cfg.guard.id)
        self.model = LiveModel([o.model_dump() for o in cfg.roster()])
        self._restore()
        self.hub = Hub()
        key = load_private_key(Path(cfg.security.signing_key)) if cfg.security.signing_key \
            else None
        self.mqtt = GuardMqtt(cfg, self._on_mqtt, self._on_mqtt_status)
        self.share = shared_states(cfg, self.mqtt.client_id, self.model, self.store,
                                   self._on_mqtt)
        self.commander = Commander(key, self.topics, self.mqtt.publish,
                                   cfg.security.command_timeout_s)
        sec = cfg.security
        self.ingest = Ingest(self.topics, self.store, self.model, self.hub, self.commander,
                             limits=IngestLimits(sec.office_rate, sec.office_burst, sec.alarm_rate,
                                          sec.alarm_burst, sec.max_unknown_offices))
        self.pusher = OfficePusher(self.hub, self.model, lambda: {
            "offices": self.offices(), "alarms": self.store.alarms(open_only=True)})
        self.ingest.office_changed = self.pusher.changed
        esc_topic = self.topics.guard_escalation(cfg.guard.id)
        console = cfg.escalation.console_url or (
            f"{'https' if cfg.guard.tls_cert else 'http'}://{cfg.guard.listen_host}:"
            f"{cfg.guard.listen_port}")
        self.notifier = Notifier(cfg.escalation, self.store, console_url=console,
                                 on_change=self._notifier_changed, push=self._push_alarm,
                                 language=cfg.guard.language, timezone=cfg.guard.timezone)
        self.escalator = Escalator(cfg.escalation, self.store, self.hub,
                                   lambda payload: self.mqtt.publish(esc_topic, payload),
                                   notifier=self.notifier)
        self.faults = FaultTracker(self.store, self.model, self.hub, cfg.faults,
                                   guard_id=cfg.guard.id, started=time.monotonic(),
                                   on_raised=self.escalator.note,
                                   language=cfg.guard.language)
        self.store.alarm_view = self._alarm_view
        self.messages_in = 0
        self.metrics = Metrics(self._metrics_sample)
        self.ingest.event_hooks.append(self.metrics.on_event)
        self.ingest.event_hooks.append(self._on_event)
        self.ingest.event_hooks.append(self.faults.on_event)
        self.repairer = Repairer(self.store, self.model, self.commander, self.push_gaps,
                                 by=f"guard:{cfg.guard.id}")
        self.actions = Actions(self.store, self.hub, self.commander, self.model,
                               language=cfg.guard.language)
        self.ack_resender = AckResender(self.store, self.model, self.commander, self.hub,
                                        cfg.faults.ack_resend_s)
        self.selftest = SelfTester(cfg.selftest, self.commander, self.hub, self.model.online_ids,
                                   self.actions.resolve_for)
        # several stations on one PostgreSQL store: one leader does the once-per-system work
        self.follow = Follow(self, cfg.store.target, cfg.guard.id)  # also gates ingest, drills
        self.gc = GcPolicy(time.monotonic())  # no full-heap GC pauses at random moments
        self.users = {u.name: u for u in cfg.users}
        self.broker_connected = False
        self.broker_changed_at = time.time()
        self.store_error: str | None = None
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        # two inboxes: events/alarms/availability always go first, so that an alarm
        # never waits behind thousands of heartbeats (a fleet's retained states at start)
        self._inbox: deque[tuple[str, bytes, int, int, bool]] = deque()
        self._states: deque[tuple[str, bytes, int, int, bool]] = deque()
        self.lag = LagMeter()
        self._lock = threading.Lock()
        self._scheduled: str | None = None  # None, "later" (states only) or "now"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        fault = os.environ.get(FAULT_ENV, "")
        self._fault_at = int(fault) if fault.isdigit() else 0
        self._last_prune: float | None = None  # monotonic

    def _alarm_view(self, alarm: dict[str, Any]) -> dict[str, Any]:
        """Every alarm the API or the stream shows: stored fields plus the live ones."""
        alarm = self.escalator.decorate(alarm)
        alarm.update(describe(alarm))
        return alarm

    def _push_alarm(self, alarm_id: str) -> None:
        alarm = self.store.alarm(alarm_id)
        if alarm is not None:
            self.hub.publish("alarm", alarm)

    def _notifier_changed(self) -> None:
        """A notification URL started or stopped failing: the station's own fault."""
        self.faults.station = {"notify"} if self.notifier.failing else set()

    def _on_event(self, event: Event) -> None:
        """After commit: an alarm's escalation clock starts when the station received it."""
        if event.alarm_id is not None and event.type in ("panic", "panic_repeat"):
            self.escalator.note(str(event.alarm_id), time.monotonic())

    def _restore(self) -> None:
        """Offices seen before a restart stay known; their gaps are still open."""
        for office, row in self.store.office_rows().items():
            view = self.model.offices.get(office)
            if view is None:
                view = self.model.get(office, time.monotonic())
                view.first_seen_at = None
            if not view.location:
                view.location = row["info"].get("location") or {}
            if self.cfg.guard.ingest_group and isinstance(row["info"].get("state"), dict):
                view.state = row["info"]["state"]  # its next state may reach another station
            view.duplicates = row["duplicates"]
        for gap in self.store.gaps():
            self.model.offices[gap["office"]].gaps += 1
        # a command that was waiting when the station stopped will never be matched now
        # (on a shared store another station may still be waiting for its own)
        if self.store.shared:
            return
        self.store.db.execute("UPDATE alarms SET command_status = ? WHERE command_status = 'sent'",
                              ("no confirmation seen (the station restarted)",))
        self.store.commit()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect to the broker and start the timers."""
        self._loop = asyncio.get_running_loop()
        await self.follow.cluster.start()  # a lone station on PostgreSQL leads at once
        self.mqtt.start()
        if self.share is not None:
            self.share.start()
        if self.follow.leader and not self.store.shared:
            self.escalator.resume()  # on a shared store: when it becomes the leader
        self._tasks = [self._loop.create_task(self._ticker()),
                       self._loop.create_task(self._checkpointer()),
                       self._loop.create_task(self.selftest.loop())]
        log.info("guard_started", guard=self.cfg.guard.id, offices=len(self.model.offices),
                 signing=self.commander.can_sign, store=redact_url(self.cfg.store.target))

    async def stop(self) -> None:
        """Stop timers, say offline on MQTT, close the store."""
        pending = [*self._tasks, *self.escalator.tasks, *self.notifier.tasks]
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.share is not None:
            await self.share.stop()
        await self.mqtt.aclose(1.0)
        await self.follow.cluster.stop()
        self._drain()
        self.store.close()
        log.info("guard_stopped", guard=self.cfg.guard.id)

    # --------------------------------------------------------------- MQTT side

    def _on_mqtt(self, topic: str, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        """On the event loop (paho is driven by it): queue the message, drain once per batch.

        Events are acknowledged only after their commit. Retained topics (state,
        availability, alarm) are acknowledged here at once: the broker keeps them
        and sends them again on every subscribe, so a crash cannot lose them.
        States (the bulk: every heartbeat of every office) wake the loop at most
        every STATE_COALESCE_S, which turns thousands of wake-ups a second into
        a few dozen; anything else wakes it at once.
        """
        urgent = not topic.endswith("/state")
        if not topic.endswith("/event"):
            self.mqtt.ack(mid, qos)
            qos = 0
        with self._lock:
            (self._inbox if urgent else self._states).append((topic, payload, mid, qos, retain))
            if self._loop is None or self._scheduled == "now" or (
                    self._scheduled == "later" and not urgent):
                return
            self._scheduled = "now" if urgent else "later"
        # paho runs on the event loop (paho_loop.py): this is the loop thread
        if urgent:
            self._loop.call_soon(self._drain)
        else:
            self._loop.call_later(STATE_COALESCE_S, self._drain)

    def _on_mqtt_status(self, connected: bool) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._set_broker, connected)  # also from the connect thread

    def _set_broker(self, connected: bool) -> None:
        self.faults.set_broker(connected, time.monotonic())
        if connected != self.broker_connected:
            self.broker_connected = connected
            self.broker_changed_at = time.time()
            self.hub.publish("health", self.health())

    def _drain(self) -> None:
        """Apply a batch, commit it, ack it, then show it."""
        with self._lock:
            batch = [self._inbox.popleft() for _ in range(min(len(self._inbox), MAX_BATCH))]
            batch += [self._states.popleft()
                      for _ in range(min(len(self._states), STATE_BATCH, MAX_BATCH - len(batch)))]
            more = bool(self._inbox or self._states)
            self._scheduled = "now" if more else None
        if more and self._loop is not None:
            self._loop.call_soon(self._drain)
        if not batch:
            return
        self.messages_in += len(batch)
        if not self._apply(batch, time.time(), time.monotonic()) and self.store.shared \
                and len(batch) > 1 and self.store.healthy():
            # a shared store refuses a batch for one message's sake (a deadlock with another
            # station, a value PostgreSQL rejects): apply them one by one, so the others
            # are stored and acked now instead of waiting, unacked, for the next reconnect
            for one in batch:
                if not self._apply([one], time.time(), time.monotonic()) and \
                        self.store.healthy():
                    log.error("message_not_storable", topic=one[0][:200])
                    self.mqtt.ack(one[2], one[3])  # logged and dropped, like a bad payload
        self.pusher.flush_small()  # the usual case: at once; larger sets wait for the tick

    def _apply(self, batch: list[tuple[str, bytes, int, int, bool]], wall: float, mono: float
               ) -> bool:
        """Handle, commit, ack, then show one batch; False (nothing acked) when the store failed."""
        after: list[Any] = []
        dirty = False
        try:
            for topic, payload, _mid, _qos, _retain in batch:
                try:
                    dirty |= self.ingest.handle(topic, payload, wall, mono, after)
                except sqlite3.Error:
                    raise
                except Exception:
                    log.exception("message_failed", topic=topic[:200])
            if dirty:
                if self._fault_at and self.ingest.stored >= self._fault_at:
                    log.error("fault_injection_exit_before_commit", stored=self.ingest.stored)
                    os._exit(70)
                self.store.commit()
            self.store_error = None
        except sqlite3.Error as exc:
            # not acked: the broker redelivers after the next reconnect
            self.store_error = str(exc)
            log.error("store_write_failed", error=str(exc), batch=len(batch))
            with contextlib.suppress(sqlite3.Error):
                self.store.db.rollback()
            return False
        for _topic, _payload, mid, qos, _retain in batch:
            self.mqtt.ack(mid, qos)
        for fn in after:
            try:
                fn()
            except Exception:
                log.exception("after_commit_failed")
        return True

    # ------------------------------------------------------------------ timers

    async def _ticker(self) -> None:
        """Run tick() every TICK_S; how late it wakes is the event loop's lag (in /healthz)."""
        while True:
            due = time.monotonic() + TICK_S
            await asyncio.sleep(TICK_S)
            mono = time.monotonic()
            self.lag.note(mono - due, mono)
            self.tick(time.time(), mono)

    def _metrics_sample(self) -> Sample:
        return metrics_sample(self)

    async def _checkpointer(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_S)
            try:
                await asyncio.to_thread(self.store.checkpoint)
            except sqlite3.Error as exc:
                log.warning("store_checkpoint_failed", error=str(exc))

    def tick(self, wall: float, mono: float) -> None:
        """Staleness, gap repair, escalation, retention; each guarded on its own."""
        try:
            for office in self.model.tick(mono):
                view = self.model.offices[office]
                log.warning("office_stale" if view.stale else "office_fresh", office=office)
                self.pusher.changed(office)
            self.pusher.flush()
        except Exception:
            log.exception("tick_stale_failed")
        for name, step in (("faults", lambda: self.faults.tick(wall, mono)),
                           ("repair", lambda: self.repairer.tick(wall, mono)),
                           ("escalation", lambda: self.escalator.tick(wall, mono)),
                           ("ack_resend", lambda: self.ack_resender.tick(mono)),
                           ("retention", lambda: self._prune(wall, mono))):
            if not self.follow.leader:
                continue  # another station leads: it runs these once for the system
            try:
                step()
            except Exception:
                log.exception("tick_failed", step=name)

        try:
            self.follow.follower_tick(mono)
            self.gc.tick(mono)
        except Exception:
            log.exception("tick_failed", step="follower")

    def _prune(self, wall: float, mono: float) -> None:
        if self._last_prune is not None and mono - self._last_prune < 3600:
            return
        self._last_prune = mono
        removed = self.store.prune(wall - self.cfg.store.retention_days * 86400)
        if removed:
            log.info("store_pruned", events=removed)

    def push_gaps(self, office: str) -> None:
        """Show an office's current gaps (after a change)."""
        gaps = self.store.gaps(office)
        view = self.model.get(office, time.monotonic())
        view.gaps = len(gaps)
        self.hub.publish("gap", {"office": office, "gaps": gaps,
                                 "events_may_be_missing": bool(gaps)})
        self.pusher.changed(office)
        self.pusher.flush()

    # ------------------------------------------------------------------- views

    def health(self) -> dict[str, Any]:
        """Broker, store and webhook status for /healthz."""
        return station_health(self)

    def queued(self) -> dict[str, int]:
        """Messages received but not applied yet (for /healthz)."""
        return {"inbox": len(self._inbox), "states_queued": len(self._states)}

    def offices(self) -> list[dict[str, Any]]:
        """Every known or expected office, its open panic/drill alarm and its open faults."""
        return offices_view(self.model, self.store)
