"""The only gpiozero importer: pins in, relay and LEDs out.

Callbacks run on gpiozero's (or lgpio's single) callback thread, so they only
timestamp the edge and hand it to `sink`, which enqueues it for the logic
thread. Logical levels are computed here from the wiring, so the state
machine never knows whether a button is `nc` or `no`.

Wiring (all inputs switch to GND, internal pull-ups on):

| input   | idle level | active ("pressed" / "open") |
|---------|------------|-----------------------------|
| panic, `no` | high   | low (contact closes)        |
| panic, `nc` | low    | high (contact opens - or the wire is cut) |
| release | high       | low                         |
| rex     | high       | low                         |
| door    | low (reed closed) | high (door open)     |
| fire, `no` | high    | low (the fire panel's contact closes) |
| fire, `nc` | low     | high (contact opens)        |

With `panic_line.supervision = "eol"` the panic loop is read through an
MCP3008 ADC instead (`panic_line.py`): idle, pressed, short, cut and tamper.

No gpiozero `bounce_time` is used: lgpio's debounce delays every edge and the
mock factory ignores it; debouncing is done by the state machine instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from controller.errors import HardwareError
from controller.office.office_config import HardwareCfg, PanicLineCfg
from controller.office.panic_line import AdcPanicLine, Change
from controller.protocol.names import INPUT_NAMES

log = structlog.get_logger("hardware")

RawSink = Callable[[str, bool, float], None]
"""Called from a GPIO thread with (input name, logical active, monotonic time)."""
OutputSink = Callable[[dict[str, bool]], None]
LineSink = Callable[[str, float], None]
"""Called from the ADC thread with (line condition, monotonic time)."""

_INPUTS = INPUT_NAMES
_IDLE_HIGH = {"release": True, "rex": True, "door": False}
MOCK_IDLE, MOCK_PRESSED = "idle", "pressed"  # what the mock ADC shows for a sim press


class Board:
    """The office's GPIO: four inputs, the strike relay and two discreet LEDs."""

    def __init__(self, cfg: HardwareCfg, sink: RawSink | None = None, *, factory: Any = None,
                 on_outputs: OutputSink | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 panic_line: PanicLineCfg | None = None,
                 sim_start: dict[str, bool] | None = None) -> None:
        """Remember the wiring; `start()` claims the pins. `clock` stamps each edge.

        `sim_start`: mock pins only, the logical input levels found at start (default:
        all idle), e.g. a panic wire that is still cut when the daemon restarts.
        """
        self.cfg = cfg
        self.sim_start = sim_start or {}
        self.line_cfg = panic_line if panic_line is not None else PanicLineCfg()
        self.line: AdcPanicLine | None = None
        self.mock_adc: Any = None  # the MockMCP3008 behind a supervised line on mock pins
        self.on_line: LineSink = lambda *_: None
        self.sink: RawSink = sink if sink is not None else (lambda *_: None)
        self.clock = clock
        self.factory = factory
        self.on_outputs = on_outputs
        self.devices: dict[str, Any] = {}
        self._own_factory = False  # only a factory made here is ours to reset on close
        self.state = {"relay": False, "ack_led": False, "neighbor_led": False}
        self._lock = threading.Lock()

    def bind(self, sink: RawSink, on_outputs: OutputSink | None = None,
             on_line: LineSink | None = None) -> None:
        """Attach the daemon's edge sink, output and line reporters (before `start()`)."""
        self.sink = sink
        self.on_outputs = on_outputs
        if on_line is not None:
            self.on_line = on_line

    @property
    def supervised(self) -> bool:
        """The panic loop is read through the ADC (EOL resistors), not as a digital input."""
        return self.line_cfg.supervision != "off"

    @property
    def line_condition(self) -> str:
        """`ok`, or the supervised line's `short` / `cut` / `tamper`."""
        return self.line.filter.condition if self.line is not None else "ok"

    @property
    def is_mock(self) -> bool:
        """True when the pins are gpiozero's MockFactory pins (demo, tests)."""
        return self.cfg.pin_factory == "mock"

    def _make_factory(self) -> Any:
        if self.factory is not None:
            return self.factory
        try:
            if self.is_mock:
                from gpiozero.pins.mock import MockFactory  # noqa: PLC0415

                self._own_factory = True
                return MockFactory()
            from gpiozero.pins.lgpio import LGPIOFactory  # noqa: PLC0415

            chip = self.cfg.lgpio_chip
            return LGPIOFactory() if chip is None else LGPIOFactory(chip=chip)
        except Exception as exc:  # gpiozero/lgpio raise many types on a bad platform
            msg = f"hardware.pin_factory: cannot load {self.cfg.pin_factory!r}: {exc}"
            raise HardwareError(msg) from exc

    def _pins(self) -> dict[str, int | None]:
        c = self.cfg
        return {"panic": None if self.supervised else c.panic_pin, "release": c.release_pin,
                "door": c.door_pin, "rex": c.rex_pin, "fire": c.fire_pin}

    def start(self) -> None:
        """Claim every pin: the relay first, de-energised, then the LEDs and inputs."""
        from gpiozero import LED, DigitalInputDevice, OutputDevice  # noqa: PLC0415

        self.factory = self._make_factory()
        try:
            self.devices["relay"] = OutputDevice(self.cfg.relay_pin,
                                                 active_high=self.cfg.relay_active_high,
                                                 initial_value=False, pin_factory=self.factory)
            for name, pin in (("ack_led", self.cfg.ack_led_pin),
                              ("neighbor_led", self.cfg.neighbor_led_pin)):
                if pin is not None:
                    self.devices[name] = LED(pin, initial_value=False, pin_factory=self.factory)
            for name, pin in self._pins().items():
                if pin is not None:
                    self.devices[name] = DigitalInputDevice(pin, pull_up=True,
                                                            pin_factory=self.factory)
            if self.is_mock:
                for name in self.devices.keys() & set(_INPUTS):
                    self._drive(name, active=self.sim_start.get(name, False))
            for name in self.devices.keys() & set(_INPUTS):
                dev = self.devices[name]
                dev.when_activated = self._callback(name, pin_low=True)
                dev.when_deactivated = self._callback(name, pin_low=False)
            if self.supervised:
                self._start_line()
        except Exception as exc:  # GPIOPinInUse, PinInvalidPin, ... all mean "cannot run"
            self.close()
            raise HardwareError(f"hardware: cannot claim pins: {exc}") from exc
        self._report()

    def _start_line(self) -> None:
        if self.is_mock:
            from controller.office.testing import MockMCP3008  # noqa: PLC0415

            self.mock_adc = MockMCP3008(self.factory, port=self.line_cfg.spi_port,
                                        device=self.line_cfg.spi_device)
            self.set_mock_line(MOCK_PRESSED if self.sim_start.get("panic") else MOCK_IDLE)
        self.line = AdcPanicLine(self.line_cfg, self.factory, self._line_change, self.clock)
        self.line.start()

    def _line_change(self, change: Change, at: float) -> None:
        kind, value = change
        try:
            if kind == "panic":
                self.sink("panic", bool(value), at)
            else:
                self.on_line(str(value), at)
        except Exception:  # never let an exception end the ADC thread
            log.exception("panic_line_report_failed")

    def set_mock_line(self, band: str) -> None:
        """Mock pins only: put the simulated loop in a band (idle, pressed, short, cut, tamper)."""
        c = self.line_cfg
        value = {"idle": (c.idle_low + c.idle_high) / 2,
                 "pressed": (c.alarm_low + c.alarm_high) / 2,
                 "short": c.short_below / 2, "cut": (c.cut_above + 1) / 2,
                 "tamper": (c.idle_high + c.alarm_low) / 2}[band]
        self.mock_adc.values[c.channel] = value

    def _active_from_low(self, name: str, pin_low: bool) -> bool:
        """Translate a pin level (low = contact to GND closed) to the logical level."""
        if name == "panic":
            return pin_low if self.cfg.panic_contact == "no" else not pin_low
        if name == "fire":
            return pin_low if self.cfg.fire_contact == "no" else not pin_low
        if name == "door":
            return not pin_low
        return pin_low

    def _callback(self, name: str, *, pin_low: bool) -> Callable[[], None]:
        active = self._active_from_low(name, pin_low)

        def fire() -> None:
            try:
                self.sink(name, active, self.clock())
            except Exception:  # never let an exception into gpiozero's callback thread
                log.exception("gpio_callback_failed", input=name)

        return fire

    def levels(self) -> dict[str, bool]:
        """Current logical level of every configured input."""
        out = {}
        for name in _INPUTS:
            dev = self.devices.get(name)
            if dev is not None:
                out[name] = self._active_from_low(name, bool(dev.is_active))
        if self.line is not None:
            out["panic"] = self.line.filter.pressed
        return out

    def set_output(self, name: str, on: bool) -> None:
        """Drive an output; the neighbour LED blinks in its configured pattern."""
        with self._lock:
            dev = self.devices.get(name)
            if dev is not None:
                if not on:
                    dev.off()
                elif name == "neighbor_led":
                    dev.blink(on_time=self.cfg.neighbor_led_on_s,
                              off_time=self.cfg.neighbor_led_off_s, background=True)
                else:
                    dev.on()
            changed = self.state.get(name) != on
            self.state[name] = on
        if changed:
            self._report()

    def relay_is_on(self) -> bool:
        """What the relay pin really drives (for tests and the self-test)."""
        dev = self.devices.get("relay")
        return bool(dev is not None and dev.value)

    def _report(self) -> None:
        if self.on_outputs is not None:
            try:
                self.on_outputs(dict(self.state))
            except Exception:  # reporting must never break driving the pins
                log.exception("output_report_failed")

    # ------------------------------------------------------- simulation

    def _drive(self, name: str, *, active: bool) -> None:
        if name == "panic" and self.mock_adc is not None:
            self.set_mock_line(MOCK_PRESSED if active else MOCK_IDLE)
            return
        pin_for = self._pins()[name]
        if pin_for is None:
            return
        pin = self.factory.pin(pin_for)
        if name == "panic":
            high = (not active) if self.cfg.panic_contact == "no" else active
        elif name == "fire":
            high = (not active) if self.cfg.fire_contact == "no" else active
        elif name == "door":
            high = active
        else:
            high = not active
        if high:
            pin.drive_high()
        else:
            pin.drive_low()

    def simulate(self, name: str, active: bool) -> bool:
        """Drive a mock input as real wiring would (sim topics); False if not possible."""
        if not self.is_mock or name not in _INPUTS:
            return False
        if name not in self.devices and not (name == "panic" and self.mock_adc is not None):
            return False
        self._drive(name, active=active)
        return True

    # -------------------------------------------------------------- close

    def close(self) -> None:
        """Relay off first, then release every pin (safe even if start() failed)."""
        if self.line is not None:
            self.line.close()
            self.line = None
        if self.mock_adc is not None:
            self.mock_adc.close()
            self.mock_adc = None
        relay = self.devices.get("relay")
        if relay is not None:
            try:
                relay.off()
            except Exception:  # closing must go on whatever a pin says
                log.exception("relay_off_failed")
        for name, dev in list(self.devices.items()):
            try:
                dev.close()
            except Exception:  # closing must go on whatever a pin says
                log.exception("pin_close_failed", device=name)
        self.devices.clear()
        if self.factory is not None and self.is_mock and self._own_factory:
            self.factory.reset()
