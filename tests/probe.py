"""A real paho subscriber that records everything it sees, for assertions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Probe:
    """Subscribes to `topic` (QoS 1) and keeps every message; optional persistent session."""

    def __init__(self, host: str, port: int, topic: str = "#", *, client_id: str = "",
                 persistent: bool = False) -> None:
        self.msgs: list[Msg] = []
        self.cond = threading.Condition()
        self.topic = topic
        self.persistent = persistent
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.host, self.port = host, port
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self.subscribed.set()

    def _on_connect(self, client: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.topic, qos=1)
            self.connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self.cond:
            self.msgs.append(Msg(msg.topic, bytes(msg.payload), bool(msg.retain),
                                 time.monotonic()))
            self.cond.notify_all()

    def start(self, timeout: float = 5.0) -> Probe:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = None
        if self.persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect(self.host, self.port, keepalive=5,
                            clean_start=not self.persistent, properties=props)
        self.client.loop_start()
        assert self.connected.wait(timeout), "probe could not connect"
        assert self.subscribed.wait(timeout), "probe got no SUBACK"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def wait_for(self, pred: Callable[[Msg], bool], timeout: float = 5.0,
                 count: int = 1) -> list[Msg]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in self.msgs if pred(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.msgs})
                    raise AssertionError(f"timed out: {len(found)}/{count} found; topics {topics}")
                self.cond.wait(left)

    def events(self, office: str | None = None, etype: str | None = None) -> list[dict[str, Any]]:
        with self.cond:
            msgs = list(self.msgs)
        out = []
        for m in msgs:
            if not m.topic.endswith("/event"):
                continue
            ev = m.json()
            if office is not None and ev["office"] != office:
                continue
            if etype is None or ev["type"] == etype:
                out.append(ev)
        return out

    def last(self, topic: str) -> Msg | None:
        with self.cond:
            for m in reversed(self.msgs):
                if m.topic == topic:
                    return m
        return None

    def clear(self) -> None:
        with self.cond:
            self.msgs.clear()
