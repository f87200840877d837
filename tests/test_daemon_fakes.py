"""The whole office daemon in one thread: fake clock, fake link, MockFactory pins, real SQLite.

No broker and no sleeps: the clock moves only when the test says so, so the
50 ms debounce and the release pulse are crossed exactly, not "probably".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.office.board import Board
from controller.office.compose import make_outbox, subscriptions
from controller.office.daemon import Daemon
from controller.office.machine import DEBOUNCE_S, RELEASE_STABLE_S
from controller.office.office_config import OfficeConfig
from controller.office.ports import Session
from controller.office.testing import FakeClock, FakeLink
from controller.protocol.messages import State
from tests.office_proc import office_sections

PANIC, RELEASE, RELAY = 17, 27, 22


@pytest.fixture
def office(tmp_path: Path):
    sections = office_sections(tmp_path, 1)
    sections.pop("log")
    cfg = OfficeConfig(**sections)
    clock, link, factory = FakeClock(), FakeLink(), MockFactory()
    board = Board(cfg.hardware, factory=factory, clock=clock.monotonic)
    daemon = Daemon(cfg, board=board, link=link, outbox=make_outbox(cfg), clock=clock)
    daemon.start(thread=False)
    link.connect()
    daemon.pump()
    yield daemon, clock, link, factory
    daemon.stop()


def test_a_press_is_published_at_once_without_waiting_for_the_debounce(office):
    daemon, clock, link, factory = office
    factory.pin(PANIC).drive_high()  # nc wiring: high = pressed
    daemon.pump()
    panics = link.events("panic")
    assert len(panics) == 1
    assert link.last("alarm").json()["state"] == "active"
    # held beyond the debounce and let go: no second alarm, no repeat
    clock.advance(DEBOUNCE_S * 2)
    factory.pin(PANIC).drive_low()
    daemon.pump()
    clock.advance(DEBOUNCE_S * 2)
    daemon.pump()
    assert len(link.events("panic")) == 1
    assert link.events("panic_repeat") == []


def test_release_pulse_lasts_release_s_on_the_fake_clock(office):
    daemon, clock, link, factory = office
    factory.pin(RELEASE).drive_low()  # pressed
    daemon.pump()
    assert not daemon.board.relay_is_on()  # issue 16.3: not at the edge, only once it held
    clock.advance(RELEASE_STABLE_S)
    daemon.pump()  # held stable: the pulse starts here
    assert daemon.board.relay_is_on()
    assert [e["source"] for e in link.events("door_released")] == ["button"]
    clock.advance(DEBOUNCE_S * 2)
    factory.pin(RELEASE).drive_high()
    daemon.pump()
    clock.advance(daemon.cfg.door.release_s - DEBOUNCE_S * 2 - 0.01)
    daemon.pump()
    assert daemon.board.relay_is_on()
    clock.advance(0.02)
    daemon.pump()
    assert not daemon.board.relay_is_on()
    assert len(link.events("door_locked")) == 1


def test_a_100_microsecond_glitch_on_the_release_line_keeps_the_door_locked(office):
    daemon, clock, link, factory = office
    factory.pin(RELEASE).drive_low()
    clock.advance(0.0001)
    factory.pin(RELEASE).drive_high()
    for _ in range(5):
        daemon.pump()
        clock.advance(RELEASE_STABLE_S)
    assert not daemon.board.relay_is_on()
    assert link.events("door_released") == []
    assert not any(p.json()["relay"] for p in link.published if p.topic.endswith("sim/output"))


def test_a_20_ms_panic_tap_still_raises_the_alarm(office):
    daemon, clock, link, factory = office
    factory.pin(PANIC).drive_high()
    clock.advance(0.02)
    factory.pin(PANIC).drive_low()
    daemon.pump()
    assert len(link.events("panic")) == 1


def test_events_wait_in_the_outbox_while_offline_and_replay_in_order(office):
    daemon, clock, link, factory = office
    link.disconnect()
    daemon.pump()
    before = len(link.events())
    for _ in range(3):
        factory.pin(PANIC).drive_high()
        daemon.pump()
        clock.advance(DEBOUNCE_S * 2)
        factory.pin(PANIC).drive_low()
        daemon.pump()
        clock.advance(DEBOUNCE_S * 2)
        daemon.pump()
    assert len(link.events()) == before  # nothing published while offline
    link.connect()
    daemon.pump()
    replayed = link.events()[before:]
    assert [e["type"] for e in replayed] == ["panic", "panic_repeat", "panic_repeat"]
    seqs = [e["seq"] for e in replayed]
    assert seqs == sorted(seqs)


def test_heartbeat_state_follows_the_fake_clock(office):
    daemon, clock, link, _factory = office
    states = lambda: [p for p in link.published if p.topic.endswith("/state")]  # noqa: E731
    count = len(states())
    clock.advance(daemon.cfg.alarm.heartbeat_s * 3 + 0.01)
    daemon.pump()
    assert len(states()) == count + 1
    assert states()[-1].json()["uptime_s"] >= daemon.cfg.alarm.heartbeat_s * 3


def test_subscriptions_of_a_mock_office_include_its_sim_inputs(tmp_path: Path):
    sections = office_sections(tmp_path, 1, office={"neighbors": ["eg-102"]})
    sections.pop("log")
    cfg = OfficeConfig(**sections)
    subs = subscriptions(cfg, mock_pins=True)
    assert subs == ["officesec/office/eg-101/cmd", "officesec/office/eg-102/alarm",
                    "officesec/office/eg-101/sim/input/+"]
    assert "officesec/office/eg-101/sim/input/+" not in subscriptions(cfg, mock_pins=False)


def test_the_state_tells_the_installer_its_address_broker_and_connection_start(office):
    daemon, clock, link, _factory = office
    first = link.last("state").json()
    assert (first["address"], first["broker"]) == ("192.0.2.10", "broker.test:1883")
    started = datetime.fromisoformat(first["connected_since"])
    link.disconnect()
    daemon.pump()
    clock.advance(30)
    link.session_facts = Session("192.0.2.11", "broker-2.test:8883")  # failed over, new DHCP
    link.connect()
    daemon.pump()
    again = link.last("state").json()
    assert (again["address"], again["broker"]) == ("192.0.2.11", "broker-2.test:8883")
    assert datetime.fromisoformat(again["connected_since"]) - started == timedelta(seconds=30)
    # an older office sends none of them: its state is still valid
    old = {k: v for k, v in again.items() if k not in ("address", "broker", "connected_since")}
    assert State.model_validate(old).address is None
