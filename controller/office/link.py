"""The office's only paho-mqtt importer: connect, publish, track PUBACKs, receive.

One thread owns the press path (issue #18). paho runs without `loop_start()`:
the daemon's logic thread calls `poll()`, which waits in one selector on
paho's socket and on an eventfd that other threads (GPIO callbacks, SIGTERM)
write to through `wake()`, then does paho's `loop_read`/`loop_write`/
`loop_misc` itself. So paho's callbacks run on the logic thread, and a
`publish()` from the logic thread writes the packet to the socket before it
returns: no hand-off to a network thread, no wait for the GIL between the
state machine and the wire.

Only the blocking part of a (re)connect — TCP connect, TLS handshake, sending
CONNECT — runs on a short-lived connector thread, with paho's own backoff and
`on_connect_fail` exactly as `loop_forever` does it, so a broker that hangs
never stalls the logic thread (the relay pulse keeps its timing). While offline
the logic thread does not touch the client: what it publishes meanwhile is
kept here and handed to paho, in order, after the next CONNACK and our
SUBSCRIBE (retained topics coalesced to their newest payload).
"""

from __future__ import annotations

import contextlib
import os
import selectors
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
from controller.mqttclient import connect_kwargs, make_client
from controller.office.ports import AckHandler, MessageHandler, Session
from controller.settings import MqttCfg

log = structlog.get_logger("mqtt")


MAX_INFLIGHT = 100  # enough for a replay burst; paho queues (in order) beyond it
DISCONNECT_WAIT_S = 0.7  # how long stop() waits for the PUBACK of `offline`
STOP_POLL_S = 0.05
CONNECTOR_JOIN_S = 0.2  # stop(): a connector stuck in a TCP connect is a daemon thread
EARLY_LIMIT = 1000  # PUBACKs that beat their publish() bookkeeping; normally 0
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

