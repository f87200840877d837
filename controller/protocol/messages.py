"""The wire protocol: every topic string and every payload model, in one place.

Shared by the office controller, the guard station, the demo and the tools, so
that both ends of the wire can never disagree. Payloads are frozen pydantic
models with ``extra="forbid"``: a field we do not know is an error, never
silently ignored. See docs/mqtt-api.md for the guarantees around them.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
)

from controller.protocol.names import INPUT_NAMES, CommandName

SCHEMA: Literal[1] = 1
OFFICE_ID_PATTERN = r"^[a-z0-9-]{1,32}$"
MAX_PAYLOAD_BYTES = 64 * 1024  # bigger than any legitimate message; larger ones are dropped unread
# numeric bounds: every number on the wire is finite and bounded, so that no office can
# put NaN, Infinity or an integer SQLite or JavaScript cannot hold into the guard's views
MAX_SEQ = 2**53  # exact in a JavaScript number (the console) and in SQLite's INTEGER
MAX_COUNT = 2**31
MAX_PRESSES = 1_000_000
MAX_SECONDS = 24 * 3600.0  # door release, heartbeat
MAX_UPTIME_S = 20 * 365 * 86400.0

OfficeId = Annotated[str, StringConstraints(pattern=OFFICE_ID_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=200)]


def format_ts(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as the contract asks."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    """Wall-clock now, timezone-aware (for adapters; the core gets time passed in)."""
    return datetime.now(UTC)


Timestamp = Annotated[AwareDatetime, PlainSerializer(format_ts, return_type=str)]


class Wire(BaseModel):
    """Base of every payload: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        """Serialise for MQTT (compact JSON, UTF-8)."""
        return self.model_dump_json(exclude_none=True).encode()


# --------------------------------------------------------------------- events

EventType = Literal[
    "controller_started", "panic", "panic_repeat", "alarm_acknowledged", "alarm_resolved",
    "door_released", "door_locked", "door_opened", "door_closed", "door_held_open",
    "door_forced", "release_blocked", "panic_line_fault", "panic_line_ok",
    "command_rejected", "lockdown_on", "lockdown_off", "storage_fault", "storage_ok",
    "fire_alarm_on", "fire_alarm_off", "walk_test_due",
]
ALARM_EVENT_TYPES: frozenset[str] = frozenset(
    {"panic", "panic_repeat", "alarm_acknowledged", "alarm_resolved", "door_forced",
     "panic_line_fault"}
)
"""Events that are never dropped from a full outbox."""


class Event(Wire):
    """One thing that happened in an office; `id` dedupes, `seq` finds gaps.

    Type-specific fields are optional here and their presence is checked by
    `validate_event_fields`, which keeps one flat, easily documented schema.
    """

    schema_: Literal[1] = Field(SCHEMA, alias="schema")
    id: uuid.UUID
    office: OfficeId
    seq: int = Field(ge=1, le=MAX_SEQ)
    ts: Timestamp
    type: EventType
    test: bool = False
    alarm_id: uuid.UUID | None = None
    presses: int | None = Field(None, ge=1, le=MAX_PRESSES)
    by: ShortText | None = None
    source: Literal["button", "remote", "fire"] | None = None
    seconds: float | None = Field(None, ge=0, le=MAX_UPTIME_S)  # walk_test_due: days
    reason: ShortText | None = None
    cmd: ShortText | None = None
    dropped: int | None = Field(None, ge=0, le=MAX_SEQ)
    nonce: Annotated[str, StringConstraints(max_length=64)] | None = None
    void_from: int | None = Field(None, ge=1, le=MAX_SEQ)
    void_to: int | None = Field(None, ge=1, le=MAX_SEQ)
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        """Serialise with the contract's field name `schema`."""
        return self.model_dump_json(exclude_none=True, by_alias=True).encode()


_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "panic": ("alarm_id",),
    "panic_repeat": ("alarm_id", "presses"),
    "alarm_acknowledged": ("alarm_id", "by"),
    "alarm_resolved": ("alarm_id", "by"),
    "door_released": ("source", "seconds"),
    "command_rejected": ("reason",),
}


