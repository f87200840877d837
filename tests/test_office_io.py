"""Translations between the machine's alarm record, its persisted form and the wire."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from controller.office.alarm_codec import alarm_payload, decode_alarm, encode_alarm, neighbor_open
from controller.office.machine import AlarmRecord
from controller.protocol.messages import MAX_PAYLOAD_BYTES, Alarm, Location

LOC = Location(site="Jobcenter", building="Haus A", floor="EG", room="101", label="Beratung")
RAISED = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)


def rec(**kw: object) -> AlarmRecord:
    fields: dict[str, object] = {"alarm_id": str(uuid.uuid4()), "raised_at": RAISED}
    fields.update(kw)
    return AlarmRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("alarm", [
    rec(),
    rec(presses=7, test=True),
    rec(state="acknowledged", acknowledged_by="guard-anna",
        acknowledged_at=datetime(2026, 3, 1, 8, 0, 9, tzinfo=UTC)),
])
def test_encode_decode_round_trip(alarm: AlarmRecord) -> None:
    assert decode_alarm(encode_alarm(alarm)) == alarm


def test_no_alarm() -> None:
    assert encode_alarm(None) == ""
    assert decode_alarm("") is None and decode_alarm(None) is None


@pytest.mark.parametrize("text", [
    "not json", "[]", "5", '"text"', "null", "{}", '{"alarm_id": "x"}',
    '{"alarm_id": "x", "raised_at": "yesterday", "presses": 1, "state": "active"}',
    '{"alarm_id": "x", "raised_at": "2026-03-01T08:00:00+00:00", "presses": "many", '
    '"state": "active"}',
])
def test_unreadable_persisted_alarm_is_no_alarm_never_a_crash(text: str) -> None:
    assert decode_alarm(text) is None


def test_unknown_state_decodes_as_active() -> None:
    data = json.loads(encode_alarm(rec()))
    data["state"] = "weird"
    got = decode_alarm(json.dumps(data))
    assert got is not None and got.state == "active"  # never shown as taken care of


def test_alarm_payload_is_the_contract_alarm() -> None:
    alarm = rec(state="acknowledged", presses=2, acknowledged_by="guard-anna",
                acknowledged_at=datetime(2026, 3, 1, 8, 1, tzinfo=UTC))
    payload = alarm_payload(alarm, "eg-101", LOC)
    wire = json.loads(payload)
    assert wire["schema"] == 1 and wire["office"] == "eg-101"
    assert wire["alarm_id"] == alarm.alarm_id and wire["state"] == "acknowledged"
    assert wire["raised_at"] == "2026-03-01T08:00:00.123Z"
    assert wire["location"]["room"] == "101" and wire["presses"] == 2
    assert wire["acknowledged_by"] == "guard-anna" and wire["test"] is False
    assert Alarm.model_validate_json(payload).alarm_id == uuid.UUID(alarm.alarm_id)
    assert alarm_payload(None, "eg-101", LOC) == b""  # resolved: empty retained payload


def test_neighbor_open() -> None:
    real = alarm_payload(rec(), "eg-102", LOC)
    drill = alarm_payload(rec(test=True), "eg-102", LOC)
    assert neighbor_open(real) is True
    assert neighbor_open(drill) is False  # a drill must not send colleagues running
    assert neighbor_open(b"") is False
    assert neighbor_open(b"{not json") is None
    assert neighbor_open(b'{"alarm_id": 1}') is None
    assert neighbor_open(b"\xff\xfe" * 10) is None
    assert neighbor_open(b" " * (MAX_PAYLOAD_BYTES + 1)) is None
