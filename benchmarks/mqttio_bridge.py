"""mqtt-io as the benchmark runs it: its gpiozero module on mock pins, plus a sim bridge.

Runs with the python of mqtt-io's own throwaway venv (benchmarks/peer_mqttio.py),
never with the project's: it imports only mqtt-io, gpiozero and paho.

officesec's daemon, with `pin_factory = "mock"`, receives a sim press on its
paho network thread and drives a gpiozero MockFactory pin there; gpiozero's
edge callback then hands the edge to the daemon's logic. This bridge does the
same for mqtt-io, in mqtt-io's process: a paho client (network thread) gets
the sim press and drives the MockFactory pin of mqtt-io's `gpiozero` GPIO module;
the edge callback is mqtt-io's own interrupt callback, and from there on
everything (event bus, asyncio loop, its MQTT client) is mqtt-io's unchanged
code. So both programs are measured from "a paho thread drives a mock pin"
to "the subscriber has the message".

    python mqttio_bridge.py HOST PORT SIM_TOPIC PIN CONFIG.yml
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT_S = 10.0


def _nodelay(_client: Any, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def start_bridge(host: str, port: int, topic: str, pin_number: int) -> mqtt.Client:
    """Subscribe to the sim topic; `press` pulls the pin low (button to GND), `release` high."""
    pin = Device.pin_factory.pin(pin_number)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            return
        if msg.payload == b"press":
            pin.drive_low()
        elif msg.payload == b"release":
            pin.drive_high()

    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="mqttio-sim-bridge")
    client.on_socket_open = _nodelay
    client.on_message = on_message
    client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    if not subscribed.wait(TIMEOUT_S):
        raise SystemExit("sim bridge: no SUBACK")
    return client


def main(argv: list[str]) -> int:
    host, port, topic, pin_number, config = argv
    # one mock factory for the bridge and mqtt-io's gpiozero module (the default one)
    Device.pin_factory = MockFactory()
    start_bridge(host, int(port), topic, int(pin_number))
    sys.argv = ["mqtt_io", config]
    from mqtt_io.__main__ import main as mqtt_io_main  # noqa: PLC0415 - after the bridge

    mqtt_io_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
