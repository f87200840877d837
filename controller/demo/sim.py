"""The dashboard's hardware simulator link (demo mode only): sim topics in, lamps out.

The guard station's simulator panel must drive the real path: a press is
published on `P/office/ID/sim/input/NAME`, the office daemon turns it into a
mock pin level, its state machine reacts, and the outcome reaches the guard
over the ordinary topics. The lamps show what the office reports on its
retained `P/office/ID/sim/output`. This bridge is a separate MQTT client so
that the production consumer carries no demo code at all.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from pydantic import ValidationError

from controller import mqttclient
from controller.mqttclient import connect_kwargs, make_client
from controller.protocol.messages import MAX_PAYLOAD_BYTES, SIM_PAYLOADS, SimOutput, Topics
from controller.settings import MqttCfg

log = structlog.get_logger(__name__)


class SimInputError(ValueError):
    """An input name or payload that the sim topics do not know."""


class SimBridge:
    """Publishes simulated inputs and keeps the last simulated outputs of every office."""

    def __init__(self, cfg: MqttCfg, guard_id: str) -> None:
        """Only build the client; `start` connects."""
        self.topics = Topics(cfg.prefix)
        self.cfg = cfg
        self._outputs: dict[str, dict[str, bool]] = {}
        self._lock = threading.Lock()
        self.client = make_client(cfg, f"{guard_id}-sim-{secrets.token_hex(4)}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._started = False

    def start(self) -> None:
        """Connect in the background (paho retries until the broker is there)."""
        if self._started:
            return
        self._started = True
        mqttclient.start(self.client, **connect_kwargs(self.cfg))

    def stop(self) -> None:
        """Disconnect and end paho's thread."""
        if self._started:
            self._started = False
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any) -> None:
        if reason.is_failure:
            log.warning("sim_bridge_connect_failed", reason=str(reason))
            return
        client.subscribe(self.topics.all_offices("sim/output"), qos=1)
        log.info("sim_bridge_connected")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            parsed = self.topics.parse_office(msg.topic)
            if parsed is None or parsed[1] != "sim/output" or len(msg.payload) > MAX_PAYLOAD_BYTES:
                log.warning("sim_output_dropped", topic=msg.topic, reason="unexpected topic")
                return
            office = parsed[0]
            if not msg.payload:
                with self._lock:
                    self._outputs.pop(office, None)
                return
            output = SimOutput.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("sim_output_dropped", topic=msg.topic, errors=exc.error_count())
            return
        with self._lock:
            self._outputs[office] = output.model_dump()

    def outputs(self) -> dict[str, dict[str, bool]]:
        """Last simulated outputs per office (a copy)."""
        with self._lock:
            return {office: dict(values) for office, values in self._outputs.items()}

    def press(self, office: str, name: str, payload: str) -> None:
        """Publish one simulated input (QoS 1); raises SimInputError for unknown ones."""
        allowed = SIM_PAYLOADS.get(name)
        if allowed is None:
            raise SimInputError(f"unknown simulated input {name!r}; one of {sorted(SIM_PAYLOADS)}")
        if payload not in allowed:
            raise SimInputError(f"input {name} takes {' or '.join(allowed)}, not {payload!r}")
        if self.topics.parse_office(self.topics.sim_input(office, name)) is None:
            raise SimInputError(f"invalid office id {office!r}")
        self.client.publish(self.topics.sim_input(office, name), payload.encode(), qos=1)
        log.info("sim_input_published", office=office, input=name, value=payload)
