"""The one paho client factory of office, guard station, demo simulator and self-test.

Each of them used to build its client by hand and they drifted (TLS version,
reconnect rounding, TCP_NODELAY). Here is the single place that turns an
`[mqtt]` section into a paho client: protocol, session, credentials, TLS,
last will, reconnect backoff and TCP_NODELAY on every (re)connect. It is also
the only module that touches paho's private attributes, pinned to the paho 2.x
range in pyproject.toml and checked by a test (`tests/test_mqttclient.py`).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.client import DISCONNECT, PUBLISH
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.settings import MqttCfg

log = structlog.get_logger("officesec.mqtt")

def make_client(cfg: MqttCfg, client_id: str, *, will_topic: str | None = None,
                persistent: bool = False, manual_ack: bool = False,
                client_class: type[mqtt.Client] = mqtt.Client,
                max_inflight: int | None = None, max_queued: int | None = None) -> mqtt.Client:
    """A configured, unconnected paho client (callback API 2).

    `persistent` keeps the broker session across reconnects (the guard: what
    offices publish while it is down waits at the broker); everybody else
    starts clean. The will, when given, is the retained `offline` of the
    contract's availability topics.
    """
    v5 = cfg.protocol == "5"
    kwargs: dict[str, Any] = {
        "client_id": client_id,
        "protocol": MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        "manual_ack": manual_ack,
    }
    if not v5:
        kwargs["clean_session"] = not persistent
    client = client_class(CallbackAPIVersion.VERSION2, **kwargs)
    client.suppress_exceptions = True  # a bad message must never kill the network thread
    # paho takes whole seconds here; never below 1 s (a hot reconnect loop)
    client.reconnect_delay_set(min_delay=max(1, round(cfg.reconnect_min_s)),
                               max_delay=max(1, round(cfg.reconnect_max_s)))
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    if max_queued is not None:
        client.max_queued_messages_set(max_queued)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.read_password())
    if cfg.tls_ca is not None:
        client.tls_set(ca_certs=cfg.tls_ca, certfile=cfg.tls_cert, keyfile=cfg.tls_key,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if cfg.tls_insecure_skip_hostname:
            client.tls_insecure_set(True)
    if will_topic is not None:
        client.will_set(will_topic, b"offline", qos=1, retain=True)
    client.on_socket_open = _nodelay
    client._officesec_endpoints = cfg.endpoints()  # type: ignore[attr-defined]
    return client


def start(client: mqtt.Client, **kwargs: Any) -> tuple[str, int]:
    """Connect in the background to the first broker and start paho's network thread."""
    host, port = endpoints(client)[0]
    client.connect_async(host, port, **kwargs)
    client.loop_start()
    return host, port


def endpoints(client: mqtt.Client) -> list[tuple[str, int]]:
    """The brokers this client fails over between, in order."""
    found: list[tuple[str, int]] = getattr(client, "_officesec_endpoints", [])
    return found or [(client.host, client.port)]


def current_endpoint(client: mqtt.Client) -> tuple[str, int]:
    """The broker paho connects (or reconnects) to next; the first one before any connect."""
    return (client._host, client._port) if client._host else endpoints(client)[0]


def fail_over(client: mqtt.Client) -> tuple[str, int] | None:
    """Point paho's next reconnect at the next broker in the list; None with only one.

    Called from on_disconnect and on_connect_fail, i.e. on paho's thread between
    attempts. paho 2.x refuses its public `host`/`port` setters there (the state
    is "connecting"), and an exception would kill its thread, so this sets the
    private fields that `reconnect()` reads — pinned like the others below.
    """
    hosts = endpoints(client)
    if len(hosts) < 2:
        return None
    here = current_endpoint(client)
    nxt = hosts[(hosts.index(here) + 1) % len(hosts)] if here in hosts else hosts[0]
    client._host, client._port = nxt
    log.info("mqtt_fail_over", frm=f"{here[0]}:{here[1]}", to=f"{nxt[0]}:{nxt[1]}")
    return nxt


def connect_kwargs(cfg: MqttCfg, *, persistent: bool = False, session_expiry_s: int = 0,
                   receive_maximum: int | None = None) -> dict[str, Any]:
    """Arguments for `connect`/`connect_async`: keepalive and the v5 session properties."""
    kwargs: dict[str, Any] = {"keepalive": cfg.keepalive_s}
    if cfg.protocol != "5":
        return kwargs
    kwargs["clean_start"] = not persistent
    if persistent or receive_maximum is not None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if persistent:
            props.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
        kwargs["properties"] = props
    return kwargs


