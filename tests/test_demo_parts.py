"""The demo's parts: generated configs, broker selection, the simulator bridge (real broker,
real office daemon with mock pins)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from argon2 import PasswordHasher
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from controller.demo.broker import EmbeddedBroker, MosquittoBroker, choose_broker
from controller.demo.layout import corridor, write_demo_configs
from controller.demo.sim import SimBridge, SimInputError
from controller.guard.guard_config import load_guard_config
from controller.office.office_config import load_office_config


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met within the deadline")


def test_corridor_neighbours_are_the_offices_left_and_right():
    rows = corridor(4)
    assert [r[0] for r in rows] == ["eg-101", "eg-102", "eg-103", "eg-104"]
    assert rows[0][3] == ("eg-102",)
    assert rows[1][3] == ("eg-101", "eg-103")
    assert rows[3][3] == ("eg-103",)
    assert corridor(1)[0][3] == ()


def test_generated_configs_are_valid_and_logins_match_their_hashes(tmp_path: Path):
    layout = write_demo_configs(tmp_path, offices=3, guard_port=18080, mqtt_host="127.0.0.1",
                                mqtt_port=1883, protocol="3.1.1")
    guard = load_guard_config(layout.guard_config)
    assert guard.guard.demo is True
    assert guard.mqtt.protocol == "3.1.1"
    assert guard.guard.listen_port == 18080
    assert [o.id for o in guard.roster()] == ["eg-101", "eg-102", "eg-103"]
    hasher = PasswordHasher()
    by_name = {u.name: u for u in guard.users}
    for user in layout.users:
        assert hasher.verify(by_name[user.name].password_hash, user.password)
        assert by_name[user.name].role == user.role
        assert user.password not in layout.guard_config.read_text()
    assert {u.role for u in layout.users} == {"admin", "guard"}
    for office in layout.offices:
        cfg = load_office_config(office.config)
        assert cfg.hardware.pin_factory == "mock"
        assert cfg.mqtt.username == office.id  # amqtt needs a username on every client
        assert list(cfg.office.neighbors) == list(office.neighbors)
        assert Path(cfg.storage.path).parent == tmp_path
        assert Path(cfg.security.guard_public_key or "").is_file()


def test_the_tours_demo_is_german_on_berlin_time_with_a_plan_and_instructions(tmp_path: Path):
    layout = write_demo_configs(tmp_path, offices=5, guard_port=1, mqtt_host="127.0.0.1",
                                mqtt_port=1, protocol="5", furnished=True)
    guard = load_guard_config(layout.guard_config)
    assert (guard.guard.language, guard.guard.timezone) == ("de", "Europe/Berlin")
    (floor,) = guard.floors
    assert Path(floor.plan).read_text(encoding="utf-8").startswith("<svg")
    places = {o.id: (o.x, o.y) for o in guard.roster()}
    assert all(x is not None and y is not None for x, y in places.values())
    assert len(set(places.values())) == 5  # every room has a place of its own
    # rooms go round the corridor: the neighbours 103 (last on top) and 104 face each other
    (x3, y3), (x4, y4) = places["eg-103"], places["eg-104"]
    assert x3 == x4 and y3 < 0.5 < y4
    assert guard.instructions[0].text.startswith("Polizei 110")
    bare = write_demo_configs(tmp_path / "bare", offices=2, guard_port=1, mqtt_host="h",
                              mqtt_port=1, protocol="5")  # what the tests build on
    assert load_guard_config(bare.guard_config).floors == []


def test_office_count_out_of_range_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="--offices"):
        write_demo_configs(tmp_path, offices=0, guard_port=1, mqtt_host="h", mqtt_port=1,
                           protocol="5")


def test_broker_choice_follows_path_and_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert isinstance(choose_broker(tmp_path, no_mosquitto=True), EmbeddedBroker)
    monkeypatch.setenv("PATH", str(tmp_path))  # mosquitto hidden
    assert isinstance(choose_broker(tmp_path, no_mosquitto=False), EmbeddedBroker)
    monkeypatch.undo()
    assert isinstance(choose_broker(tmp_path, no_mosquitto=False), MosquittoBroker)


@pytest.mark.parametrize("embedded", [False, True], ids=["mosquitto", "amqtt"])
def test_each_broker_carries_retained_and_live_messages(tmp_path: Path, embedded: bool):
    broker = choose_broker(tmp_path, no_mosquitto=embedded)
    broker.start()
    got: list[tuple[str, bytes, bool]] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe",
                         protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set("probe")
    client.on_message = lambda _c, _u, m: got.append((m.topic, m.payload, bool(m.retain)))
    try:
        client.connect(broker.host, broker.port)
        client.loop_start()
        client.publish("t/retained", b"r", qos=1, retain=True).wait_for_publish(5)
        client.subscribe("t/#", qos=1)
        wait_for(lambda: ("t/retained", b"r", True) in got)
        client.publish("t/live", b"l", qos=1)
        wait_for(lambda: ("t/live", b"l", False) in got)
    finally:
        client.loop_stop()
        client.disconnect()
        broker.stop()
    broker.stop()  # idempotent


@pytest.fixture
def office_daemon(broker, tmp_path: Path) -> Iterator[tuple[object, object]]:
    layout = write_demo_configs(tmp_path, offices=2, guard_port=1, mqtt_host=broker.host,
                                mqtt_port=broker.port, protocol="5")
    procs = [subprocess.Popen([sys.executable, "-m", "controller", "run", "--config",
                               str(o.config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for o in layout.offices]
    cfg = load_guard_config(layout.guard_config)
    try:
        yield cfg, layout
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def test_sim_bridge_press_reaches_the_daemon_and_its_lamps_come_back(office_daemon):
    cfg, _layout = office_daemon
    bridge = SimBridge(cfg.mqtt, "test-guard")
    bridge.start()
    try:
        wait_for(lambda: set(bridge.outputs()) == {"eg-101", "eg-102"})
        assert bridge.outputs()["eg-102"]["neighbor_led"] is False
        bridge.press("eg-101", "panic", "press")
        # the neighbour's discreet indicator is lit by the real daemon's state machine
        wait_for(lambda: bridge.outputs()["eg-102"]["neighbor_led"])
        bridge.press("eg-101", "panic", "release")
        assert bridge.outputs()["eg-101"]["ack_led"] is False  # silent until a guard acks
    finally:
        bridge.stop()


def test_sim_bridge_refuses_unknown_inputs(office_daemon):
    cfg, _layout = office_daemon
    bridge = SimBridge(cfg.mqtt, "test-guard")
    with pytest.raises(SimInputError, match="unknown simulated input"):
        bridge.press("eg-101", "siren", "press")
    with pytest.raises(SimInputError, match="open or close"):
        bridge.press("eg-101", "door", "press")
    with pytest.raises(SimInputError, match="invalid office"):
        bridge.press("EG/#", "panic", "press")
