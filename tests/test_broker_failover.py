"""`[mqtt] hosts`: offices and guard stations fail over between brokers (contract §8).

Two plain Mosquittos show the client side (the office moves to the second
broker when the first dies); a real 3-node NATS JetStream cluster with its
MQTT gateway shows the deployment: the node everybody is connected to is
killed in the middle of a stream of presses, and no alarm is lost.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from gpiozero.pins.mock import MockFactory

from controller.errors import ConfigError
from controller.office.compose import build_daemon
from controller.office.office_config import OfficeConfig
from controller.settings import MqttCfg, Settings, build, split_endpoint
from tests.broker import Mosquitto
from tests.guard_proc import GuardProc, wait_for
from tests.nats_cluster import NATS, NatsCluster
from tests.office_proc import OfficeProc, office_sections
from tests.probe import Probe

P = "officesec"
PRESS_TYPES = ("panic", "panic_repeat")


def test_hosts_are_parsed_in_order_and_bad_entries_are_named():
    cfg = MqttCfg(hosts=["broker-a:1883", "[::1]:8883", "10.0.0.3:1884"])
    assert cfg.endpoints() == [("broker-a", 1883), ("::1", 8883), ("10.0.0.3", 1884)]
    assert MqttCfg(host="b", port=2).endpoints() == [("b", 2)]
    with pytest.raises(ConfigError) as err:
        build(_Wrap, {"mqtt": {"hosts": ["nocolon", "h:99999", "::1:1883", "a:1", "a:1"]}})
    text = "\n".join(err.value.problems)
    assert "mqtt.hosts: entry 1 ('nocolon'): expected HOST:PORT" in text
    assert "entry 2 ('h:99999'): port '99999' is not a number 1..65535" in text
    assert "entry 3 ('::1:1883'): an IPv6 address needs [brackets]" in text
    assert "mqtt.hosts: lists a broker twice" in text
    with pytest.raises(ConfigError, match=r"mqtt\.hosts: give either hosts or host/port"):
        build(_Wrap, {"mqtt": {"hosts": ["a:1"], "host": "b"}})
    assert split_endpoint(" h:1 ") == ("h", 1)


class _Wrap(Settings):
    mqtt: MqttCfg = MqttCfg()


def test_office_moves_to_the_next_broker_when_its_broker_dies(tmp_path: Path):
    first = Mosquitto(tmp_path / "m1").start()
    second = Mosquitto(tmp_path / "m2").start()
    hosts = [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    office = OfficeProc(tmp_path / "o", first.port,
                        mqtt={"hosts": hosts, "reconnect_min_s": 0.2, "reconnect_max_s": 1})
    watch2 = Probe("127.0.0.1", second.port, f"{P}/office/eg-101/#").start()
    try:
        office.start()
        office.wait_log('"mqtt_connected"', timeout=15)
        assert f'"broker": "127.0.0.1:{first.port}"' in office.log_text()
        first.kill()
        killed = time.monotonic()
        watch2.wait_for(lambda m: m.topic.endswith("/availability") and m.payload == b"online",
                        timeout=20)
        moved_s = time.monotonic() - killed
        watch2.publish(f"{P}/office/eg-101/sim/input/panic", "press")
        panic = watch2.wait_for(lambda m: m.topic.endswith("/event")
                                and m.json().get("type") == "panic", timeout=10)
        assert panic[0].json()["office"] == "eg-101"
        assert moved_s < 20
        print(f"office failover to the second broker: {moved_s:.2f} s")
        assert "mqtt_fail_over" in office.log_text()
    finally:
        watch2.stop()
        office.stop()
        first.stop()
        second.stop()


def _press_events(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id FROM events WHERE type IN ('panic', 'panic_repeat')")
        return {r[0] for r in rows}


class _Fleet:
    """A NATS cluster, a guard station and three in-process office daemons on it."""

    ids: ClassVar[list[str]] = [f"eg-10{i}" for i in range(1, 4)]

    def __init__(self, root: Path) -> None:
        self.cluster = NatsCluster(root / "nats").start()
        mqtt_cfg = {"hosts": self.cluster.hosts, "protocol": "3.1.1", "reconnect_min_s": 0.2,
                    "reconnect_max_s": 1, "keepalive_s": 3}
        # the guard's keepalive must outlast NATS's 4-5 s stalls while JetStream creates its
        # durable consumer: a timeout then moves its session mid-creation (docs/fleet.md)
        self.guard = GuardProc(root / "guard", 0, mqtt={**mqtt_cfg, "keepalive_s": 10},
                               roster=self.ids)
        self.offices: list[tuple[Any, MockFactory, Path]] = []
        for office_id in self.ids:
            (root / office_id).mkdir(parents=True)
            sections = office_sections(root / office_id, 0, office_id, mqtt=dict(mqtt_cfg),
                                       security={"guard_public_key": str(self.guard.public_key)})
            sections.pop("log")
            factory = MockFactory()
            self.offices.append((build_daemon(OfficeConfig(**sections), factory=factory),
                                 factory, Path(sections["storage"]["path"])))
        self.guard.start()
        for daemon, _f, _db in self.offices:
            daemon.start()

    def usable(self) -> bool:
        """Everybody online and the guard's event subscription delivering end to end."""
        try:
            wait_for(lambda: all(self.guard.office(o)["availability"] == "online"
                                 for o in self.ids), timeout=60, what="offices online")
            # JetStream creates the guard's durable consumer on its first subscribe; an event
            # published while it is being created can miss it - the guard's lost-tail repair
            # (`resend`, signed, hence the offices' guard_public_key) fetches it again. A start
            # that still does not deliver is a broken cluster, not the failover under test.
            wait_for(lambda: all(self.guard.get("/api/events", office=o, type="controller_started")
                                 for o in self.ids), timeout=30, interval=0.2,
                     what="every office's controller_started at the guard")
        except AssertionError:
            return False
        return True

    def stop(self) -> None:
        for daemon, _f, _db in self.offices:
            daemon.stop()
        self.guard.close()
        self.cluster.stop()