def validate_event_fields(event: Event) -> list[str]:
    """Problems with the type-specific fields of an event (empty when fine)."""
    return [
        f"{name}: required for type {event.type}"
        for name in _REQUIRED_FIELDS.get(event.type, ())
        if getattr(event, name) is None
    ]


# ---------------------------------------------------------------- state/alarm


class Location(Wire):
    """Where the office is, as the guard needs to find it."""

    site: ShortText = ""
    building: ShortText = ""
    floor: ShortText = ""
    room: ShortText = ""
    label: ShortText = ""


class State(Wire):
    """The office's retained state: published on every change and every heartbeat."""

    schema_: Literal[1] = Field(SCHEMA, alias="schema")
    office: OfficeId
    ts: Timestamp
    seq: int = Field(ge=0, le=MAX_SEQ)
    door: Literal["locked", "released"]
    contact: Literal["open", "closed", "unknown"]
    alarm: Literal["none", "active", "acknowledged"]
    alarm_id: uuid.UUID | None = None
    alarm_test: bool = False
    lockdown: bool = False
    panic_input: Literal["idle", "active", "short", "cut", "tamper"] = "idle"
    fire_alarm: bool = False
    faults: list[ShortText] = Field(default_factory=list, max_length=32)
    version: ShortText
    uptime_s: float = Field(ge=0, le=MAX_UPTIME_S)
    outbox_pending: int = Field(ge=0, le=MAX_COUNT)
    outbox_dropped: int = Field(0, ge=0, le=MAX_SEQ)
    heartbeat_s: float = Field(1.0, gt=0, le=MAX_SECONDS)
    location: Location | None = None
    # the office's own network facts for the installer (#15); absent from older offices
    address: Annotated[str, StringConstraints(max_length=64)] | None = None
    broker: ShortText | None = None
    connected_since: Timestamp | None = None
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        """Serialise with the contract's field name `schema`."""
        return self.model_dump_json(exclude_none=True, by_alias=True).encode()


class Alarm(Wire):
    """The retained alarm of an office while it is open (empty payload once resolved)."""

    schema_: Literal[1] = Field(SCHEMA, alias="schema")
    alarm_id: uuid.UUID
    office: OfficeId
    location: Location
    state: Literal["active", "acknowledged"]
    raised_at: Timestamp
    presses: int = Field(ge=1, le=MAX_PRESSES)
    acknowledged_by: ShortText | None = None
    acknowledged_at: Timestamp | None = None
    test: bool = False
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        """Serialise with the contract's field name `schema`."""
        return self.model_dump_json(exclude_none=True, by_alias=True).encode()


# ------------------------------------------------------------------- commands



class Command(Wire):
    """A guard station's order to one office; `sig` covers every other field."""

    schema_: Literal[1] = Field(SCHEMA, alias="schema")
    cmd: CommandName
    office: OfficeId
    alarm_id: uuid.UUID | None = None
    from_seq: int | None = Field(None, ge=1, le=MAX_SEQ)
    to_seq: int | None = Field(None, ge=1, le=MAX_SEQ)
    by: ShortText
    issued_at: Timestamp
    nonce: Annotated[str, StringConstraints(min_length=16, max_length=64,
                                            pattern=r"^[A-Za-z0-9_-]+$")]
    sig: Annotated[str, StringConstraints(max_length=200)] | None = None
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)

    def signed_fields(self) -> dict[str, Any]:
        """Every field except `sig`, as it goes on the wire (the signed content)."""
        data = self.model_dump(mode="json", exclude_none=True, by_alias=True)
        data.pop("sig", None)
        return data

    def to_bytes(self) -> bytes:
        """Serialise with the contract's field name `schema`."""
        return self.model_dump_json(exclude_none=True, by_alias=True).encode()

    def signed_parts(self) -> tuple[bytes, bytes] | str:
        """(signed bytes, signature), or why there is nothing to verify.

        One rule for both verifiers (the guard's `cryptography` one and the office's
        libsodium one): what a signature covers and how `sig` is decoded.
        """
        if not self.sig:
            return "unsigned"
        try:
            signature = base64.b64decode(self.sig, validate=True)
        except (binascii.Error, ValueError):
            return "bad_signature"
        return canonical_json(self.signed_fields()), signature


