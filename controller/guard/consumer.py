"""The guard station's only paho importer: a persistent, manually acknowledged session.

Fixed client id plus clean_start=False (v5, session expiry of days) or
clean_session=False (3.1.1): whatever offices publish while the station is
down waits at the broker. With manual_ack the broker gets PUBACK only after
the caller has committed the message to the store, so a crash between
receipt and commit means redelivery, never loss. Every callback is wrapped:
an exception in a paho callback would silently kill its network thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import MQTTErrorCode

from controller import mqttclient
from controller.guard.guard_config import GuardConfig
from controller.guard.paho_loop import LoopDriver
from controller.mqttclient import connect_kwargs, make_client, plain_publish, read_buffered
from controller.protocol.messages import MAX_PAYLOAD_BYTES, Topics

log = structlog.get_logger("officesec.guard.mqtt")

SESSION_EXPIRY_S = 14 * 24 * 3600
RECEIVE_MAXIMUM = 1000
SUBSCRIPTIONS = (("availability", 1), ("alarm", 1), ("event", 1), ("state", 0))
"""States are taken at QoS 0: they are retained and sent again every heartbeat, so a
lost one costs nothing (staleness needs three), and skipping a PUBACK for what is
by far the bulk of the traffic is what lets one station follow thousands of
offices. Everything else, and above all every event, is QoS 1."""

READ_BATCH = 100


class BatchReadClient(mqtt.Client):
    """A paho client that reads up to READ_BATCH packets per select() round.

    paho reads a single packet per round while nothing of its own is in flight,
    which with thousands of QoS 0 states a second makes the network thread spin
    select() per message. This reads on until the socket has no more (or the
    batch is full); everything else is paho's own.
    """

    plain: Callable[[bytes, bytes, int, int, bool], None] | None = None
    """Takes QoS 0/1 PUBLISHes without properties (nearly all), skipping paho's decoder."""

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read what is buffered, up to READ_BATCH packets."""
        return read_buffered(self, max(max_packets, READ_BATCH))

    def _handle_publish(self) -> MQTTErrorCode:
        fields = plain_publish(self) if self.plain is not None else None
        if fields is None:
            return super()._handle_publish()
        self.plain(*fields)  # type: ignore[misc]
        return MQTTErrorCode.MQTT_ERR_SUCCESS


MessageHandler = Callable[[str, bytes, int, int, bool], None]
"""(topic, payload, mid, qos, retain); called in paho's thread, must not block."""


