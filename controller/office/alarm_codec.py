"""Small translations between the state machine's values and the wire/storage.

Kept apart from the daemon so that the alarm's retained payload and its
persisted form are tested on their own.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import ValidationError

from controller.office.machine import AlarmRecord
from controller.protocol.messages import MAX_PAYLOAD_BYTES, Alarm, Location


def encode_alarm(alarm: AlarmRecord | None) -> str:
    """The open alarm as JSON for the outbox's meta table ("" when none)."""
    if alarm is None:
        return ""
    return json.dumps({
        "alarm_id": alarm.alarm_id, "raised_at": alarm.raised_at.isoformat(),
        "presses": alarm.presses, "state": alarm.state,
        "acknowledged_by": alarm.acknowledged_by,
        "acknowledged_at": alarm.acknowledged_at.isoformat() if alarm.acknowledged_at else None,
        "test": alarm.test,
    })


def decode_alarm(text: str | None) -> AlarmRecord | None:
    """Inverse of `encode_alarm`; unreadable data means no alarm to restore."""
    if not text:
        return None
    try:
        data = json.loads(text)
        ack_at = data.get("acknowledged_at")
        return AlarmRecord(
            alarm_id=str(data["alarm_id"]), raised_at=datetime.fromisoformat(data["raised_at"]),
            presses=int(data["presses"]),
            state="acknowledged" if data["state"] == "acknowledged" else "active",
            acknowledged_by=data.get("acknowledged_by"),
            acknowledged_at=datetime.fromisoformat(ack_at) if ack_at else None,
            test=bool(data.get("test", False)))
    except (ValueError, KeyError, TypeError, AttributeError):  # AttributeError: not an object
        return None


def alarm_payload(alarm: AlarmRecord | None, office: str, location: Location) -> bytes:
    """The retained alarm topic's payload: Alarm JSON, or empty once resolved."""
    if alarm is None:
        return b""
    return Alarm(alarm_id=alarm.alarm_id, office=office, location=location,
                 state=alarm.state, raised_at=alarm.raised_at, presses=alarm.presses,
                 acknowledged_by=alarm.acknowledged_by, acknowledged_at=alarm.acknowledged_at,
                 test=alarm.test).to_bytes()


def neighbor_open(payload: bytes) -> bool | None:
    """Whether a neighbour's retained alarm payload means a real open alarm.

    Empty means resolved. Drills (test=true) do not light the neighbour LED: a
    drill must not send colleagues running. None means the payload is malformed.
    """
    if not payload:
        return False
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        alarm = Alarm.model_validate_json(payload)
    except ValidationError:
        return None
    return not alarm.test
