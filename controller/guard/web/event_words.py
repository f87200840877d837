"""Event types in words for the event log and an office's page (the code stays beside them).

The types are the wire protocol's codes (`door_opened`); a guard reads "Tür geöffnet".
The page gets the words of its language as JSON, so its script words live rows the same.
"""

from __future__ import annotations

from typing import get_args

from controller.guard.i18n import N_, gettext
from controller.protocol.messages import EventType

EVENT_WORDS: dict[str, str] = {
    "controller_started": N_("controller started"), "panic": N_("panic button pressed"),
    "panic_repeat": N_("pressed again"), "alarm_acknowledged": N_("alarm acknowledged"),
    "alarm_resolved": N_("alarm resolved"), "door_released": N_("door released"),
    "door_locked": N_("door locked"), "door_opened": N_("door opened"),
    "door_closed": N_("door closed"), "door_held_open": N_("door held open"),
    "door_forced": N_("door forced open"), "release_blocked": N_("release blocked (lockdown)"),
    "panic_line_fault": N_("panic line fault"), "panic_line_ok": N_("panic line OK again"),
    "command_rejected": N_("command rejected"), "lockdown_on": N_("lockdown on"),
    "lockdown_off": N_("lockdown off"), "storage_fault": N_("storage fault"),
    "storage_ok": N_("storage OK again"), "fire_alarm_on": N_("fire alarm on"),
    "fire_alarm_off": N_("fire alarm off"), "walk_test_due": N_("walk test due"),
}
MISSING = set(get_args(EventType)) - set(EVENT_WORDS)  # a new type without words: a test fails


def event_words() -> dict[str, str]:
    """`{type: words}` in the current language."""
    return {code: gettext(words) for code, words in EVENT_WORDS.items()}