@pytest.mark.slow
@pytest.mark.skipif(not Path(NATS).exists(), reason="nats-server is not installed")
def test_nats_cluster_kill_the_node_everyone_uses_and_no_alarm_is_lost(tmp_path: Path):
    """Presses are GPIO edges (MockFactory pins of in-process daemons), not broker messages."""
    for attempt in range(1, 4):
        fleet = _Fleet(tmp_path / f"try{attempt}")
        if fleet.usable():
            break
        print(f"NATS start attempt {attempt}: the guard's event consumer never delivered; "
              "starting a fresh cluster")
        fleet.stop()
    else:
        pytest.fail("three fresh NATS clusters in a row never delivered events to the guard")
    cluster, guard, offices, ids = fleet.cluster, fleet.guard, fleet.offices, fleet.ids
    try:
        assert cluster.connections(0) >= 4  # everybody starts on the first node of the list

        def press_all(rounds: int) -> None:
            for _ in range(rounds):
                for _d, factory, _db in offices:
                    factory.pin(17).drive_high()  # nc wiring: high = pressed
                time.sleep(0.1)
                for _d, factory, _db in offices:
                    factory.pin(17).drive_low()
                time.sleep(0.1)

        press_all(5)

        def stored(office: str) -> set[str]:
            rows = guard.get("/api/events", office=office, limit=10000)
            return {r["id"] for r in rows if r["type"] in PRESS_TYPES}

        wait_for(lambda: all(len(stored(o)) == 5 for o in ids), timeout=60, interval=0.2,
                 what="the first presses at the guard")
        cluster.wait_healthy()
        cluster.kill(0)
        killed = time.monotonic()
        press_all(10)  # presses while the clients move to n2 (and a leader election runs)

        def all_there() -> bool:
            return all(_press_events(db) <= stored(d.office) for d, _f, db in offices)

        try:
            wait_for(all_there, timeout=90, interval=0.5, what="every press at the guard")
        except AssertionError:
            for d, _f, db in offices:
                print(d.office, len(_press_events(db)), len(stored(d.office)))
            print("GUARD", guard.log_text()[-4000:])
            raise
        healed_s = time.monotonic() - killed
        produced = sum(len(_press_events(db)) for _d, _f, db in offices)
        assert produced == 3 * 15, "every edge is a press event on its office"
        for daemon, _f, db in offices:
            got = stored(daemon.office)
            assert _press_events(db) <= got
            alarms = [a for a in guard.alarms() if a["office"] == daemon.office
                      and a.get("kind", "panic") == "panic"]
            assert len(alarms) == 1, f"{daemon.office}: expected one open alarm, got {alarms}"
            assert alarms[0]["presses"] == 15
        print(f"nats failover: {produced} press events, all stored; healed in {healed_s:.1f} s")
    finally:
        fleet.stop()
