"""The names both programs must agree on, once: inputs, outputs, commands, location, limits.

Standard library only, so that even the pure state machine (through its
inputs module) can use them without pulling in pydantic or anything else.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

InputName = Literal["panic", "release", "door", "rex", "fire"]
"""The office's inputs; also the NAME of `P/office/ID/sim/input/NAME` (`fire`: optional
input from the building's fire panel, issue 16)."""
INPUT_NAMES: Final[tuple[str, ...]] = get_args(InputName)

OutputName = Literal["relay", "ack_led", "neighbor_led"]
"""The office's outputs; also the keys of `P/office/ID/sim/output`."""
OUTPUT_NAMES: Final[tuple[str, ...]] = get_args(OutputName)

OfficeCommand = Literal["ack", "resolve", "test", "lockdown", "lift_lockdown", "release"]
"""Commands that reach the state machine."""
CommandName = Literal["ack", "resolve", "test", "lockdown", "lift_lockdown", "release", "resend"]
"""Every `cmd` of a signed Command; `resend` is served by the outbox, not the machine."""
COMMAND_NAMES: Final[tuple[str, ...]] = get_args(CommandName)
LineCondition = Literal["ok", "short", "cut", "tamper"]
"""What a supervised (end-of-line resistor) panic line reads besides idle and pressed."""
LINE_CONDITIONS: Final[tuple[str, ...]] = get_args(LineCondition)
ALARM_COMMANDS: Final[tuple[str, ...]] = ("ack", "resolve")
"""Commands that name an `alarm_id`."""

LOCATION_FIELDS: Final[tuple[str, ...]] = ("site", "building", "floor", "room", "label")
"""Where an office is, in the order a guard reads it."""

MAX_RESEND: Final = 10_000
"""Most events one `resend` command asks for (the guard) and serves (the office)."""

STATES_ACCOUNT_SUFFIX: Final = "-states"
"""A guard station's second MQTT account (`<guard user>-states`): its share of the offices'
states in an ingest group (issue 19). With `use_username_as_clientid` the broker allows one
connection per account, so the shared-subscription session needs an account of its own."""