def canonical_json(data: dict[str, Any]) -> bytes:
    """Keys sorted, no whitespace, UTF-8: the exact bytes a signature covers."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class SimOutput(Wire):
    """What the simulated outputs show (mock pins only)."""

    relay: bool
    ack_led: bool
    neighbor_led: bool


class Escalation(Wire):
    """Published by the guard station when nobody acknowledged an alarm in time.

    Schema 2 added `kind`, `fault` (fault alarms escalate too) and `level`
    (the escalation step); schema 1 payloads still parse.
    """

    schema_: Literal[1, 2] = Field(2, alias="schema")
    alarm_id: uuid.UUID
    office: OfficeId
    location: Location
    raised_at: Timestamp
    escalated_at: Timestamp
    test: bool = False
    kind: Literal["panic", "drill", "fault"] = "panic"
    fault: ShortText | None = None
    level: int = Field(1, ge=1, le=100)
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)

    def to_bytes(self) -> bytes:
        """Serialise with the contract's field name `schema`."""
        return self.model_dump_json(exclude_none=True, by_alias=True).encode()


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
SIM_INPUTS = INPUT_NAMES
SIM_PAYLOADS = {"panic": ("press", "release"), "release": ("press", "release"),
                "rex": ("press", "release"), "door": ("open", "close"),
                "fire": ("alarm", "clear")}
AVAILABILITY_VALUES = (b"online", b"offline")


# --------------------------------------------------------------------- topics


class Topics:
    """Builds and parses every topic under one prefix; no f-string topics elsewhere."""

    def __init__(self, prefix: str) -> None:
        """Keep the prefix (``mqtt.prefix``), without a trailing slash."""
        self.prefix = prefix.rstrip("/")

    def _office(self, office: str, leaf: str) -> str:
        return f"{self.prefix}/office/{office}/{leaf}"

    def availability(self, office: str) -> str:
        """Retained `online`/`offline`, also the office's last will."""
        return self._office(office, "availability")

    def state(self, office: str) -> str:
        """Retained State JSON."""
        return self._office(office, "state")

    def event(self, office: str) -> str:
        """Event JSON, QoS 1, not retained."""
        return self._office(office, "event")

    def alarm(self, office: str) -> str:
        """Retained Alarm JSON while open, empty once resolved."""
        return self._office(office, "alarm")

    def cmd(self, office: str) -> str:
        """Signed Command JSON from the guard station; never retained."""
        return self._office(office, "cmd")

    def sim_input(self, office: str, name: str) -> str:
        """Simulated input (mock pins only)."""
        return self._office(office, f"sim/input/{name}")

    def sim_output(self, office: str) -> str:
        """Retained simulated outputs (mock pins only)."""
        return self._office(office, "sim/output")

    def guard_availability(self, guard_id: str) -> str:
        """Retained `online`/`offline` of a guard station."""
        return f"{self.prefix}/guard/{guard_id}/availability"

    def guard_escalation(self, guard_id: str) -> str:
        """Escalations published by a guard station."""
        return f"{self.prefix}/guard/{guard_id}/escalation"

    def all_offices(self, leaf: str) -> str:
        """Wildcard subscription for one leaf of every office."""
        return f"{self.prefix}/office/+/{leaf}"

    def parse_office(self, topic: str) -> tuple[str, str] | None:
        """(office id, leaf) for an office topic under our prefix, else None."""
        head = f"{self.prefix}/office/"
        if not topic.startswith(head):
            return None
        office, _, leaf = topic[len(head):].partition("/")
        if not leaf or not _valid_office_id(office):
            return None
        return office, leaf


def _valid_office_id(value: str) -> bool:
    return 1 <= len(value) <= 32 and all(c.islower() or c.isdigit() or c == "-" for c in value) \
        and value.isascii()


def new_id() -> uuid.UUID:
    """A fresh random UUID for events, alarms and nonces."""
    return uuid.uuid4()
