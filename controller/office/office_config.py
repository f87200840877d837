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
    Section,
    Settings,
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

    PIN_KEYS: ClassVar[tuple[str, ...]] = (
        "panic_pin", "release_pin", "relay_pin", "door_pin", "rex_pin", "ack_led_pin",
        "neighbor_led_pin")

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


class OfficeConfig(Settings):
    """The whole office controller configuration."""

    office: OfficeCfg
    mqtt: MqttCfg = MqttCfg()
    hardware: HardwareCfg = HardwareCfg()
    door: DoorCfg = DoorCfg()
    alarm: AlarmCfg = AlarmCfg()
    security: SecurityCfg = SecurityCfg()
    storage: StorageCfg = StorageCfg()
    homeassistant: HomeAssistantCfg = HomeAssistantCfg()
    log: LogCfg = LogCfg()


def load_office_config(path: Path) -> OfficeConfig:
    """Load and validate an office config file (with environment overrides)."""
    return build(OfficeConfig, read_toml(path))
