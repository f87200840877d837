"""Office configuration: a strict, typed value loaded from TOML plus environment.

Every section forbids unknown keys (a typo is an error, never ignored). Any key
can be overridden by ``OFFICESEC_<SECTION>__<KEY>``. Errors come back as
``section.key: message`` lines so an installer can fix them all in one go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from controller.settings import (
    LogCfg,
    MqttCfg,
    OfficeIdStr,
    ReadableFile,
    Root,
    Section,
    Text,
    build,
    raise_problems,
    read_toml,
)


class OfficeCfg(Section):
    """Who and where this office is: it is shown to the guard on an alarm."""

    id: OfficeIdStr
    site: Text = ""
    building: Text = ""
    floor: Text = ""
    room: Text = ""
    label: Text = ""
    neighbors: list[OfficeIdStr] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _neighbors(self) -> OfficeCfg:
        problems = []
        if self.id in self.neighbors:
            problems.append("neighbors: must not contain the office's own id")
        if len(set(self.neighbors)) != len(self.neighbors):
            problems.append("neighbors: lists an office twice")
        raise_problems(problems)
        return self


Pin = Annotated[int, Field(ge=0, le=27)]


class HardwareCfg(Section):
    """BCM pin numbers and wiring; see the wiring table in the README."""

    pin_factory: Literal["lgpio", "mock"] = "lgpio"
    lgpio_chip: int | None = Field(None, ge=0, le=16)
    panic_pin: Pin = 17
    panic_contact: Literal["nc", "no"] = "nc"
    release_pin: Pin = 27
    relay_pin: Pin = 22
    relay_active_high: bool = True
    door_pin: Pin | None = 23
    rex_pin: Pin | None = 5
    ack_led_pin: Pin | None = 24
    neighbor_led_pin: Pin | None = 25
    neighbor_led_on_s: float = Field(0.2, gt=0, le=10)
    neighbor_led_off_s: float = Field(1.8, gt=0, le=10)
    fire_pin: Pin | None = None  # optional: a volt-free contact of the building's fire panel
    fire_contact: Literal["nc", "no"] = "no"

    PIN_KEYS: ClassVar[tuple[str, ...]] = (
        "panic_pin", "release_pin", "relay_pin", "door_pin", "rex_pin", "ack_led_pin",
        "neighbor_led_pin", "fire_pin")

    @model_validator(mode="after")
    def _distinct(self) -> HardwareCfg:
        seen: dict[int, str] = {}
        problems = []
        for key in self.PIN_KEYS:
            pin = getattr(self, key)
            if pin is None:
                continue
            if pin in seen:
                problems.append(f"{key}: GPIO{pin} is already used by {seen[pin]}")
            else:
                seen[pin] = key
        raise_problems(problems)
        return self


SPI_PINS = {0: (11, 10, 9), 1: (21, 20, 19)}  # SCLK, MOSI, MISO of SPI0 / SPI1
SPI_SELECT = {(0, 0): 8, (0, 1): 7, (1, 0): 18, (1, 1): 17, (1, 2): 16}


class PanicLineCfg(Section):
    """Supervision of the panic line through an ADC (issue 16.4); off = the plain nc/no input.

    With `supervision = "eol"` the button loop carries end-of-line resistors and is
    read as a fraction of the reference voltage (0..1) by an MCP3008 on SPI. The
    bands, from low to high: short < `short_below` <= idle band <= `idle_above` ...
    `alarm_below` <= pressed band <= `alarm_above` ... `cut_above` < cut. A reading
    between bands is tamper (a foreign resistor, a bridged loop).
    """

    supervision: Literal["off", "eol"] = "off"
    adc: Literal["mcp3008"] = "mcp3008"
    spi_port: int = Field(0, ge=0, le=1)
    spi_device: int = Field(0, ge=0, le=2)
    channel: int = Field(0, ge=0, le=7)
    poll_s: float = Field(0.005, ge=0.001, le=0.01)  # <= 10 ms: a 20 ms tap gives >= 2 reads
    fault_stable_s: float = Field(0.05, ge=0.0, le=1.0)  # T7: glitch filter <= 50 ms
    short_below: float = Field(0.10, gt=0, lt=1)
    idle_low: float = Field(0.20, gt=0, lt=1)
    idle_high: float = Field(0.40, gt=0, lt=1)
    alarm_low: float = Field(0.55, gt=0, lt=1)
    alarm_high: float = Field(0.80, gt=0, lt=1)
    cut_above: float = Field(0.90, gt=0, lt=1)

    BANDS: ClassVar[tuple[str, ...]] = ("short_below", "idle_low", "idle_high", "alarm_low",
                                        "alarm_high", "cut_above")

    @model_validator(mode="after")
    def _ordered(self) -> PanicLineCfg:
        problems = []
        values = [getattr(self, k) for k in self.BANDS]
        for (ka, a), (kb, b) in zip(zip(self.BANDS, values, strict=True),
                                    zip(self.BANDS[1:], values[1:], strict=True), strict=False):
            if not a < b:
                problems.append(f"{kb}: must be greater than {ka} ({a:g})")
        if (self.spi_port, self.spi_device) not in SPI_SELECT:
            problems.append(f"spi_device: SPI{self.spi_port} has no chip select {self.spi_device}")
        raise_problems(problems)
        return self

    def spi_pins(self) -> tuple[int, ...]:
        """The GPIOs the ADC's SPI bus takes (SCLK, MOSI, MISO, CE)."""
        return (*SPI_PINS[self.spi_port], SPI_SELECT[(self.spi_port, self.spi_device)])


