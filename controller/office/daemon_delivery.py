"""The daemon's delivery side: what it publishes (state, alarm, outputs), replay, resend.

A base class of `Daemon` (daemon.py), split off so each file reads on a screen.
Everything here runs on the logic thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from controller import __version__
from controller.office import homeassistant
from controller.office.alarm_codec import alarm_payload, encode_alarm
from controller.office.board import Board
from controller.office.clock import Clock
from controller.office.machine import AlarmRecord, Machine
from controller.office.office_config import OfficeConfig
from controller.office.outbox import Outbox, Pending
from controller.office.ports import Link
from controller.protocol.messages import Location, SimOutput, State, Topics

log = structlog.get_logger("daemon")

REPLAY_CHUNK = 200  # events re-sent per logic-loop turn after a reconnect


class Delivery:
    """Replay, resend, Home Assistant discovery and the few facts a restart must know."""

    cfg: OfficeConfig
    office: str
    topics: Topics
    outbox: Outbox
    link: Link
    board: Board
    machine: Machine
    online: bool
    location: Location
    clock: Clock
    started_at: float
    _backlog: list[Pending]
    _storage_fault: str | None
    _last_state: dict[str, Any]
    _connected_since: datetime | None = None  # this connection's start, for the state

    def _on_outputs(self, outputs: dict[str, bool]) -> None:
        """The board's outputs changed: on mock pins, publish them on the sim topic."""
        if self.board.is_mock:
            self.link.publish(self.topics.sim_output(self.office),
                              SimOutput(**outputs).to_bytes(), retain=True)

    def _alarm_changed(self, alarm: AlarmRecord | None) -> None:
        """Persist the open alarm and publish it retained (empty once resolved)."""
        self.outbox.set_meta("alarm", encode_alarm(alarm))
        self.link.publish(self.topics.alarm(self.office),
                          alarm_payload(alarm, self.office, self.location), retain=True)

    def _publish_state(self, *, force: bool) -> None:
        snap = self.machine.snapshot()
        if self._storage_fault is not None:
            snap["faults"] = sorted([*snap["faults"], "storage"])
        snap["outbox_dropped"] = self.outbox.dropped
        if not force and snap == self._last_state:
            return
        self._last_state = snap
        address, broker = self.link.session()
        state = State(office=self.office, ts=self.clock.wall(), seq=self.outbox.last_seq,
                      version=__version__,
                      uptime_s=round(self.clock.monotonic() - self.started_at, 3),
                      outbox_pending=self.outbox.pending_count,
                      heartbeat_s=self.cfg.alarm.heartbeat_s, location=self.location,
                      address=address, broker=broker,
                      connected_since=self._connected_since if self.online else None, **snap)
        self.link.publish(self.topics.state(self.office), state.to_bytes(), retain=True)


    def _resend(self, from_seq: int, to_seq: int) -> None:
        rows = self.outbox.stored_range(from_seq, to_seq)
        topic = self.topics.event(self.office)
        for _seq, payload in rows:
            self.link.publish(topic, payload, retain=False)
        log.info("resent", from_seq=from_seq, to_seq=to_seq, count=len(rows))

    def _persist(self) -> None:
        """What a restart must know: lockdown, an already active panic input, the walk test."""
        m, meta = self.machine, self.outbox.meta
        walk = m.last_walk_test.isoformat() if m.last_walk_test else ""
        for key, value in (("lockdown", "1" if m.lockdown else "0"),
                           ("panic_active", "1" if m.panic_active else "0"),
                           ("last_walk_test", walk)):
            if meta.get(key, "0" if key != "last_walk_test" else "") != value:
                self.outbox.set_meta(key, value)

    def _replay(self) -> None:
        """After (re)connecting: current alarm and state, then every pending event in order."""
        self._alarm_changed(self.machine.alarm)
        if self.board.is_mock:
            self._on_outputs(dict(self.board.state))
        self._announce()
        self._backlog = self.outbox.pending()
        self.online = True
        self._connected_since = self.clock.wall()
        self._publish_state(force=True)
        if self._backlog:
            log.info("outbox_replay", count=len(self._backlog), first_seq=self._backlog[0].seq)
        self._replay_chunk()

    def _replay_chunk(self) -> None:
        """Re-send the next slice of the backlog, in seq order.

        In slices, so that a panic pressed during a long replay is published at
        once (ahead of older events) instead of waiting behind the whole backlog.
        """
        chunk, self._backlog = self._backlog[:REPLAY_CHUNK], self._backlog[REPLAY_CHUNK:]
        if not self.online:
            self._backlog = []
            return
        topic = self.topics.event(self.office)
        for p in chunk:
            self.link.publish_event(p.id, topic, p.payload)

    def _announce(self) -> None:
        """Home Assistant discovery: announce, or remove what an earlier run announced."""
        messages = homeassistant.discovery_messages(self.cfg, self.topics)
        if not messages and self.outbox.meta.get("ha_announced") == "1":
            messages = homeassistant.removal_messages(self.cfg)
        for topic, payload in messages:
            self.link.publish(topic, payload, retain=True)
        announced = "1" if self.cfg.homeassistant.discovery else "0"
        if self.outbox.meta.get("ha_announced", "0") != announced:
            self.outbox.set_meta("ha_announced", announced)


def parse_wall(text: str | None) -> datetime | None:
    """A persisted wall time, or None when absent or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
