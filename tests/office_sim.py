"""A contract-conformant fake office over real MQTT: failure injection for the guard's tests.

It publishes availability (with a will), a retained state every heartbeat,
events with id/seq (in any order, twice, or with holes, as a test needs) and
the retained alarm. Optionally it answers signed commands like an office
(verifying the signature) so that the guard's confirmation path is exercised.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from controller.protocol.messages import Alarm, Command, Event, Location, State, Topics, utcnow
from controller.protocol.signing import load_public_key, verify_command


class OfficeSim:
    def __init__(self, port: int, office: str = "eg-101", *, prefix: str = "officesec",
                 heartbeat_s: float = 0.5, public_key: Path | None = None,
                 answer: bool = True, site: str = "Jobcenter Test") -> None:
        self.office = office
        self.topics = Topics(prefix)
        self.heartbeat_s = heartbeat_s
        self.location = Location(site=site, building="Haus A", floor="EG", room=office[-3:],
                                 label=f"Beratung {office}")
        self.seq = 0
        self.history: dict[int, Event] = {}
        self.alarm_id: uuid.UUID | None = None
        self.alarm_state = "none"
        self.alarm_test = False
        self.lockdown = False
        self.answer = answer
        self.commands: list[Command] = []
        self.rejections: list[str] = []
        self.key = load_public_key(public_key) if public_key else None
        self.heartbeat = True
        self.faults: list[str] = []
        self.state_seq_override: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{office}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.will_set(self.topics.availability(office), b"offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=2)
        self.connected = threading.Event()
        self.client.loop_start()
        if not self.connected.wait(5):
            raise RuntimeError("office sim could not connect")

    # ------------------------------------------------------------------ mqtt

    def _on_connect(self, client: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        client.subscribe(self.topics.cmd(self.office), qos=1)
        client.publish(self.topics.availability(self.office), b"online", qos=1, retain=True)
        self.connected.set()

    def _on_message(self, _client: Any, _u: Any, message: Any) -> None:
        try:
            command = Command.model_validate_json(message.payload)
        except ValueError:
            return
        with self.lock:
            self.commands.append(command)
        if self.key is not None:
            problem = verify_command(command, self.key)
            if problem:
                self.rejections.append(problem)
                self.event("command_rejected", reason=problem, cmd=command.cmd,
                           nonce=command.nonce)
                return
        if not self.answer:
            return
        threading.Thread(target=self._answer, args=(command,), daemon=True).start()

    def _answer(self, command: Command) -> None:
        if command.cmd == "resend":
            assert command.from_seq is not None and command.to_seq is not None
            for seq in range(command.from_seq, command.to_seq + 1):
                if seq in self.history:
                    self.publish(self.history[seq])
        elif command.cmd == "ack":
            self.alarm_state = "acknowledged"
            self.event("alarm_acknowledged", alarm_id=command.alarm_id, by=command.by,
                       nonce=command.nonce)
        elif command.cmd == "resolve":
            self.alarm_state, self.alarm_id = "none", None
            self.event("alarm_resolved", alarm_id=command.alarm_id, by=command.by,
                       nonce=command.nonce)
            self.set_alarm(None)
        elif command.cmd == "test":
            self.press(test=True, nonce=command.nonce, by=command.by)
        elif command.cmd in ("lockdown", "lift_lockdown"):
            self.lockdown = command.cmd == "lockdown"
            self.event("lockdown_on" if self.lockdown else "lockdown_off", by=command.by,
                       nonce=command.nonce)
        elif command.cmd == "release":
            self.event("command_rejected", reason="remote_release_not_allowed", cmd="release",
                       nonce=command.nonce)

    # ------------------------------------------------------------ publishing

    def start_heartbeat(self) -> OfficeSim:
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.is_set():
            if self.heartbeat:
                self.publish_state()
            self._stop.wait(self.heartbeat_s)

    def state(self) -> State:
        return State(office=self.office, ts=utcnow(),
                     seq=self.state_seq_override if self.state_seq_override is not None
                     else self.seq,
                     door="locked", contact="closed",
                     alarm=self.alarm_state,  # type: ignore[arg-type]
                     alarm_id=self.alarm_id, alarm_test=self.alarm_test, lockdown=self.lockdown,
                     version="sim-1", uptime_s=1.0, outbox_pending=0, faults=self.faults,
                     heartbeat_s=self.heartbeat_s, location=self.location)

    def publish_state(self) -> None:
        self.client.publish(self.topics.state(self.office), self.state().to_bytes(), qos=1,
                            retain=True)

    def make_event(self, etype: str, *, seq: int | None = None, **fields: Any) -> Event:
        with self.lock:
            if seq is None:
                self.seq += 1
                seq = self.seq
            else:
                self.seq = max(self.seq, seq)
            event = Event(id=uuid.uuid4(), office=self.office, seq=seq, ts=utcnow(),
                          type=etype, **fields)  # type: ignore[arg-type]
            self.history[seq] = event
        return event

    def publish(self, event: Event) -> None:
        self.client.publish(self.topics.event(self.office), event.to_bytes(), qos=1)

    def event(self, etype: str, **fields: Any) -> Event:
        event = self.make_event(etype, **fields)
        self.publish(event)
        return event

    def press(self, *, test: bool = False, nonce: str | None = None,
              by: str | None = None) -> Event:
        self.alarm_id = uuid.uuid4()
        self.alarm_state, self.alarm_test = "active", test
        event = self.event("panic", alarm_id=self.alarm_id, test=test, nonce=nonce, by=by)
        self.set_alarm(Alarm(alarm_id=self.alarm_id, office=self.office, location=self.location,
                             state="active", raised_at=event.ts, presses=1, test=test))
        self.publish_state()
        return event

    def set_alarm(self, alarm: Alarm | None) -> None:
        payload = alarm.to_bytes() if alarm is not None else b""
        self.client.publish(self.topics.alarm(self.office), payload, qos=1, retain=True)

    def raw(self, leaf: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(f"{self.topics.prefix}/office/{self.office}/{leaf}", payload, qos=1,
                            retain=retain)

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_commands(self, cmd: str, count: int = 1, timeout: float = 10.0) -> list[Command]:
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.commands if c.cmd == cmd]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {cmd} command; got {[c.cmd for c in self.commands]}")
            time.sleep(0.02)
