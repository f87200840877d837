"""The office's only paho-mqtt importer: connect, publish, track PUBACKs, receive.

paho runs its own network thread and calls us from it; every callback body is
wrapped so that no exception can kill that thread (paho would then look
connected but never deliver again). Delivery is tracked by message id with a
small lock that is never held while calling into paho, so the network thread
and the logic thread cannot deadlock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller import mqttclient
from controller.mqttclient import (
    connect_kwargs,
    loop_thread_alive,
    make_client,
    pending_out_packets,
)
from controller.office.ports import AckHandler, MessageHandler
from controller.settings import MqttCfg

log = structlog.get_logger("mqtt")


MAX_INFLIGHT = 100  # enough for a replay burst; paho queues (in order) beyond it
DISCONNECT_WAIT_S = 0.7
LET_OUT_MAX_S = 0.002  # longest the logic thread yields to let an alarm leave first
LET_OUT_POLL_S = 0.00005
EARLY_LIMIT = 1000  # PUBACKs that beat their publish() bookkeeping; normally 0 or 1


class MqttLink:
    """One broker connection with a retained last will and delivery tracking."""

    def __init__(self, cfg: MqttCfg, *, client_id: str, will_topic: str,
                 subscriptions: list[str]) -> None:
        """Build the paho client; nothing touches the network until `start()`."""
        self.cfg = cfg
        self.will_topic = will_topic
        self.subscriptions = subscriptions
        self._on_message_cb: MessageHandler = lambda *_: None
        self._on_ack_cb: AckHandler = lambda _id: None
        self._on_connected_cb: Callable[[], None] = lambda: None
        self._on_disconnected_cb: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._inflight: dict[int, str | None] = {}
        self._early: dict[int, bool] = {}
        self.connected = False
        self.connects = 0
        self.v5 = cfg.protocol == "5"
        self.client = make_client(cfg, client_id, will_topic=will_topic,
                                  max_inflight=MAX_INFLIGHT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail

    def bind(self, *, on_message: MessageHandler, on_ack: AckHandler,
             on_connected: Callable[[], None], on_disconnected: Callable[[], None]) -> None:
        """Attach the daemon's handlers; called by the daemon before `start()`."""
        self._on_message_cb = on_message
        self._on_ack_cb = on_ack
        self._on_connected_cb = on_connected
        self._on_disconnected_cb = on_disconnected

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; paho retries with backoff, over every `[mqtt] hosts`."""
        mqttclient.start(self.client, **connect_kwargs(self.cfg))

    def stop(self) -> None:
        """Say `offline` ourselves (the will is only sent on a crash), then disconnect."""
        try:
            if self.connected:
                info = self.client.publish(self.will_topic, b"offline", qos=1, retain=True)
                info.wait_for_publish(DISCONNECT_WAIT_S)
        except (RuntimeError, ValueError) as exc:
            log.warning("offline_publish_failed", error=str(exc))
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def loop_alive(self) -> bool:
        """Paho's network thread is running (for the watchdog)."""
        return loop_thread_alive(self.client)

    # ----------------------------------------------------------- publishing

    def publish_event(self, event_id: str, topic: str, payload: bytes) -> None:
        """QoS 1 publish whose PUBACK calls `on_ack(event_id)`."""
        self._publish(topic, payload, retain=False, track=event_id)

    def let_out(self, max_wait_s: float = LET_OUT_MAX_S) -> None:
        """Give paho's network thread the GIL until our packets are on the wire.

        `publish()` only queues the packet and wakes paho's thread; if the caller
        goes straight on with more Python work (building the state, the retained
        alarm), that thread waits for the GIL. On the alarm path we yield instead,
        briefly, so the panic leaves first. Bounded; never blocks for long.
        """
        if not self.connected or pending_out_packets(self.client) < 0:
            return
        deadline = time.monotonic() + max_wait_s
        while pending_out_packets(self.client) > 0 and time.monotonic() < deadline:
            time.sleep(LET_OUT_POLL_S)

    def publish(self, topic: str, payload: bytes, *, retain: bool, qos: int = 1) -> None:
        """Fire-and-track publish for state, alarm and other retained topics."""
        self._publish(topic, payload, retain=retain, track=None, qos=qos)

    def _publish(self, topic: str, payload: bytes, *, retain: bool, track: str | None,
                 qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0 or info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            return
        with self._lock:
            ok = self._early.pop(info.mid, None)
            if ok is None:
                self._inflight[info.mid] = track
        if ok and track is not None:
            self._on_ack_cb(track)

    # ------------------------------------------------------ paho callbacks

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: ReasonCode,
                    _properties: Properties | None) -> None:
        try:
            if reason_code.is_failure:
                log.error("mqtt_connect_refused", reason=str(reason_code),
                          broker=self._broker())
                mqttclient.fail_over(client)
                return
            self.connected = True
            self.connects += 1
            client.publish(self.will_topic, b"online", qos=1, retain=True)
            if self.subscriptions:
                # v5: see the retain flag as published, so a command published with
                # retain=true is recognised (and ignored) even when delivered live
                opts: Any = (SubscribeOptions(qos=1, retainAsPublished=True) if self.v5 else 1)
                client.subscribe([(t, opts) for t in self.subscriptions])
            log.info("mqtt_connected", broker=self._broker(), connects=self.connects)
            self._on_connected_cb()
        except Exception:  # an exception here would kill paho's thread for good
            log.exception("mqtt_on_connect_failed")

    def _broker(self) -> str:
        host, port = mqttclient.current_endpoint(self.client)
        return f"{host}:{port}"

    def _on_connect_fail(self, client: Any, _userdata: Any) -> None:
        try:
            log.warning("mqtt_connect_failed", broker=self._broker())
            mqttclient.fail_over(client)
        except Exception:  # an exception here would kill paho's thread for good
            log.exception("mqtt_on_connect_fail_failed")

    def _on_disconnect(self, client: Any, _userdata: Any, _flags: Any, reason_code: ReasonCode,
                       _properties: Properties | None) -> None:
        try:
            was = self.connected
            self.connected = False
            mqttclient.fail_over(client)
            # keep _inflight: paho re-sends its unacknowledged messages with the same mids
            if was:
                log.warning("mqtt_disconnected", reason=str(reason_code))
            self._on_disconnected_cb()
        except Exception:  # an exception here would kill paho's thread for good
            log.exception("mqtt_on_disconnect_failed")

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, reason_code: ReasonCode,
                    _properties: Properties | None) -> None:
        try:
            ok = not reason_code.is_failure
            with self._lock:
                if mid in self._inflight:
                    track = self._inflight.pop(mid)
                else:
                    if len(self._early) > EARLY_LIMIT:
                        self._early.clear()
                    self._early[mid] = ok
                    return
            if not ok:
                log.error("mqtt_publish_refused", reason=str(reason_code), event_id=track)
            elif track is not None:
                self._on_ack_cb(track)
        except Exception:  # an exception here would kill paho's thread for good
            log.exception("mqtt_on_publish_failed")

    def _on_message(self, _client: Any, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message_cb(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # bad input must never kill the network thread
            log.exception("mqtt_message_handler_failed", topic=msg.topic)
