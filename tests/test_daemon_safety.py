"""Issue 16 on the whole daemon in one thread: fake clock, fake link, MockFactory pins, SQLite.

Cut wire across a restart, neighbour LED after a reconnect, an alarm that
cannot be published committed before anything else (slow disk injected in the
outbox), the supervised line through a mock MCP3008, the fire input and the
walk-test reminder.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from controller.office.board import Board
from controller.office.compose import make_outbox
from controller.office.daemon import Daemon
from controller.office.machine import FIRE_STABLE_S, NEIGHBOR_RESYNC_S
from controller.office.office_config import OfficeConfig
from controller.office.testing import FakeClock, FakeLink
from tests.office_proc import office_sections

PANIC, FIRE = 17, 6
P = "officesec"


class Office:
    """Build, start and restart one daemon on the same storage."""

    def __init__(self, tmp_path: Path, **overrides: dict[str, Any]) -> None:
        sections = office_sections(tmp_path, 1, **overrides)
        sections.pop("log")
        self.cfg = OfficeConfig(**sections)
        self.clock = FakeClock()
        self.daemon: Daemon | None = None

    def start(self, *, sim_start: dict[str, bool] | None = None,
              connect: bool = True) -> tuple[Daemon, FakeLink, MockFactory]:
        link, factory = FakeLink(), MockFactory()
        board = Board(self.cfg.hardware, factory=factory, clock=self.clock.monotonic,
                      panic_line=self.cfg.panic_line, sim_start=sim_start)
        self.daemon = Daemon(self.cfg, board=board, link=link, outbox=make_outbox(self.cfg),
                             clock=self.clock)
        self.daemon.start(thread=False)
        if connect:
            link.connect()
        self.daemon.pump()
        return self.daemon, link, factory

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    o = Office(tmp_path)
    yield o
    o.stop()


def state(link: FakeLink) -> dict[str, Any]:
    last = link.last("state")
    assert last is not None
    return last.json()


# ------------------------------------------------------------ 16.10 cut wire


def test_cut_wire_is_in_the_state_at_once_and_a_restart_is_no_new_press(office: Office) -> None:
    daemon, link, factory = office.start()
    factory.pin(PANIC).drive_high()  # nc loop: the wire is cut
    daemon.pump()
    assert len(link.events("panic")) == 1
    assert state(link)["panic_input"] == "active"
    assert "panic_input_active" in state(link)["faults"]  # at once, not after line_fault_s
    office.stop()
    daemon, link, _ = office.start(sim_start={"panic": True})  # still cut
    assert link.events("panic") == [] and link.events("panic_repeat") == []
    assert state(link)["panic_input"] == "active"
    assert state(link)["alarm"] == "active"  # the open alarm is restored, not counted again


def test_a_press_held_through_a_restart_that_began_after_the_stop_still_counts(
        office: Office) -> None:
    office.start()
    office.stop()
    _daemon, link, _ = office.start(sim_start={"panic": True})  # pressed while it was down
    assert len(link.events("panic")) == 1


# ---------------------------------------------------------- 16.5 neighbours


def test_neighbour_resolved_while_offline_turns_the_led_off_after_reconnect(
        tmp_path: Path) -> None:
    office = Office(tmp_path, office={"neighbors": ["eg-102"]})
    try:
        daemon, link, _ = office.start()
        alarm = (b'{"schema":1,"alarm_id":"0b7f6c3e-1d2a-4c5b-8e9f-a0b1c2d3e4f5",'
                 b'"office":"eg-102","location":{},"state":"active",'
                 b'"raised_at":"2026-12-02T09:00:00.000Z","presses":1}')
        link.deliver(f"{P}/office/eg-102/alarm", alarm, retained=True)
        daemon.pump()
        assert daemon.board.state["neighbor_led"] is True
        link.disconnect()
        daemon.pump()
        link.connect()  # eg-102 was resolved meanwhile: the broker sends nothing for it
        daemon.pump()
        assert daemon.board.state["neighbor_led"] is True  # not yet: retained may still come
        office.clock.advance(NEIGHBOR_RESYNC_S + 0.01)
        daemon.pump()
        assert daemon.board.state["neighbor_led"] is False
    finally:
        office.stop()


# --------------------------------------------- 16.8 press lost in a stall


def test_an_alarm_that_cannot_be_published_is_on_disk_before_the_daemon_goes_on(
        office: Office) -> None:
    daemon, _link, factory = office.start(connect=False)  # broker unreachable
    assert daemon.outbox.flush(5.0)
    daemon.outbox.before_commit = lambda: time.sleep(0.5)  # a stalling SD card
    factory.pin(PANIC).drive_high()
    daemon.pump()
    # pump() returned: power may go now. The panic must already be committed.
    db = sqlite3.connect(office.cfg.storage.path)
    try:
        rows = db.execute("SELECT type FROM events WHERE type = 'panic'").fetchall()
    finally:
        db.close()
    assert rows == [("panic",)]


def test_an_alarm_published_at_once_does_not_wait_for_the_disk(office: Office) -> None:
    daemon, link, factory = office.start()
    assert daemon.outbox.flush(5.0)
    daemon.outbox.before_commit = lambda: time.sleep(0.5)
    started = time.monotonic()
    factory.pin(PANIC).drive_high()
    daemon.pump()
    assert len(link.events("panic")) == 1
    assert time.monotonic() - started < 0.4  # the alarm path never waits on a slow fsync


# -------------------------------------------------- 16.4 supervised line


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Office]:
    o = Office(tmp_path, panic_line={"supervision": "eol", "poll_s": 0.002})
    yield o
    o.stop()


def _settle(office: Office, daemon: Daemon) -> None:
    time.sleep(0.03)  # the ADC thread polls every 2 ms (real time)
    office.clock.advance(0.1)  # past fault_stable_s on the daemon's clock
    time.sleep(0.03)
    daemon.pump()


@pytest.mark.parametrize("band", ["short", "cut", "tamper"])
def test_supervised_line_reports_short_cut_tamper_and_no_alarm(supervised: Office,
                                                               band: str) -> None:
    daemon, link, _ = supervised.start()
    assert state(link)["panic_input"] == "idle"
    daemon.board.set_mock_line(band)
    _settle(supervised, daemon)
    faults = link.events("panic_line_fault")
    assert [f["reason"] for f in faults] == [band]
    assert link.events("panic") == []
    assert state(link)["panic_input"] == band
    daemon.board.set_mock_line("idle")
    _settle(supervised, daemon)
    assert [e["reason"] for e in link.events("panic_line_ok")] == [band]


def test_supervised_line_press_is_an_alarm_at_once(supervised: Office) -> None:
    daemon, link, _ = supervised.start()
    daemon.board.simulate("panic", True)
    time.sleep(0.03)
    daemon.pump()  # no clock advance needed: a press is not filtered
    assert len(link.events("panic")) == 1
    assert link.events("panic_line_fault") == []


# ------------------------------------------------------------------ fire


def test_fire_input_lifts_lockdown_and_releases_where_configured(tmp_path: Path) -> None:
    office = Office(tmp_path, hardware={"fire_pin": FIRE}, fire={"release_on_fire": True})
    try:
        daemon, link, factory = office.start()
        factory.pin(FIRE).drive_low()  # "no" contact closes: fire
        daemon.pump()
        office.clock.advance(FIRE_STABLE_S)
        daemon.pump()
        assert [e["type"] for e in link.events()][-2:] == ["fire_alarm_on", "door_released"]
        assert daemon.board.relay_is_on()
        assert state(link)["fire_alarm"] is True
        factory.pin(FIRE).drive_high()
        daemon.pump()
        office.clock.advance(FIRE_STABLE_S)
        daemon.pump()
        assert not daemon.board.relay_is_on()
    finally:
        office.stop()


# ------------------------------------------------------------- walk test


def test_walk_test_reminder_after_the_configured_days_survives_a_restart(tmp_path: Path) -> None:
    office = Office(tmp_path, alarm={"walk_test_days": 30})
    try:
        daemon, link, factory = office.start()
        office.clock.advance(29 * 86400)
        daemon.pump()
        assert link.events("walk_test_due") == []
        office.stop()
        office.clock.advance(2 * 86400)  # 31 days after the first start, across a restart
        daemon, link, factory = office.start()
        assert len(link.events("walk_test_due")) == 1
        assert "walk_test_due" in state(link)["faults"]
        factory.pin(PANIC).drive_high()  # the walk test itself
        daemon.pump()
        assert "walk_test_due" not in state(link)["faults"]
    finally:
        office.stop()