def _nodelay(_client: Any, _userdata: Any, sock: Any) -> None:
    """TCP_NODELAY on every new socket: a panic is one small packet, never wait for Nagle."""
    try:
        if hasattr(sock, "setsockopt"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception as exc:  # noqa: BLE001 - never kill paho's thread over a socket option
        log.warning("tcp_nodelay_failed", error=str(exc))


# ------------------------------------------------- paho internals, in one place
# paho 2.x keeps these private; pyproject pins paho-mqtt to <3 and
# tests/test_mqttclient.py fails if one of them disappears.


def loop_thread_alive(client: mqtt.Client) -> bool:
    """Paho's network thread (loop_start) is running: for the systemd watchdogs."""
    thread = getattr(client, "_thread", None)
    return thread is not None and bool(thread.is_alive())


def pending_out_packets(client: mqtt.Client) -> int:
    """Packets paho has queued but not yet written to the socket (-1 if unknown)."""
    out = getattr(client, "_out_packet", None)
    return -1 if out is None else len(out)


def read_buffered(client: mqtt.Client, max_packets: int) -> MQTTErrorCode:
    """Read up to `max_packets` already buffered packets (see the guard's batch reader)."""
    for _ in range(max_packets):
        if client._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        rc = client._packet_read()
        if rc > 0:
            return client._loop_rc_handle(rc)
        if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
    return MQTTErrorCode.MQTT_ERR_SUCCESS


# The office's external loop (controller/office/link.py): paho without loop_start,
# its reconnect helpers called from a connector thread exactly as loop_forever does.


def prepare(client: mqtt.Client, **kwargs: Any) -> tuple[str, int]:
    """Set the first broker and the connect arguments; no network, no thread (see link.py)."""
    host, port = endpoints(client)[0]
    client.connect_async(host, port, **kwargs)
    return host, port


def reconnect_wait(client: mqtt.Client) -> None:
    """Wait paho's own backoff (min, doubling, max; reset by a CONNACK); ends early on stop."""
    client._reconnect_wait()


def connect_failed(client: mqtt.Client) -> None:
    """Call on_connect_fail the way loop_forever does after a failed `reconnect()`."""
    client._handle_on_connect_fail()


def stop_reconnecting(client: mqtt.Client) -> None:
    """Make a running `reconnect_wait` return at its next check (within 1 s)."""
    client._thread_terminate = True


def write_queued(client: mqtt.Client) -> None:
    """Write paho's queued packets now, also from inside a paho callback.

    There `publish()` only queues (paho holds its callback lock), and
    `loop_write()` would deadlock on that lock if the write failed (it calls
    on_disconnect). `_packet_write()` calls no callback for QoS 1/2 PUBLISH,
    PUBACK, SUBSCRIBE or PINGREQ and returns a failure instead of handling it:
    the next `loop_write()` outside the callback handles it. With a QoS 0
    PUBLISH or a DISCONNECT queued (those do call callbacks) it does nothing.
    """
    if client._sock is None:
        return
    for packet in client._out_packet:
        command = packet["command"] & 0xF0
        if command == DISCONNECT or (command == PUBLISH and packet["qos"] == 0):
            return
    client._packet_write()


def plain_publish(client: mqtt.Client) -> tuple[bytes, bytes, int, int, bool] | None:
    """The PUBLISH paho has just read, decoded cheaply: (topic, payload, mid, qos, retain).

    paho builds a `Properties` object for every MQTT 5 PUBLISH, even one that
    has none, and that alone cost more than the whole rest of a heartbeat's
    handling (measured: about half of paho's 35 µs per message under a
    profiler). For QoS 0/1 packets without properties this reads the fields
    straight from paho's input buffer; anything else (QoS 2, properties such
    as topic aliases, an empty topic) returns None and paho decodes it as usual.
    """
    packet = client._in_packet
    header = packet["command"]
    qos = (header & 0x06) >> 1
    if qos > 1:
        return None
    data = packet["packet"]
    tlen = int.from_bytes(data[0:2], "big")
    if tlen == 0:
        return None
    pos = 2 + tlen
    mid = 0
    if qos:
        mid = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
    if client._protocol == mqtt.MQTTv5:
        if pos >= len(data) or data[pos] != 0:
            return None  # properties present (or malformed): paho's own decoder
        pos += 1
    return bytes(data[2:2 + tlen]), bytes(data[pos:]), mid, qos, bool(header & 0x01)
