"""The published JSON Schemas: up to date, and they accept exactly what the models accept."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator, FormatChecker

from controller.deploy import schemas
from controller.protocol.messages import (
    Alarm,
    Command,
    Escalation,
    Event,
    Location,
    SimOutput,
    State,
)
from controller.protocol.signing import sign_command
from controller.settings import read_toml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "docs" / "schemas"
NOW = datetime(2026, 11, 25, 9, 30, 1, 250000, tzinfo=UTC)
ALARM_ID = uuid.UUID("3f1c2a9e-6a3b-4d1e-9f49-0c7d2b6e8a11")
LOCATION = Location(site="Jobcenter", building="Haus A", floor="EG", room="101",
                    label="Beratung 101")


def validator(name: str) -> Draft202012Validator:
    doc = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(doc)
    return Draft202012Validator(doc, format_checker=FormatChecker())


def errors(name: str, payload: bytes | dict[str, Any]) -> list[str]:
    data = json.loads(payload) if isinstance(payload, bytes) else payload
    return [e.message for e in validator(name).iter_errors(data)]


# ------------------------------------------------------------------ freshness


def test_committed_schemas_are_up_to_date() -> None:
    """Fails whenever a model changed and `python -m controller.deploy.schemas` was not run."""
    proc = subprocess.run([sys.executable, "-m", "controller.deploy.schemas", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_check_reports_missing_stale_and_stray_files(tmp_path: Path) -> None:
    assert len(schemas.check(tmp_path)) == len(schemas.MODELS)  # all missing
    assert schemas.main(["--out", str(tmp_path)]) == 0
    assert schemas.check(tmp_path) == []
    assert schemas.write(tmp_path) == []  # idempotent
    (tmp_path / "state.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "old.schema.json").write_text("{}\n", encoding="utf-8")
    problems = schemas.check(tmp_path)
    assert any("state.schema.json: out of date" in p for p in problems)
    assert any("old.schema.json: not generated" in p for p in problems)
    assert schemas.main(["--check", "--out", str(tmp_path)]) == 1


def test_every_schema_is_valid_json_schema() -> None:
    for name in schemas.MODELS:
        validator(name)


# ------------------------------------------------------- payloads vs schemas


def event(kind: str, **fields: Any) -> bytes:
    return Event(id=uuid.uuid4(), office="eg-101", seq=42, ts=NOW, type=kind,
                 **fields).to_bytes()  # type: ignore[arg-type]


VALID_EVENTS = [
    event("controller_started"),
    event("panic", alarm_id=ALARM_ID),
    event("panic", alarm_id=ALARM_ID, test=True, nonce="a" * 22),
    event("panic_repeat", alarm_id=ALARM_ID, presses=3),
    event("alarm_acknowledged", alarm_id=ALARM_ID, by="wache-1", nonce="b" * 22),
    event("door_released", source="button", seconds=5),
    event("command_rejected", reason="bad_signature", cmd="release", nonce="c" * 22),
]


@pytest.mark.parametrize("payload", VALID_EVENTS)
def test_real_events_validate(payload: bytes) -> None:
    assert errors("event", payload) == []


def test_event_type_requirements_are_in_the_schema() -> None:
    base = json.loads(event("controller_started"))
    assert errors("event", {**base, "type": "panic"})  # alarm_id missing
    assert errors("event", {**base, "type": "panic_repeat", "alarm_id": str(ALARM_ID)})
    assert errors("event", {**base, "type": "door_released", "source": "button"})
    assert errors("event", {**base, "type": "command_rejected"})
    assert errors("event", {**base, "type": "door_opened"}) == []
    assert schemas.event_requirements()["panic_repeat"] == ["alarm_id", "presses"]


@pytest.mark.parametrize(("change", "why"), [
    ({"extra": 1}, "unknown field"),
    ({"office": "EG 101"}, "office id pattern"),
    ({"seq": 0}, "seq starts at 1"),
    ({"type": "fire"}, "unknown type"),
    ({"id": "not-a-uuid"}, "uuid format"),
    ({"schema": 2}, "schema version"),
])
def test_bad_events_are_rejected(change: dict[str, Any], why: str) -> None:
    base = json.loads(event("controller_started"))
    assert errors("event", {**base, **change}), why


def test_state_alarm_escalation_sim_output_validate() -> None:
    state = State(office="eg-101", ts=NOW, seq=42, door="locked", contact="closed",
                  alarm="active", alarm_id=ALARM_ID, faults=["panic_line_fault"],
                  version="0.1.0", uptime_s=12.5, outbox_pending=0, location=LOCATION)
    assert errors("state", state.to_bytes()) == []
    assert errors("state", {**json.loads(state.to_bytes()), "door": "open"})
    alarm = Alarm(alarm_id=ALARM_ID, office="eg-101", location=LOCATION, state="acknowledged",
                  raised_at=NOW, presses=2, acknowledged_by="wache-1", acknowledged_at=NOW)
    assert errors("alarm", alarm.to_bytes()) == []
    assert errors("alarm", {**json.loads(alarm.to_bytes()), "presses": 0})
    esc = Escalation(alarm_id=ALARM_ID, office="eg-101", location=LOCATION, raised_at=NOW,
                     escalated_at=NOW)
    assert errors("escalation", esc.to_bytes()) == []
    sim = SimOutput(relay=False, ack_led=True, neighbor_led=False)
    assert errors("sim-output", sim.to_bytes()) == []
    assert errors("sim-output", {"relay": "yes", "ack_led": True, "neighbor_led": False})


def test_signed_command_validates() -> None:
    cmd = Command(cmd="ack", office="eg-101", alarm_id=ALARM_ID, by="wache-1",
                  issued_at=NOW, nonce="Zk3v9Qm2L8xW1bN4cR7tYa")
    signed = sign_command(cmd, Ed25519PrivateKey.generate())
    assert errors("command", signed.to_bytes()) == []
    assert errors("command", {**json.loads(signed.to_bytes()), "nonce": "short"})
    assert errors("command", {**json.loads(signed.to_bytes()), "cmd": "open_door"})


# ----------------------------------------------------------- configs vs schemas


def test_office_config_from_toml_validates(tmp_path: Path) -> None:
    path = tmp_path / "office.toml"
    path.write_text("""
[office]
id = "eg-101"
label = "Beratung 101"
neighbors = ["eg-102"]

[mqtt]
port = 1884
protocol = "3.1.1"

[hardware]
pin_factory = "mock"
door_pin = 23

[door]
release_s = 5

[homeassistant]
discovery = true
""", encoding="utf-8")
    assert errors("office-config", read_toml(path)) == []
    bad = read_toml(path)
    bad["hardware"]["panic_pni"] = 17
    assert errors("office-config", bad)  # unknown keys are errors, as in the loader
    assert errors("office-config", {"mqtt": {}})  # [office] is required


def test_guard_config_validates() -> None:
    data = {"guard": {"id": "guard-1", "listen_port": 8080},
            "users": [{"name": "wache-1", "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x"}],
            "offices": [{"id": "eg-101", "label": "Beratung 101"}],
            "escalation": {"after_s": 30}}
    assert errors("guard-config", data) == []
    assert errors("guard-config", {**data, "users": [{"name": "x", "password_hash": "plain"}]})