class GuardMqtt:
    """Connects, subscribes, hands messages on, acks them when told, publishes commands."""

    def __init__(self, cfg: GuardConfig, on_message: MessageHandler,
                 on_status: Callable[[bool], None]) -> None:
        """Build the client; nothing connects before `start()`."""
        self.cfg = cfg
        self.topics = Topics(cfg.mqtt.prefix)
        self._on_message_cb = on_message
        self._on_status = on_status
        self.connected = False
        self.client_id = cfg.mqtt.client_id or f"officesec-guard-{cfg.guard.id}"
        self._v5 = cfg.mqtt.protocol == "5"
        self._lock = threading.Lock()
        self.driver: LoopDriver | None = None
        client = make_client(cfg.mqtt, self.client_id,
                             will_topic=self.topics.guard_availability(cfg.guard.id),
                             persistent=True, manual_ack=True, client_class=BatchReadClient,
                             max_inflight=100, max_queued=10000)
        self.client = client
        client.enable_logger()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        if isinstance(client, BatchReadClient):
            client.plain = self._on_plain

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect in the background on the running event loop, retrying until it answers.

        paho runs on the loop itself (`paho_loop.LoopDriver`): messages arrive on
        the loop thread, with no GIL hand-off from a network thread.
        """
        kwargs = connect_kwargs(self.cfg.mqtt, persistent=True, session_expiry_s=SESSION_EXPIRY_S,
                                receive_maximum=RECEIVE_MAXIMUM)
        self.driver = LoopDriver(self.client, self.cfg.mqtt, kwargs)
        self.driver.start()

    def alive(self) -> bool:
        """The connection manager runs (for the systemd watchdog)."""
        return self.driver is not None and self.driver.alive()

    async def aclose(self, timeout: float = 1.0) -> None:
        """Stop reconnecting, say offline, disconnect cleanly (from the event loop)."""
        if self.driver is not None:
            await self.driver.stop()
        await asyncio.to_thread(self.stop, timeout)  # waits for the PUBACK the loop reads
        await asyncio.sleep(0.05)  # the DISCONNECT is written by the loop
        if self.driver is not None:
            self.driver.detach()

    def stop(self, timeout: float = 1.0) -> None:
        """Say offline (retained; the will is not sent on a clean disconnect) and leave."""
        try:
            if self.connected:
                info = self.client.publish(self.topics.guard_availability(self.cfg.guard.id),
                                           b"offline", qos=1, retain=True)
                info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            log.warning("guard_offline_not_published", error=str(exc))
        self.client.disconnect()

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge one received message to the broker (after it is committed)."""
        if qos > 0:
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """QoS 1 publish; False when paho refused it outright (queue full)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)

    # ------------------------------------------------------------- callbacks

    def _on_connect(self, client: Any, _userdata: Any, flags: Any, reason_code: Any,
                    _properties: Any) -> None:
        try:
            if reason_code.is_failure:
                log.error("mqtt_connect_refused", reason=str(reason_code))
                mqttclient.fail_over(client)
                return
            host, port = mqttclient.current_endpoint(client)
            log.info("mqtt_connected", broker=f"{host}:{port}",
                     session_present=bool(getattr(flags, "session_present", False)),
                     client_id=self.client_id)
            client.publish(self.topics.guard_availability(self.cfg.guard.id), b"online", qos=1,
                           retain=True)
            # with `ingest_group` the states come through the shared subscription (share.py)
            shared = self.cfg.guard.ingest_group is not None
            client.subscribe([(self.topics.all_offices(leaf), qos) for leaf, qos in SUBSCRIPTIONS
                              if not (shared and leaf == "state")])
            if self.driver is not None:
                self.driver.connacked = True
            self.connected = True
            self._on_status(True)
        except Exception:
            log.exception("mqtt_on_connect_failed")

    def _on_disconnect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any,
                       _properties: Any) -> None:
        try:
            self.connected = False
            mqttclient.fail_over(client)
            log.warning("mqtt_disconnected", reason=str(reason_code))
            self._on_status(False)
        except Exception:
            log.exception("mqtt_on_disconnect_failed")

    def _on_connect_fail(self, client: Any, _userdata: Any) -> None:
        with contextlib.suppress(Exception):  # never kill paho's thread
            host, port = mqttclient.current_endpoint(client)
            log.warning("mqtt_connect_failed", broker=f"{host}:{port}")
            mqttclient.fail_over(client)

    def _on_plain(self, topic: bytes, payload: bytes, mid: int, qos: int, retain: bool) -> None:
        """A PUBLISH from the fast decoder: the same checks as `_on_message`."""
        try:
            if len(payload) > MAX_PAYLOAD_BYTES:
                log.warning("mqtt_payload_too_large", topic=topic[:200], size=len(payload))
                if qos > 0:
                    self.client.ack(mid, qos)
                return
            self._on_message_cb(topic.decode(), payload, mid, qos, retain)
        except UnicodeDecodeError:
            log.warning("mqtt_topic_not_utf8", topic=topic[:200])
            if qos > 0:
                self.client.ack(mid, qos)
        except Exception:
            log.exception("mqtt_on_message_failed", topic=topic[:200])

    def _on_message(self, client: Any, _userdata: Any, message: Any) -> None:
        try:
            if len(message.payload) > MAX_PAYLOAD_BYTES:
                log.warning("mqtt_payload_too_large", topic=message.topic,
                            size=len(message.payload))
                if message.qos > 0:
                    client.ack(message.mid, message.qos)
                return
            self._on_message_cb(message.topic, bytes(message.payload), message.mid, message.qos,
                                bool(message.retain))
        except Exception:
            log.exception("mqtt_on_message_failed", topic=getattr(message, "topic", "?"))
