"""The office daemon: pins, logic, outbox and MQTT around the pure state machine.

One logic thread owns the state machine, the relay, the order of events and
the broker connection: it waits in `link.poll()` (paho's socket plus a wake-up
fd), so a press goes edge -> state machine -> PUBLISH on this one thread and
the packet is on the wire before the outbox is touched (issue #18). GPIO
callbacks from other threads put the edge on its queue and `wake()` it. The
main thread supervises (systemd watchdog) and handles SIGTERM. The daemon gets its
board, link, outbox and clock passed in (`controller.office.compose` builds the
real ones), so tests can drive it with a fake link and a fake clock through
`pump()` instead of a thread and sleeps. See docs/architecture.md.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from controller import __version__
from controller.office import fast_event, homeassistant
from controller.office.alarm_codec import decode_alarm, neighbor_open
from controller.office.board import Board
from controller.office.clock import Clock
from controller.office.command_gate import CommandGate, GuardKey, RateLimit
from controller.office.daemon_delivery import Delivery, parse_wall
from controller.office.gpio_persist import persistence_warning
from controller.office.machine import (
    AlarmChanged,
    CommandIn,
    Edge,
    Effect,
    Emit,
    LineChanged,
    Machine,
    NeighborAlarm,
    NeighborsResync,
    SetOutput,
    Started,
    Tick,
)
from controller.office.office_config import OfficeConfig
from controller.office.outbox import Outbox, Pending
from controller.office.ports import Link
from controller.protocol.messages import (
    ALARM_EVENT_TYPES,
    SIM_PAYLOADS,
    Event,
    Location,
    Topics,
    new_id,
)

log = structlog.get_logger("daemon")

STOP_TIMEOUT_S = 1.5  # SIGTERM to exit must stay under 2 s (issue 2)
LOOP_MAX_SLEEP_S = 1.0  # the logic loop turns at least this often, for the watchdog
WATCHDOG_STALE_S = 5.0  # the logic thread must have looped this recently to pet the dog


class Daemon(Delivery):
    """One office: build with a config, `start()`, then `stop()`."""

    def __init__(self, cfg: OfficeConfig, *, board: Board, link: Link, outbox: Outbox,
                 clock: Clock, guard_key: GuardKey | None = None) -> None:
        """Assign collaborators and bind their callbacks; `start()` claims pins and connects.

        `guard_key` is the already loaded `security.guard_public_key` (the daemon process
        gets it from `officesec run`); without it the file is read here.
        """
        self.cfg = cfg
        self.office = cfg.office.id
        self.topics = Topics(cfg.mqtt.prefix)
        self.location = Location(site=cfg.office.site, building=cfg.office.building,
                                 floor=cfg.office.floor, room=cfg.office.room,
                                 label=cfg.office.label)
        self.clock = clock
        self.ids = fast_event.IdPool()
        self._office_json = json.dumps(self.office)
        self.q: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.outbox = outbox
        self.board = board
        board.bind(self._on_edge, self._on_outputs, self._on_line)
        self.machine = Machine(release_s=cfg.door.release_s, held_open_s=cfg.door.held_open_s,
                               line_fault_s=cfg.alarm.line_fault_s,
                               has_contact=cfg.hardware.door_pin is not None,
                               allow_remote_release=cfg.security.allow_remote_release,
                               release_on_fire=cfg.fire.release_on_fire,
                               walk_test_s=cfg.alarm.walk_test_days * 86400)
        if guard_key is None and cfg.security.guard_public_key:
            guard_key = GuardKey.from_file(Path(cfg.security.guard_public_key))
        self.gate = CommandGate(self.office, guard_key, cfg.security.command_window_s,
                                self.outbox)
        self.rejections = RateLimit()
        self.link = link
        link.bind(on_message=self._on_message, on_ack=self._on_ack,
                  on_connected=lambda: self.q.put(("connected",)),
                  on_disconnected=lambda: self.q.put(("disconnected",)))
        self.online = False
        self.started_at = clock.monotonic()
        self.loop_beat = time.monotonic()  # real time: the watchdog's, never faked
        self._next_beat = clock.monotonic()
        self.thread: threading.Thread | None = None
        self._last_state: dict[str, Any] = {}
        self._storage_fault: str | None = None
        self._backlog: list[Pending] = []
        self._emitting: str | None = None  # the event being published right now
        self._acked_early = False
        self._in_turn = False

    # ------------------------------------------------------------ lifecycle

    def start(self, *, thread: bool = True) -> None:
        """Relay off, outbox loaded, pins claimed, MQTT connecting, logic running.

        With `thread=False` no logic thread runs: the caller turns the loop with
        `pump()` (tests with a fake clock).
        """
        self.outbox.open()
        if self.cfg.hardware.pin_factory == "lgpio":
            warning = persistence_warning()
            if warning is not None:  # issue 16.1: a killed daemon would leave the strike on
                log.warning("gpio_outputs_persist", detail=warning)
        self.board.start()
        meta = self.outbox.meta
        alarm = decode_alarm(meta.get("alarm"))
        lockdown = meta.get("lockdown") == "1"
        if self.outbox.void is not None:
            # an unclean stop: tell the guard which seq numbers will never be filled
            log.warning("seq_void_after_crash", void_from=self.outbox.void[0],
                        void_to=self.outbox.void[1])
        now = self.clock.monotonic()
        self._execute(self.machine.handle(Started(
            now, self.clock.wall(), self.board.levels(), alarm, lockdown, str(new_id()),
            self.outbox.void, panic_was_active=meta.get("panic_active") == "1",
            last_walk_test=parse_wall(meta.get("last_walk_test")),
            line=self.board.line_condition)))  # type: ignore[arg-type]
        self.link.start()
        if thread:
            self.thread = threading.Thread(target=self._logic, name="logic", daemon=True)
            self.thread.start()
        log.info("controller_started", office=self.office, version=__version__,
                 pins=self.cfg.hardware.pin_factory, pending=self.outbox.pending_count)

    def stop(self) -> None:
        """Relay off first, then say offline, flush the outbox and release the pins."""
        self.q.put(("stop",))
        self.link.wake()
        if self.thread is not None:
            self.thread.join(STOP_TIMEOUT_S / 3)
        self.board.set_output("relay", False)
        self.link.stop()
        self.outbox.close(timeout=STOP_TIMEOUT_S / 3)
        self.board.close()
        log.info("controller_stopped", office=self.office)

    def healthy(self) -> bool:
        """Logic thread looping, outbox writer alive, paho's loop alive (watchdog)."""
        line = self.board.line
        return (self.thread is not None and self.thread.is_alive()
                and time.monotonic() - self.loop_beat < WATCHDOG_STALE_S
                and self.outbox.alive and self.link.loop_alive
                and (line is None or line.alive))

    # --------------------------------------------------- foreign threads

    def _on_edge(self, name: str, active: bool, at: float) -> None:
        item = ("edge", Edge(name, active, at, self.clock.wall(),  # type: ignore[arg-type]
                             self.ids.take()))
        if threading.current_thread() is not self.thread:
            self.q.put(item)
            self.link.wake()
        elif self._in_turn or not self.q.empty():
            self.q.put(item)  # keep the order; handled right after this turn
        else:
            self._turn(item)  # a sim press inside poll(): no queue at all

    def _on_ack(self, event_id: str) -> None:
        if event_id == self._emitting:  # a link that acks inside publish (FakeLink)
            self._acked_early = True
        else:
            self.outbox.delivered(event_id)

    def _on_line(self, condition: str, _at: float) -> None:
        self.q.put(("line", condition))
        self.link.wake()  # from the panic-line thread: the logic thread may be in poll()

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if homeassistant.should_reannounce(self.cfg, topic, payload):
            self.q.put(("homeassistant",))
            return
        parsed = self.topics.parse_office(topic)
        if parsed is None:
            log.warning("unexpected_topic", topic=topic)
            return
        office, leaf = parsed
        if office == self.office and leaf == "cmd":
            self.q.put(("cmd", payload, retained))
        elif office == self.office and leaf.startswith("sim/input/"):
            self._simulate(leaf.removeprefix("sim/input/"), payload, retained)
        elif leaf == "alarm" and office in self.cfg.office.neighbors:
            is_open = neighbor_open(payload)
            if is_open is None:
                log.warning("neighbor_alarm_malformed", neighbor=office, size=len(payload))
            else:
                self.q.put(("neighbor", office, is_open))
        else:
            log.warning("unexpected_topic", topic=topic)

    def _simulate(self, name: str, payload: bytes, retained: bool) -> None:
        allowed = SIM_PAYLOADS.get(name)
        text = payload.decode("ascii", "replace").strip()
        if retained or allowed is None or text not in allowed:
            log.warning("sim_input_rejected", input=name[:32], payload=text[:32], retained=retained)
            return
        self.board.simulate(name, text == allowed[0])

    # ---------------------------------------------------------- logic thread

    def _logic(self) -> None:
        structlog.contextvars.bind_contextvars(office=self.office)
        while True:
            now = self.clock.monotonic()
            self.loop_beat = time.monotonic()
            deadline = self.machine.next_deadline()
            wake = min(self._next_beat, now + LOOP_MAX_SLEEP_S)
            if deadline is not None:
                wake = min(wake, deadline)
            if self._backlog and self.q.empty():
                self._replay_chunk()
                wake = now
            # the network is served on every turn, so a busy queue cannot starve keepalive
            self.link.poll(0.0 if not self.q.empty() else max(0.0, wake - now))
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                if self.clock.monotonic() < wake:
                    continue  # woken by the network only: nothing for the logic yet
                item = ("tick",)
            if not self._turn(item):
                return

    def _turn(self, item: tuple[Any, ...]) -> bool:
        """One item of the logic loop; False once told to stop."""
        self._in_turn = True
        try:
            if item[0] == "stop":
                self._execute([SetOutput("relay", False)])
                return False
            self._dispatch(item)
            now = self.clock.monotonic()
            if now >= self._next_beat:
                self._next_beat = now + self.cfg.alarm.heartbeat_s
                self._publish_state(force=True)
        except Exception:  # the logic thread must survive any single bad item
            log.exception("logic_item_failed", item=str(item[0]))
        finally:
            self._in_turn = False
        self.ids.refill()  # after the turn's publishes: ids for the next press, made ahead
        return True

    def pump(self) -> None:
        """Without a logic thread: handle everything queued, then one tick at the clock's now.

        For tests with a fake clock: advance the clock, call `pump()`, look at
        what the fake link was given. Replays the whole backlog at once.
        """
        while True:
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                break
            self._turn(item)
        while self._backlog:
            self._replay_chunk()
        self._turn(("tick",))

    def _dispatch(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        now, wall = self.clock.monotonic(), self.clock.wall()
        if kind == "edge":
            self._execute(self.machine.handle(item[1]))
        elif kind == "tick":
            self._execute(self.machine.handle(Tick(now, wall)))
        elif kind == "cmd":
            self._command(item[1], item[2], now)
        elif kind == "neighbor":
            self._execute(self.machine.handle(NeighborAlarm(item[1], item[2], now, wall)))
        elif kind == "line":
            self._execute(self.machine.handle(LineChanged(item[1], now, wall)))
        elif kind == "connected":
            # the retained alarms come again now; a neighbour resolved meanwhile does not
            self._execute(self.machine.handle(NeighborsResync(now, wall)))
            self._replay()
        elif kind == "disconnected":
            self.online = False
            self._backlog = []
        elif kind == "homeassistant":
            self._announce()
        self._check_storage()

    def _command(self, payload: bytes, retained: bool, now: float) -> None:
        wall = self.clock.wall()
        verdict = self.gate.check(payload, retained=retained, now=wall)
        cmd = verdict.command
        if cmd is None:
            log.warning("command_rejected", reason=verdict.reason, cmd=verdict.cmd)
            if self.rejections.allow(now):
                dropped, self.rejections.suppressed = self.rejections.suppressed, 0
                self._emit(Emit("command_rejected", wall, fields={
                    "reason": verdict.reason, "cmd": verdict.cmd, "nonce": verdict.nonce,
                    "dropped": dropped or None}))
            return
        log.info("command_accepted", cmd=cmd.cmd, by=cmd.by)
        if cmd.cmd == "resend":
            assert cmd.from_seq is not None and cmd.to_seq is not None  # noqa: S101 - gate checked
            self._resend(cmd.from_seq, cmd.to_seq)
            return
        self._execute(self.machine.handle(CommandIn(
            cmd.cmd, cmd.by, cmd.nonce, now, wall,
            None if cmd.alarm_id is None else str(cmd.alarm_id), str(new_id()))))

    # -------------------------------------------------------------- effects

    def _execute(self, effects: list[Effect]) -> None:
        # outputs first: a failure to publish must never leave the relay on longer
        ordered: list[Effect] = [fx for fx in effects if isinstance(fx, SetOutput)]
        ordered += [fx for fx in effects if not isinstance(fx, SetOutput)]
        for fx in ordered:
            try:
                if isinstance(fx, Emit):
                    self._emit(fx)
                elif isinstance(fx, SetOutput):
                    self.board.set_output(fx.name, fx.on)
                elif isinstance(fx, AlarmChanged):
                    self._alarm_changed(fx.alarm)
            except Exception:  # one failed effect must not skip the others
                log.exception("effect_failed", effect=type(fx).__name__)
        self._persist()
        self._publish_state(force=False)

    def _emit(self, fx: Emit) -> None:
        seq, event_id = self.outbox.next_seq(), self.ids.take()
        payload = fast_event.panic_bytes(event_id=event_id, office_json=self._office_json,
                                         seq=seq, wall=fx.wall, type_=fx.type, test=fx.test,
                                         fields=fx.fields)  # a press: no pydantic before it
        fast = payload is not None
        if payload is None:
            payload = Event(id=event_id, office=self.office, seq=seq, ts=fx.wall, type=fx.type,
                            test=fx.test, **fx.fields).to_bytes()
        is_alarm = fx.type in ALARM_EVENT_TYPES
        if self.online:
            # publish first: the packet leaves before the outbox's writer thread is woken
            # (it would compete for the GIL); its seq is already reserved on disk (#18)
            self._emitting, self._acked_early = event_id, False
            try:
                self.link.publish_event(event_id, self.topics.event(self.office), payload)
                if is_alarm:
                    self.link.let_out()
            finally:
                self._emitting = None
        self.outbox.add(seq, event_id, fx.type, payload, is_alarm=is_alarm)
        if self._acked_early:
            self._acked_early = False
            self.outbox.delivered(event_id)
        if is_alarm and not (self.online and self.link.connected):
            # nothing can carry it now: the disk is its only trace, so it must be there
            # before anything else happens - a power cut must not lose a press (issue 16.8)
            committed = self.outbox.commit_now()
            log.info("alarm_committed_sync", type=fx.type, seq=seq, committed=committed)
        if fast:  # the model checks what went out, now that it is on the wire and stored
            try:
                Event.model_validate_json(payload)
            except ValueError:
                log.exception("event_invalid", type=fx.type, seq=seq)
        fields = {k: str(v) for k, v in fx.fields.items() if k not in ("nonce", "by")}
        if fx.test:
            fields["test"] = "true"
        log.info("event", type=fx.type, seq=seq, **fields)

    def _check_storage(self) -> None:
        fault = self.outbox.fault
        if fault != self._storage_fault:
            was, self._storage_fault = self._storage_fault, fault
            if fault is not None:
                self._emit(Emit("storage_fault", self.clock.wall(),
                                fields={"reason": fault[:200]}))
            elif was is not None:
                self._emit(Emit("storage_ok", self.clock.wall()))
            self._publish_state(force=True)