class FireCfg(Section):
    """What the optional fire-alarm input does (off unless `hardware.fire_pin` is set).

    A fire always lifts a lockdown and refuses a new one. Whether it also holds
    the strike released is the site's fire-safety concept: off by default.
    """

    release_on_fire: bool = False


class DoorCfg(Section):
    """Strike timing; the pulse is short so that one client at a time comes in."""

    release_s: float = Field(5, ge=1, le=30)
    held_open_s: float = Field(30, gt=0, le=3600)

    @model_validator(mode="after")
    def _held(self) -> DoorCfg:
        if self.held_open_s <= self.release_s:
            raise_problems([f"held_open_s: must be greater than release_s ({self.release_s:g})"])
        return self


class AlarmCfg(Section):
    """Supervision: the guard flags the office stale after 3 missed heartbeats."""

    heartbeat_s: float = Field(1, ge=0.2, le=60)
    line_fault_s: float = Field(60, ge=5, le=3600)
    walk_test_days: float = Field(30, ge=0, le=366)  # 0 = no walk-test reminder


class SecurityCfg(Section):
    """Command verification; offices hold only the guard's public key."""

    guard_public_key: ReadableFile | None = None
    allow_remote_release: bool = False
    command_window_s: float = Field(120, ge=5, le=3600)


class StorageCfg(Section):
    """The durable outbox (SQLite, WAL) and how long delivered events are kept."""

    path: str = "/var/lib/officesec/office.sqlite3"
    max_events: int = Field(100_000, ge=100, le=10_000_000)
    keep_delivered_days: float = Field(7, ge=0, le=365)


class HomeAssistantCfg(Section):
    """Optional Home Assistant MQTT discovery."""

    discovery: bool = False
    prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "homeassistant"


class OfficeConfig(Root):
    """The whole office controller configuration."""

    office: OfficeCfg
    mqtt: MqttCfg = MqttCfg()
    hardware: HardwareCfg = HardwareCfg()
    panic_line: PanicLineCfg = PanicLineCfg()
    fire: FireCfg = FireCfg()
    door: DoorCfg = DoorCfg()
    alarm: AlarmCfg = AlarmCfg()
    security: SecurityCfg = SecurityCfg()
    storage: StorageCfg = StorageCfg()
    homeassistant: HomeAssistantCfg = HomeAssistantCfg()
    log: LogCfg = LogCfg()

    @model_validator(mode="after")
    def _spi_free(self) -> OfficeConfig:
        if self.panic_line.supervision == "off":
            return self
        spi = set(self.panic_line.spi_pins())
        clashes = [f"hardware.{k}: GPIO{getattr(self.hardware, k)} is used by the ADC's SPI bus "
                   f"(panic_line.spi_port {self.panic_line.spi_port})"
                   for k in HardwareCfg.PIN_KEYS
                   if k != "panic_pin" and getattr(self.hardware, k) in spi]
        raise_problems(clashes)
        return self


def load_office_config(path: Path) -> OfficeConfig:
    """Load and validate an office config file (with environment overrides)."""
    return build(OfficeConfig, read_toml(path))
