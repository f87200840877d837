"""The shared paho factory: one set-up for every client, and paho's internals still there."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt

from controller import mqttclient
from controller.settings import MqttCfg


def test_paho_internals_used_by_the_factory_still_exist():
    client = mqttclient.make_client(MqttCfg(), "t-internals")
    # a paho upgrade that renames these must fail here, not silently in the watchdog
    assert hasattr(client, "_thread")
    assert hasattr(client, "_out_packet")
    assert hasattr(client, "_sock")
    assert callable(client._packet_read)
    assert callable(client._loop_rc_handle)
    # the office's external loop (controller/office/link.py)
    assert callable(client._reconnect_wait)
    assert callable(client._handle_on_connect_fail)
    assert callable(client._packet_write)
    assert client._thread_terminate is False
    assert isinstance(client._in_packet, dict) and "command" in client._in_packet
    assert "packet" in client._in_packet and client._protocol == mqtt.MQTTv5
    assert callable(client._handle_publish)
    assert mqttclient.loop_thread_alive(client) is False
    assert mqttclient.pending_out_packets(client) == 0


def test_v5_persistent_session_and_3_1_1_clean_session():
    persistent = mqttclient.connect_kwargs(MqttCfg(), persistent=True, session_expiry_s=60,
                                           receive_maximum=10)
    assert persistent["clean_start"] is False
    assert persistent["properties"].SessionExpiryInterval == 60
    assert mqttclient.connect_kwargs(MqttCfg())["clean_start"] is True
    old = mqttclient.make_client(MqttCfg(protocol="3.1.1"), "t-311", persistent=True)
    assert old._clean_session is False
    assert "clean_start" not in mqttclient.connect_kwargs(MqttCfg(protocol="3.1.1"))


def test_will_is_the_retained_offline_and_sockets_get_nodelay():
    client = mqttclient.make_client(MqttCfg(), "t-will", will_topic="p/office/x/availability")
    assert client._will_topic == b"p/office/x/availability"
    assert client._will_payload == b"offline"
    assert client._will_retain is True
    tcp = socket.create_server(("127.0.0.1", 0))
    conn = socket.create_connection(tcp.getsockname())
    try:
        client.on_socket_open(client, None, conn)
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        conn.close()
        tcp.close()


def test_every_part_builds_its_client_through_the_factory():
    """No module but the factory calls paho's constructor (the set-ups drifted before)."""
    import pathlib

    root = pathlib.Path(mqttclient.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "mqttclient.py" and "mqtt.Client(" in p.read_text()]
    assert offenders == []
    assert isinstance(mqttclient.make_client(MqttCfg(), "t"), mqtt.Client)


def test_plain_publish_decodes_what_paho_would_and_leaves_the_rest_to_paho():
    v5 = mqttclient.make_client(MqttCfg(), "t-plain")
    v3 = mqttclient.make_client(MqttCfg(protocol="3.1.1"), "t-plain3")
    topic = b"officesec/office/eg-101/event"
    body = len(topic).to_bytes(2, "big") + topic
    v5._in_packet.update(command=0x31, packet=body + b"\x00{}")  # QoS 0, retained, no props
    assert mqttclient.plain_publish(v5) == (topic, b"{}", 0, 0, True)
    v5._in_packet.update(command=0x32, packet=body + b"\x01\x02\x00{}")  # QoS 1, mid 258
    assert mqttclient.plain_publish(v5) == (topic, b"{}", 258, 1, False)
    v5._in_packet.update(command=0x30, packet=body + b"\x03\x23\x00\x05{}")  # a topic alias
    assert mqttclient.plain_publish(v5) is None
    v5._in_packet.update(command=0x34, packet=body + b"\x00\x01\x00{}")  # QoS 2
    assert mqttclient.plain_publish(v5) is None
    v3._in_packet.update(command=0x30, packet=body + b"{}")  # 3.1.1 has no properties
    assert mqttclient.plain_publish(v3) == (topic, b"{}", 0, 0, False)
    v3._in_packet.update(command=0x30, packet=b"\x00\x00{}")  # empty topic: paho says malformed
    assert mqttclient.plain_publish(v3) is None