_Deferred = tuple[str, bytes, bool, int, str | None]  # topic, payload, retain, qos, track


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
        self._session = Session()
        self.v5 = cfg.protocol == "5"
        self.client = make_client(cfg, client_id, will_topic=will_topic,
                                  max_inflight=MAX_INFLIGHT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        # the external loop; owned by the thread that calls poll()
        self._sel: selectors.BaseSelector | None = None
        self._wake_fd = -1
        self._sock: Any = None  # paho's socket while attached to the selector
        self._events = 0
        self._ready = threading.Event()  # the connector has a new socket for us
        self._connector: threading.Thread | None = None
        self._connecting = False  # a connector owns the client until it sets _ready
        self._deferred: dict[object, _Deferred] = {}
        self._deferred_n = 0
        self._stopping = False
        self._in_read = False

    def bind(self, *, on_message: MessageHandler, on_ack: AckHandler,
             on_connected: Callable[[], None], on_disconnected: Callable[[], None]) -> None:
        """Attach the daemon's handlers; called by the daemon before `start()`."""
        self._on_message_cb = on_message
        self._on_ack_cb = on_ack
        self._on_connected_cb = on_connected
        self._on_disconnected_cb = on_disconnected

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; paho's backoff, over every `[mqtt] hosts`."""
        self._sel = selectors.DefaultSelector()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._sel.register(self._wake_fd, _READ)
        mqttclient.prepare(self.client, **connect_kwargs(self.cfg))
        self._start_connector(first=True)

    def stop(self) -> None:
        """Say `offline` ourselves (the will is only sent on a crash), then disconnect.

        Called after the logic thread has ended, so this thread may drive the loop.
        """
        self._stopping = True
        mqttclient.stop_reconnecting(self.client)
        try:
            if self.connected and self._sock is not None:
                info = self.client.publish(self.will_topic, b"offline", qos=1, retain=True)
                deadline = time.monotonic() + DISCONNECT_WAIT_S
                while (self._sock is not None and not info.is_published()
                       and time.monotonic() < deadline):
                    self._io(STOP_POLL_S)
        except (RuntimeError, ValueError) as exc:
            log.warning("offline_publish_failed", error=str(exc))
        if self._connector is None or not self._connector.is_alive():
            self.client.disconnect()  # writes DISCONNECT at once (no network thread)
        else:
            self._connector.join(CONNECTOR_JOIN_S)
        self._detach()
        if self._sel is not None:
            self._sel.close()
            os.close(self._wake_fd)
            self._sel = None

    @property
    def loop_alive(self) -> bool:
        """Attached to a socket, or a connector is working on one (for the watchdog)."""
        if self._stopping:
            return False
        return self._sock is not None or self._ready.is_set() or self._connecting

    # ----------------------------------------------------- the external loop

    def wake(self) -> None:
        """From any thread: make a waiting `poll()` return now (an edge is queued)."""
        with contextlib.suppress(OSError):  # not started, or stopped: nobody is waiting
            os.eventfd_write(self._wake_fd, 1)

    def poll(self, timeout: float) -> None:
        """Wait up to `timeout` s for the broker or a `wake()`, then run paho's I/O here."""
        if self._sel is None:
            time.sleep(timeout)
            return
        try:
            self._io(timeout)
        except Exception:  # the logic thread must survive anything paho does
            log.exception("mqtt_loop_failed")
            self._lost()

    def _io(self, timeout: float) -> None:
        if self._ready.is_set():
            self._attach()
        if self._sock is not None and self.client.socket() is not self._sock:
            self._lost()  # a write inside publish() found the connection gone
        sock = self._sock
        readable = self._wait(sock, timeout)
        if sock is None:
            return
        client = self.client
        if readable:
            self._in_read = True  # paho callbacks run now; their publishes wait for the end
            try:
                client.loop_read()
            finally:
                self._in_read = False
        if client.socket() is sock and client.want_write():
            client.loop_write()  # what callbacks published (paho defers it in them)
        if client.socket() is sock:
            client.loop_misc()  # keepalive: PINGREQ, and a dead broker detected
        if client.socket() is not sock:
            self._lost()

    def _wait(self, sock: Any, timeout: float) -> bool:
        """Block in the selector; True if paho's socket has something to read."""
        assert self._sel is not None  # noqa: S101 - started
        pending = 0
        if sock is not None:
            want = _READ | (_WRITE if self.client.want_write() else 0)
            if want != self._events:
                self._sel.modify(sock, want)
                self._events = want
            pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS buffer
        readable = pending > 0
        for key, mask in self._sel.select(0.0 if pending else max(0.0, timeout)):
            if key.fd == self._wake_fd:
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake_fd)
            elif mask & _READ:
                readable = True
        return readable

    def _attach(self) -> None:
        """The connector has sent CONNECT on a new socket: from now on it is ours."""
        self._ready.clear()
        sock = self.client.socket()
        if self._sel is None or self._stopping:
            return
        if sock is None:  # lost again before we took it over
            self._lost()
            return
        self._sel.register(sock, _READ)
        self._sock, self._events = sock, _READ

    def _flush_deferred(self) -> None:
        """After the CONNACK and our SUBSCRIBE: what was published while offline, in order."""
        deferred, self._deferred = list(self._deferred.values()), {}
        for topic, payload, retain, qos, track in deferred:
            self._paho_publish(topic, payload, retain=retain, qos=qos, track=track)

    def _detach(self) -> None:
        if self._sock is not None and self._sel is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(self._sock)
        self._sock, self._events = None, 0

    def _lost(self) -> None:
        """Paho closed the socket (and called on_disconnect): reconnect in the background."""
        self._detach()
        if not self._stopping and not self._connecting:
            self._start_connector(first=False)

    def _start_connector(self, *, first: bool) -> None:
        self._connecting = True
        self._connector = threading.Thread(target=self._connect_loop, args=(first,),
                                           name="mqtt-connect", daemon=True)
        self._connector.start()

    def _connect_loop(self, first: bool) -> None:
        """loop_forever's reconnect part: backoff, `reconnect()`, on_connect_fail."""
        try:
            while not self._stopping:
                if not first:
                    mqttclient.reconnect_wait(self.client)
                first = False
                if self._stopping:
                    return
                try:
                    self.client.reconnect()
                except OSError:  # refused, unreachable, timed out, TLS (SSLError)
                    mqttclient.connect_failed(self.client)
                    continue
                if self.client.socket() is None:
                    continue  # writing CONNECT already failed (paho called on_disconnect)
                self._connecting = False
                self._ready.set()
                self.wake()
                return
        except Exception:  # logged; loop_alive turns false for the watchdog
            log.exception("mqtt_connector_failed")
        self._connecting = False

    # ----------------------------------------------------------- publishing

    def publish_event(self, event_id: str, topic: str, payload: bytes) -> None:
        """QoS 1 publish whose PUBACK calls `on_ack(event_id)`."""
        self._publish(topic, payload, retain=False, track=event_id)

    def let_out(self, max_wait_s: float = 0.0) -> None:
        """Put the alarm on the wire now, before the daemon builds the alarm and state topics."""
        if self._sock is None or not self.client.want_write():
            return
        if self._in_read:  # a sim press handled inside on_message: paho would wait
            mqttclient.write_queued(self.client)
        else:
            self.client.loop_write()

    def publish(self, topic: str, payload: bytes, *, retain: bool, qos: int = 1) -> None:
        """Fire-and-track publish for state, alarm and other retained topics."""
        self._publish(topic, payload, retain=retain, track=None, qos=qos)

    def _publish(self, topic: str, payload: bytes, *, retain: bool, track: str | None,
                 qos: int = 1) -> None:
        if not self.connected and not self._stopping:
            # offline, or a connector inside reconnect(): never touch paho concurrently;
            # sent after the CONNACK, behind our SUBSCRIBE, as paho's own queue would be
            self._deferred_n += 1
            key: object = ("retained", topic) if retain else self._deferred_n
            self._deferred.pop(key, None)
            self._deferred[key] = (topic, payload, retain, qos, track)
            return
        self._paho_publish(topic, payload, retain=retain, qos=qos, track=track)

    def _paho_publish(self, topic: str, payload: bytes, *, retain: bool, qos: int,
                      track: str | None) -> None:
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
            self._flush_deferred()
            self._session = Session(_local_address(client), self._broker())
            log.info("mqtt_connected", broker=self._session.broker, connects=self.connects,
                     address=self._session.address)
            self._on_connected_cb()
        except Exception:  # never let a handler break paho's read
            log.exception("mqtt_on_connect_failed")

    def _broker(self) -> str:
        host, port = mqttclient.current_endpoint(self.client)
        return f"{host}:{port}"

    def session(self) -> Session:
        """The office's address and the broker of the current connection."""
        return self._session if self.connected else Session()

    def _on_connect_fail(self, client: Any, _userdata: Any) -> None:
        try:  # on the connector thread, which alone touches the client meanwhile
            log.warning("mqtt_connect_failed", broker=self._broker())
            mqttclient.fail_over(client)
        except Exception:  # never let a handler break the reconnect loop
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
        except Exception:  # never let a handler break paho's read
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
        except Exception:  # never let a handler break paho's read
            log.exception("mqtt_on_publish_failed")

    def _on_message(self, _client: Any, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message_cb(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # bad input must never break paho's read
            log.exception("mqtt_message_handler_failed", topic=msg.topic)


def _local_address(client: Any) -> str | None:
    """Our end's IP on the socket to the broker (what the installer looks for on the LAN)."""
    sock = client.socket()
    try:
        return str(sock.getsockname()[0]) if sock is not None else None
    except (OSError, AttributeError, IndexError):  # closed meanwhile, or a unix socket
        return None
