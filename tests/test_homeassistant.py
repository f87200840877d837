"""Home Assistant discovery payloads: shape accepted by Home Assistant, templates, lifecycle.

Home Assistant is not installed here; its device-discovery rules that matter are
restated below from home-assistant/core (components/mqtt/schemas.py,
discovery.py, binary_sensor.py, event.py) and checked against our payloads. The
value templates are rendered with Jinja's immutable sandbox (what Home Assistant
uses) over real State/Event payloads built from controller.protocol.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from controller.office import homeassistant as ha
from controller.office.office_config import OfficeConfig
from controller.protocol.messages import Event, Location, State, Topics
from controller.settings import build

# Home Assistant: discovery/TOPIC_MATCHER (after the prefix) and the root keys that
# DEVICE_DISCOVERY_SCHEMA accepts (it does not allow extra keys at the root).
TOPIC_MATCHER = re.compile(r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)"
                           r"?(?P<object_id>[a-zA-Z0-9_-]+)/config")
ROOT_KEYS = {"dev", "device", "o", "origin", "cmps", "components", "availability",
             "availability_topic", "avty", "avty_t", "availability_mode", "availability_template",
             "payload_available", "payload_not_available", "state_topic", "command_topic",
             "qos", "encoding", "message_expiry_interval"}
DEVICE_KEYS = {"ids", "cns", "name", "mf", "mdl", "mdl_id", "sw", "hw", "sa", "cu", "sn",
               "via_device"}
ORIGIN_KEYS = {"name", "sw", "url"}
# Per platform: keys Home Assistant reads. Its platform discovery schemas use
# REMOVE_EXTRA, so a misspelt key would be silently dropped: we insist on known keys.
COMMON = {"p", "unique_id", "name", "qos", "encoding", "availability_topic", "availability",
          "availability_mode", "availability_template", "payload_available",
          "payload_not_available", "entity_category", "icon", "json_attributes_topic",
          "json_attributes_template", "enabled_by_default", "entity_picture",
          "default_entity_id", "state_topic", "value_template"}
PLATFORM_KEYS = {
    "binary_sensor": COMMON | {"device_class", "expire_after", "force_update", "off_delay",
                               "payload_on", "payload_off"},
    "event": COMMON | {"device_class", "event_types"},
}
BINARY_SENSOR_CLASSES = {"safety", "door", "lock", "problem", "connectivity"}
EVENT_CLASSES = {"button", "doorbell", "motion"}


def office_cfg(**hardware: Any) -> OfficeConfig:
    data: dict[str, Any] = {
        "office": {"id": "eg-101", "site": "Jobcenter", "room": "101", "label": "Beratung 101"},
        "hardware": {"pin_factory": "mock", **hardware},
        "homeassistant": {"discovery": True},
    }
    return build(OfficeConfig, data)


def with_changes(cfg: OfficeConfig, section: str, **changes: Any) -> OfficeConfig:
    return cfg.model_copy(update={section: getattr(cfg, section).model_copy(update=changes)})


def decode(cfg: OfficeConfig, topics: Topics | None = None) -> tuple[str, dict[str, Any]]:
    messages = ha.discovery_messages(cfg, topics or Topics("officesec"))
    assert len(messages) == 1
    topic, payload = messages[0]
    return topic, json.loads(payload)


def check_accepted_by_home_assistant(topic: str, doc: dict[str, Any], prefix: str) -> None:
    """The rules of Home Assistant's device discovery that our payload must meet."""
    assert topic.startswith(prefix + "/")
    match = TOPIC_MATCHER.fullmatch(topic[len(prefix) + 1:])
    assert match and match["component"] == "device"
    assert set(doc) <= ROOT_KEYS, set(doc) - ROOT_KEYS
    assert doc["dev"]["ids"] and set(doc["dev"]) <= DEVICE_KEYS
    assert doc["o"]["name"] and set(doc["o"]) <= ORIGIN_KEYS
    unique_ids = [c["unique_id"] for c in doc["cmps"].values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for key, comp in doc["cmps"].items():
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", key)
        platform = comp["p"]
        assert set(comp) <= PLATFORM_KEYS[platform], (key, set(comp) - PLATFORM_KEYS[platform])
        assert comp["unique_id"].startswith(match["object_id"] + "_")
        assert comp["state_topic"]
        assert comp["qos"] == 1
        if platform == "binary_sensor" and "device_class" in comp:
            assert comp["device_class"] in BINARY_SENSOR_CLASSES
        if platform == "event":
            assert comp["event_types"] and all(isinstance(t, str) for t in comp["event_types"])
            assert comp.get("device_class", "button") in EVENT_CLASSES


# ------------------------------------------------------------------- payloads


def test_full_office_announces_every_entity() -> None:
    cfg = office_cfg()
    topic, doc = decode(cfg)
    assert topic == "homeassistant/device/officesec_eg-101/config"
    check_accepted_by_home_assistant(topic, doc, "homeassistant")
    cmps = doc["cmps"]
    assert set(cmps) == {"panic", "strike", "faults", "connectivity", "buttons", "door",
                         "door_alerts", "help_acknowledged"}
    assert cmps["panic"]["device_class"] == "safety"
    assert cmps["door"]["device_class"] == "door"
    assert cmps["strike"]["device_class"] == "lock"
    assert (cmps["faults"]["device_class"], cmps["faults"]["entity_category"]) == (
        "problem", "diagnostic")
    assert cmps["connectivity"]["device_class"] == "connectivity"
    assert cmps["buttons"]["p"] == "event"
    state_t, avail_t = "officesec/office/eg-101/state", "officesec/office/eg-101/availability"
    for key in ("panic", "strike", "faults", "door", "help_acknowledged"):
        assert cmps[key]["state_topic"] == state_t
        assert cmps[key]["availability_topic"] == avail_t
        assert cmps[key]["expire_after"] == 10
    assert cmps["buttons"]["state_topic"] == "officesec/office/eg-101/event"
    assert cmps["connectivity"]["state_topic"] == avail_t
    assert "availability_topic" not in cmps["connectivity"]  # offline reads "off"
    assert doc["dev"]["ids"] == ["officesec_eg-101"]
    assert doc["dev"]["name"] == "Beratung 101"
    assert doc["dev"]["sa"] == "101"
    assert doc["o"]["name"] == "officesec"


def test_optional_pins_left_out_drop_their_entities() -> None:
    cfg = office_cfg(door_pin=None, rex_pin=None, ack_led_pin=None, neighbor_led_pin=None)
    topic, doc = decode(cfg)
    check_accepted_by_home_assistant(topic, doc, "homeassistant")
    assert set(doc["cmps"]) == {"panic", "strike", "faults", "connectivity", "buttons"}


@pytest.mark.parametrize("missing", ["door_pin", "rex_pin", "ack_led_pin"])
def test_each_optional_pin_alone(missing: str) -> None:
    topic, doc = decode(office_cfg(**{missing: None}))
    check_accepted_by_home_assistant(topic, doc, "homeassistant")
    expected = {"door_pin": {"door", "door_alerts"}, "rex_pin": set(),
                "ack_led_pin": {"help_acknowledged"}}[missing]
    full = set(decode(office_cfg())[1]["cmps"])
    assert set(doc["cmps"]) == full - expected


@pytest.mark.parametrize("allow", [False, True])
def test_no_entity_can_command_the_office(allow: bool) -> None:
    cfg = with_changes(office_cfg(), "security", allow_remote_release=allow)
    _topic, doc = decode(cfg)
    text = json.dumps(doc)
    assert "command_topic" not in text and "cmd_t" not in text and "/cmd" not in text
    assert {c["p"] for c in doc["cmps"].values()} == {"binary_sensor", "event"}
    # the release permission changes nothing Home Assistant can see or do
    assert doc == decode(with_changes(cfg, "security", allow_remote_release=not allow))[1]


def test_prefixes_and_heartbeat_are_honoured() -> None:
    cfg = with_changes(office_cfg(), "homeassistant", prefix="ha-test")
    cfg = with_changes(cfg, "alarm", heartbeat_s=7)
    topic, doc = decode(cfg, Topics("site-a/sec"))
    assert topic == "ha-test/device/officesec_eg-101/config"
    check_accepted_by_home_assistant(topic, doc, "ha-test")
    assert doc["cmps"]["panic"]["state_topic"] == "site-a/sec/office/eg-101/state"
    assert doc["cmps"]["panic"]["expire_after"] == 21
    assert ha.status_topic(cfg) == "ha-test/status"


def test_payload_is_stable_json() -> None:
    cfg = office_cfg()
    assert ha.discovery_messages(cfg, Topics("officesec")) == ha.discovery_messages(
        cfg, Topics("officesec"))


# ------------------------------------------------------------------ lifecycle


def test_discovery_off_removes_and_announces_nothing() -> None:
    cfg = with_changes(office_cfg(), "homeassistant", discovery=False)
    assert ha.discovery_messages(cfg, Topics("officesec")) == []
    assert ha.removal_messages(cfg) == [("homeassistant/device/officesec_eg-101/config", b"")]


def test_discovery_on_sends_no_removal() -> None:
    assert ha.removal_messages(office_cfg()) == []


def test_reannounce_only_on_home_assistant_online() -> None:
    cfg = office_cfg()
    assert ha.should_reannounce(cfg, "homeassistant/status", b"online")
    assert ha.should_reannounce(cfg, "homeassistant/status", b"online\n")
    assert not ha.should_reannounce(cfg, "homeassistant/status", b"offline")
    assert not ha.should_reannounce(cfg, "homeassistant/status", b"\xff\xfe")
    assert not ha.should_reannounce(cfg, "other/status", b"online")
    off = with_changes(cfg, "homeassistant", discovery=False)
    assert not ha.should_reannounce(off, "homeassistant/status", b"online")


# ------------------------------------------------------------------ templates

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CLOCK = [NOW]  # what Home Assistant's now() returns
ENV = ImmutableSandboxedEnvironment()
ENV.filters["to_json"] = json.dumps
ENV.globals["now"] = lambda: CLOCK[0]
ENV.globals["as_datetime"] = datetime.fromisoformat


def render(template: str, payload: bytes) -> str:
    """Like Home Assistant's render_with_possible_json_value (stripped text)."""
    return ENV.from_string(template).render(value=payload.decode(),
                                            value_json=json.loads(payload)).strip()


def state(**fields: Any) -> bytes:
    base: dict[str, Any] = {"office": "eg-101", "ts": NOW, "seq": 3, "door": "locked",
                            "contact": "closed", "alarm": "none", "version": "0.1.0",
                            "uptime_s": 5, "outbox_pending": 0, "location": Location()}
    return State(**{**base, **fields}).to_bytes()


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    CLOCK[0] = NOW
    yield
    CLOCK[0] = NOW


def event(kind: str, **fields: Any) -> bytes:
    return Event(id=uuid.uuid4(), office="eg-101", seq=9, ts=NOW, type=kind,
                 **fields).to_bytes()  # type: ignore[arg-type]


def cmps() -> dict[str, Any]:
    return decode(office_cfg())[1]["cmps"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("alarm", "expected"), [("none", "OFF"), ("active", "ON"),
                                                 ("acknowledged", "ON")])
def test_panic_template(alarm: str, expected: str) -> None:
    alarm_id = None if alarm == "none" else uuid.uuid4()
    comp = cmps()["panic"]
    assert render(comp["value_template"], state(alarm=alarm, alarm_id=alarm_id)) == expected
    attrs = json.loads(render(comp["json_attributes_template"],
                              state(alarm=alarm, alarm_id=alarm_id, alarm_test=True)))
    assert attrs == {"alarm": alarm, "alarm_id": alarm_id and str(alarm_id), "test": True}
    ack = cmps()["help_acknowledged"]["value_template"]
    assert render(ack, state(alarm=alarm, alarm_id=alarm_id)) == (
        "ON" if alarm == "acknowledged" else "OFF")


@pytest.mark.parametrize(("contact", "expected"), [("open", "ON"), ("closed", "OFF"),
                                                   ("unknown", "None")])
def test_door_contact_template(contact: str, expected: str) -> None:
    assert render(cmps()["door"]["value_template"], state(contact=contact)) == expected


@pytest.mark.parametrize(("door", "expected"), [("locked", "OFF"), ("released", "ON")])
def test_strike_template(door: str, expected: str) -> None:
    assert render(cmps()["strike"]["value_template"], state(door=door)) == expected


def test_faults_template() -> None:
    comp = cmps()["faults"]
    assert render(comp["value_template"], state()) == "OFF"
    faulty = state(faults=["panic_line_fault", "storage_fault"])
    assert render(comp["value_template"], faulty) == "ON"
    assert json.loads(render(comp["json_attributes_template"], faulty)) == {
        "faults": ["panic_line_fault", "storage_fault"]}


def test_button_event_template() -> None:
    tpl = cmps()["buttons"]["value_template"]
    alarm_id = uuid.uuid4()
    first = json.loads(render(tpl, event("panic", alarm_id=alarm_id)))
    assert first == {"event_type": "panic", "alarm_id": str(alarm_id), "presses": 1,
                     "test": False, "seq": 9}
    again = json.loads(render(tpl, event("panic_repeat", alarm_id=alarm_id, presses=3)))
    assert (again["event_type"], again["presses"]) == ("panic_repeat", 3)
    release = json.loads(render(tpl, event("door_released", source="button", seconds=5)))
    assert release == {"event_type": "release_button", "seconds": 5.0, "seq": 9}
    assert {first["event_type"], again["event_type"], release["event_type"]} == set(
        cmps()["buttons"]["event_types"])
    # everything else renders empty, which Home Assistant ignores without a warning
    assert render(tpl, event("door_released", source="remote", seconds=5,
                             nonce="n" * 16)) == ""
    assert render(tpl, event("door_opened")) == ""
    assert render(tpl, event("controller_started")) == ""


def test_door_alert_event_template() -> None:
    tpl = cmps()["door_alerts"]["value_template"]
    assert json.loads(render(tpl, event("door_forced")))["event_type"] == "door_forced"
    assert json.loads(render(tpl, event("door_held_open")))["event_type"] == "door_held_open"
    assert render(tpl, event("door_opened")) == ""
    assert render(tpl, event("panic", alarm_id=uuid.uuid4())) == ""


@pytest.mark.parametrize("component", ["buttons", "door_alerts"])
def test_old_events_do_not_fire(component: str) -> None:
    """An outbox replay or a `resend` of old events must not look like a press now."""
    tpl = cmps()[component]["value_template"]
    payload = event("panic", alarm_id=uuid.uuid4()) if component == "buttons" else event(
        "door_forced")
    CLOCK[0] = NOW + timedelta(seconds=ha.EVENT_MAX_AGE_S - 1)
    assert render(tpl, payload) != ""
    CLOCK[0] = NOW + timedelta(seconds=ha.EVENT_MAX_AGE_S + 1)
    assert render(tpl, payload) == ""
    CLOCK[0] = NOW - timedelta(seconds=5)  # office clock a little ahead: still shown
    assert render(tpl, payload) != ""
