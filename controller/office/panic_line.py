"""A supervised panic line: end-of-line resistors read through an MCP3008 ADC (issue 16.4).

A plain nc loop reads "idle" when its cable is bridged or shorted, so a
sabotaged button fails silently. With end-of-line (EOL) or double-EOL
resistors the loop has a distinct voltage for idle, pressed, short and cut; a
reading between the bands is tamper (a foreign resistor, a bridged loop). The
MCP3008 is read with gpiozero's `MCP3008` (hardware SPI via spidev, or
MockFactory's software SPI in tests and the demo).

`LineFilter` is pure (samples in, changes out) so the bands are tested with
plain numbers; `AdcPanicLine` is the adapter that polls the ADC in a thread.
A press is passed on from the first sample in the pressed band (a 20 ms tap
gives at least two samples at `poll_s` <= 10 ms); short, cut and tamper only
once they held for `fault_stable_s`, so an edge crossing a band is no fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import structlog

from controller.office.office_config import PanicLineCfg

log = structlog.get_logger("hardware")

Band = Literal["idle", "pressed", "short", "cut", "tamper"]
Change = tuple[Literal["panic", "line"], Any]


def classify(value: float, cfg: PanicLineCfg) -> Band:
    """Which band an ADC reading (fraction of the reference, 0..1) falls in."""
    if value < cfg.short_below:
        return "short"
    if cfg.idle_low <= value <= cfg.idle_high:
        return "idle"
    if cfg.alarm_low <= value <= cfg.alarm_high:
        return "pressed"
    if value > cfg.cut_above:
        return "cut"
    return "tamper"


class LineFilter:
    """Turns ADC samples into panic edges (at once) and line conditions (once stable)."""

    def __init__(self, cfg: PanicLineCfg) -> None:
        """Start idle and ok, as the machine does."""
        self.cfg = cfg
        self.pressed = False
        self.condition = "ok"
        self._candidate = "ok"
        self._since = float("-inf")

    def feed(self, value: float, at: float) -> list[Change]:
        """One sample at monotonic time `at`; the changes to report, in order."""
        band = classify(value, self.cfg)
        out: list[Change] = []
        pressed = band == "pressed"
        if pressed != self.pressed:
            self.pressed = pressed
            out.append(("panic", pressed))
        cond = band if band in ("short", "cut", "tamper") else "ok"
        if cond != self._candidate:
            self._candidate, self._since = cond, at
        if cond != self.condition and at - self._since >= self.cfg.fault_stable_s:
            self.condition = cond
            out.append(("line", cond))
        return out


class AdcPanicLine:
    """Polls the MCP3008 channel of the panic loop in its own thread."""

    def __init__(self, cfg: PanicLineCfg, factory: Any,
                 on_change: Callable[[Change, float], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Claim nothing yet; `start()` opens the ADC."""
        self.cfg = cfg
        self.factory = factory
        self.on_change = on_change
        self.clock = clock
        self.filter = LineFilter(cfg)
        self.adc: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the ADC, settle the initial state (no callbacks), then poll."""
        from gpiozero import MCP3008, Device  # noqa: PLC0415 - gpiozero only in the adapter

        # gpiozero 2.0's software SPI bus builds its base Device without our factory, which
        # then loads a default one (failing off a Pi): lend it ours while it is built
        saved = Device.pin_factory
        Device.pin_factory = saved or self.factory
        try:
            self.adc = MCP3008(channel=self.cfg.channel, port=self.cfg.spi_port,
                               device=self.cfg.spi_device, pin_factory=self.factory)
        finally:
            Device.pin_factory = saved
        # the condition found at start is the state, not a change to report: read for
        # fault_stable_s (sample times counted, so a fake clock that stands still is fine)
        t0 = self.clock()
        samples = int(self.cfg.fault_stable_s / self.cfg.poll_s) + 2
        for i in range(samples):
            self.filter.feed(self.read(), t0 + i * self.cfg.poll_s)
            time.sleep(self.cfg.poll_s)
        self._thread = threading.Thread(target=self._poll, name="panic-line", daemon=True)
        self._thread.start()

    def read(self) -> float:
        """One reading, 0..1 of the reference voltage."""
        return float(self.adc.value)

    @property
    def alive(self) -> bool:
        """The polling thread runs (for the watchdog)."""
        return self._thread is not None and self._thread.is_alive()

    def _poll(self) -> None:
        while not self._stop.wait(self.cfg.poll_s):
            try:
                at = self.clock()
                for change in self.filter.feed(self.read(), at):
                    self.on_change(change, at)
            except Exception:  # an ADC that cannot be read supervises nothing: say so
                log.exception("panic_line_read_failed")
                if self.filter.condition != "tamper":
                    self.filter.condition = "tamper"
                    self.on_change(("line", "tamper"), self.clock())
                time.sleep(0.5)

    def close(self) -> None:
        """Stop polling and release the ADC."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        if self.adc is not None:
            self.adc.close()
            self.adc = None
