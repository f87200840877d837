"""The office's broker link runs paho's external loop on the thread that polls it (issue #18)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from controller.office.compose import build_daemon
from controller.office.link import MqttLink
from controller.office.office_config import OfficeConfig
from controller.settings import MqttCfg
from tests.broker import Mosquitto
from tests.chaos.support import TcpProxy
from tests.office_proc import office_sections
from tests.probe import Probe

P = "officesec"


def poll_until(link: MqttLink, pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link.poll(0.05)
        if pred():
            return True
    return False


def test_a_press_is_written_to_the_socket_by_the_logic_thread(broker: Mosquitto,
                                                               tmp_path: Path) -> None:
    """No paho network thread: the event's PUBLISH leaves from the logic thread itself."""
    sections = office_sections(tmp_path, broker.port, "eg-101")
    sections.pop("log")
    daemon = build_daemon(OfficeConfig(**sections), factory=MockFactory())
    writers: list[tuple[str, bytes]] = []
    client = daemon.link.client  # type: ignore[attr-defined]
    send = client._sock_send

    def recording_send(buf: bytes) -> int:
        writers.append((threading.current_thread().name, bytes(buf)))
        return send(buf)

    client._sock_send = recording_send
    probe = Probe(broker.host, broker.port, f"{P}/office/eg-101/#").start()
    daemon.start()
    try:
        probe.wait_for(lambda m: m.topic.endswith("/availability") and m.payload == b"online")
        probe.publish(f"{P}/office/eg-101/sim/input/panic", "press")
        [event] = probe.wait_for(lambda m: m.topic.endswith("/event")
                                 and m.json()["type"] == "panic")[-1:]
        office_threads = {t.name for t in threading.enumerate()}
        assert "paho-mqtt-client-officesec-eg-101" not in office_threads
        event_id = event.json()["id"].encode()
        [writer] = [name for name, buf in writers if event_id in buf]
        assert writer == "logic"
        assert {name for name, _buf in writers} <= {"logic", "mqtt-connect"}
    finally:
        daemon.stop()
        probe.stop()


def test_reconnects_after_connections_that_die_right_after_connect(broker: Mosquitto) -> None:
    """A link whose reconnects are accepted and dropped at once (a cut cable) comes back.

    The connector hands over a socket that is already dead; the logic thread
    must then start a new connector even though the old one is still finishing.
    """
    proxy = TcpProxy(broker.port)
    cfg = MqttCfg(port=proxy.port, keepalive_s=2, reconnect_min_s=0.2, reconnect_max_s=0.5)
    link = MqttLink(cfg, client_id="t-link-cut", will_topic=f"{P}/office/t/availability",
                    subscriptions=[])
    link.start()
    try:
        assert poll_until(link, lambda: link.connected, 10)
        proxy.cut(silent=False)
        assert poll_until(link, lambda: not link.connected, 10)
        poll_until(link, lambda: False, 3)  # many attempts, each dropped after CONNECT
        assert link.loop_alive
        proxy.heal()
        assert poll_until(link, lambda: link.connected, 10), "never reconnected after the heal"
    finally:
        link.stop()
        proxy.close()
