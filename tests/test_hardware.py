"""The gpiozero adapter through gpiozero's own MockFactory pins.

Inputs are driven at the pin level that real wiring gives (contacts switch to
GND, pull-ups on), so these tests check the wiring table in hardware.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from controller.errors import HardwareError
from controller.office.board import Board
from controller.office.office_config import HardwareCfg


class Rec:
    """Collects what the board reports: logical edges and output states."""

    def __init__(self) -> None:
        self.edges: list[tuple[str, bool]] = []
        self.outputs: list[dict[str, bool]] = []

    def sink(self, name: str, active: bool, at: float) -> None:
        assert isinstance(at, float)
        self.edges.append((name, active))

    def on_outputs(self, state: dict[str, bool]) -> None:
        self.outputs.append(state)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def board(factory: MockFactory, rec: Rec, **cfg: Any) -> Board:
    b = Board(HardwareCfg(pin_factory="mock", **cfg), rec.sink, factory=factory,
              on_outputs=rec.on_outputs)
    b.start()
    return b


@pytest.mark.parametrize(("contact", "idle_high"), [("nc", False), ("no", True)])
def test_panic_wiring(factory: MockFactory, contact: str, idle_high: bool) -> None:
    rec = Rec()
    b = board(factory, rec, panic_contact=contact)
    pin = factory.pin(17)
    assert pin.state == idle_high  # idle: nc closed to GND (low), no open (pulled high)
    assert b.levels()["panic"] is False
    pin.drive_low() if idle_high else pin.drive_high()  # the contact changes: pressed
    assert rec.edges == [("panic", True)]
    assert b.levels()["panic"] is True
    pin.drive_high() if idle_high else pin.drive_low()
    assert rec.edges == [("panic", True), ("panic", False)]
    b.close()


def test_cut_nc_wire_is_a_press(factory: MockFactory) -> None:
    rec = Rec()
    b = board(factory, rec, panic_contact="nc")
    factory.pin(17).drive_high()  # a cut wire: the pull-up wins, exactly like an open contact
    assert rec.edges == [("panic", True)]
    b.close()


@pytest.mark.parametrize(("name", "pin", "active_high"), [
    ("release", 27, False), ("rex", 5, False), ("door", 23, True)])
def test_release_rex_door_wiring(factory: MockFactory, name: str, pin: int,
                                 active_high: bool) -> None:
    rec = Rec()
    b = board(factory, rec)
    p = factory.pin(pin)
    assert b.levels()[name] is False
    p.drive_high() if active_high else p.drive_low()
    assert rec.edges == [(name, True)]
    assert b.levels()[name] is True
    p.drive_low() if active_high else p.drive_high()
    assert rec.edges == [(name, True), (name, False)]
    b.close()


def test_levels_only_list_configured_inputs(factory: MockFactory) -> None:
    b = board(factory, Rec(), door_pin=None, rex_pin=None)
    assert b.levels() == {"panic": False, "release": False}
    assert b.simulate("door", True) is False
    b.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_off_at_start_and_after_close(factory: MockFactory, active_high: bool) -> None:
    rec = Rec()
    b = board(factory, rec, relay_active_high=active_high)
    pin = factory.pin(22)
    off_level = not active_high
    assert pin.state == off_level and b.relay_is_on() is False
    b.set_output("relay", True)
    assert pin.state == active_high and b.relay_is_on() is True
    b.close()
    assert pin.state == off_level  # de-energised: locked
    assert b.relay_is_on() is False


def test_relay_off_even_when_start_fails(factory: MockFactory) -> None:
    blocker = Button(27, pin_factory=factory)
    with pytest.raises(HardwareError, match="cannot claim pins"):
        board(factory, Rec(), relay_active_high=False)
    assert factory.pin(22).state is True  # active-low relay left de-energised (high)
    blocker.close()


def test_pins_in_use_leave_the_first_board_working(factory: MockFactory) -> None:
    rec = Rec()
    first = board(factory, rec)
    with pytest.raises(HardwareError, match="GPIO22"):
        board(factory, Rec())
    # regression: the failed board reset the shared factory, cutting the first one off
    assert first.simulate("panic", True)
    assert rec.edges == [("panic", True)]
    first.set_output("relay", True)
    assert factory.pin(22).state is True
    first.close()


@pytest.mark.parametrize("contact", ["nc", "no"])
def test_simulate_drives_what_real_wiring_gives(factory: MockFactory, contact: str) -> None:
    rec = Rec()
    b = board(factory, rec, panic_contact=contact)
    for name in ("panic", "release", "door", "rex"):
        assert b.simulate(name, True)
        assert b.levels()[name] is True
        assert b.simulate(name, False)
    assert factory.pin(17).state == (contact == "no")
    assert rec.edges == [(n, a) for n in ("panic", "release", "door", "rex")
                         for a in (True, False)]
    assert b.simulate("bogus", True) is False
    b.close()


def test_simulate_refused_on_real_pins(factory: MockFactory) -> None:
    b = Board(HardwareCfg(pin_factory="lgpio"), Rec().sink, factory=factory)
    b.start()
    assert b.simulate("panic", True) is False
    b.close()


def test_leds_and_output_reports(factory: MockFactory) -> None:
    rec = Rec()
    b = board(factory, rec)
    assert rec.outputs == [{"relay": False, "ack_led": False, "neighbor_led": False}]
    b.set_output("ack_led", True)
    assert factory.pin(24).state is True
    b.set_output("ack_led", True)  # no change, no report
    b.set_output("neighbor_led", True)  # blinks in the background
    b.set_output("relay", True)
    b.set_output("relay", False)
    assert rec.outputs[1:] == [
        {"relay": False, "ack_led": True, "neighbor_led": False},
        {"relay": False, "ack_led": True, "neighbor_led": True},
        {"relay": True, "ack_led": True, "neighbor_led": True},
        {"relay": False, "ack_led": True, "neighbor_led": True},
    ]
    b.set_output("neighbor_led", False)
    b.set_output("ack_led", False)
    assert factory.pin(24).state is False and factory.pin(25).state is False
    b.close()


def test_missing_leds_are_fine(factory: MockFactory) -> None:
    rec = Rec()
    b = board(factory, rec, ack_led_pin=None, neighbor_led_pin=None)
    b.set_output("ack_led", True)
    assert rec.outputs[-1]["ack_led"] is True  # reported (simulated panel) though no pin
    b.close()


def test_a_failing_sink_never_breaks_the_gpio_thread(factory: MockFactory) -> None:
    def bad(name: str, active: bool, at: float) -> None:
        raise RuntimeError("queue gone")

    b = Board(HardwareCfg(pin_factory="mock"), bad, factory=factory)
    b.start()
    factory.pin(17).drive_high()  # logged, not raised into gpiozero
    assert b.levels()["panic"] is True
    b.close()


def test_unavailable_pin_factory_is_a_clear_hardware_error() -> None:
    if Path("/dev/gpiochip0").exists():
        pytest.skip("this machine has a real GPIO chip")
    b = Board(HardwareCfg(pin_factory="lgpio"), Rec().sink)
    with pytest.raises(HardwareError, match=r"hardware\.pin_factory: cannot load 'lgpio'"):
        b.start()
    b.close()  # safe after a failed start
