"""End to end: `officesec run` (mock pins) announces itself to Home Assistant over a real broker.

Real Mosquitto, the real daemon as a subprocess, a paho client in the role of
Home Assistant: discovery on connect, re-announce on `homeassistant/status` =
`online` (not on `offline`), and removal after discovery was turned off.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from controller.office import homeassistant as ha
from controller.office.office_config import load_office_config
from controller.protocol.messages import Topics
from tests.broker import Mosquitto

pytestmark = pytest.mark.slow
OFFICESEC = Path(sys.executable).with_name("officesec")
CONFIG_TOPIC = "homeassistant/device/officesec_eg-101/config"
DEADLINE_S = 15.0  # generous correctness bound, not a speed goal


class Client:
    """A paho client that records every message it receives."""

    def __init__(self, broker: Mosquitto, *topics: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(t, 1) for t in topics])
            assert subscribed.wait(DEADLINE_S), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.cond.notify_all()

    def on(self, topic: str) -> list[tuple[bytes, bool]]:
        with self.cond:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        with self.cond:
            while not check():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}: {self.messages[-5:]}"
                self.cond.wait(left)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(DEADLINE_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_config(path: Path, broker: Mosquitto, *, discovery: bool) -> Path:
    path.write_text(f"""
[office]
id = "eg-101"
room = "101"
label = "Beratung 101"

[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5

[hardware]
pin_factory = "mock"

[storage]
path = "{path.parent / 'office.sqlite3'}"

[homeassistant]
discovery = {str(discovery).lower()}

[log]
level = "warning"
""", encoding="utf-8")
    return path


class Office:
    """`officesec run` in a subprocess, stopped with SIGTERM like systemd does."""

    def __init__(self, config: Path) -> None:
        self.log = (config.parent / "office.log").open("ab")
        self.proc = subprocess.Popen([str(OFFICESEC), "run", "--config", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def home_assistant(broker: Mosquitto) -> Iterator[Client]:
    client = Client(broker, "homeassistant/#", "officesec/office/eg-101/availability")
    try:
        yield client
    finally:
        client.close()


def test_discovery_lifecycle(broker: Mosquitto, home_assistant: Client, tmp_path: Path) -> None:
    config = write_config(tmp_path / "office.toml", broker, discovery=True)
    expected = ha.discovery_messages(load_office_config(config), Topics("officesec"))
    assert [t for t, _ in expected] == [CONFIG_TOPIC]
    office = Office(config)
    try:
        # 1. announced on connect, exactly the document the pure function builds
        home_assistant.wait_for(lambda: bool(home_assistant.on(CONFIG_TOPIC)), "discovery")
        payload = home_assistant.on(CONFIG_TOPIC)[0][0]
        assert payload == expected[0][1]
        assert set(json.loads(payload)["cmps"]) >= {"panic", "strike", "faults", "buttons"}
        # retained: a client that connects later (Home Assistant after a restart) gets it too
        late = Client(broker, CONFIG_TOPIC)
        try:
            late.wait_for(lambda: bool(late.on(CONFIG_TOPIC)), "retained discovery")
            assert late.on(CONFIG_TOPIC)[0] == (expected[0][1], True)
        finally:
            late.close()

        # 2. Home Assistant's birth message makes the office announce again; its will does not
        before = len(home_assistant.on(CONFIG_TOPIC))
        home_assistant.publish("homeassistant/status", b"offline")
        home_assistant.publish("homeassistant/status", b"online")
        home_assistant.wait_for(lambda: len(home_assistant.on(CONFIG_TOPIC)) > before,
                                "re-announce after online")
        time.sleep(0.3)  # let a wrong extra announcement (for `offline`) show up if there is one
        again = home_assistant.on(CONFIG_TOPIC)[before:]
        assert again == [(expected[0][1], False)]
    finally:
        assert office.stop() == 0

    # 3. discovery turned off: the next start removes the device (empty retained payload)
    write_config(config, broker, discovery=False)
    seen = len(home_assistant.on(CONFIG_TOPIC))
    office = Office(config)
    try:
        home_assistant.wait_for(
            lambda: any(p == b"" for p, _ in home_assistant.on(CONFIG_TOPIC)[seen:]), "removal")
        # nothing retained any more: a fresh subscriber gets our probe and no config before it
        fresh = Client(broker, "homeassistant/#")
        try:
            fresh.publish("homeassistant/probe", b"1")
            fresh.wait_for(lambda: bool(fresh.on("homeassistant/probe")), "probe")
            assert fresh.on(CONFIG_TOPIC) == []
        finally:
            fresh.close()
        # and Home Assistant's birth no longer triggers anything
        count = len(home_assistant.on(CONFIG_TOPIC))
        home_assistant.publish("homeassistant/status", b"online")
        home_assistant.publish("homeassistant/probe", b"2")
        home_assistant.wait_for(lambda: len(home_assistant.on("homeassistant/probe")) >= 2,
                                "second probe")
        time.sleep(0.3)
        assert len(home_assistant.on(CONFIG_TOPIC)) == count
    finally:
        assert office.stop() == 0
