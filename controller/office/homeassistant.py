"""Home Assistant MQTT discovery: one device-based config message per office.

Pure functions only (no paho, no clock): the daemon publishes what they return,
retained and at QoS 1, on every connect and whenever Home Assistant announces
itself on its status topic. Every entity reads the office's own topics (State
JSON, Event JSON, availability) through value templates, so Home Assistant
needs no hand-written YAML and the office publishes nothing extra for it.

Read-only on purpose: no entity has a command topic. Every command to an office
must carry the guard station's Ed25519 signature, which Home Assistant cannot
produce, so an unlock entity could only ever be rejected (see
docs/homeassistant.md). The format follows Home Assistant's device discovery
schema (``dev``, ``o``, ``cmps`` with ``p`` per component, ``unique_id`` per
component; unknown root keys are rejected by Home Assistant, so the root holds
only ``dev``, ``o`` and ``cmps``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from controller import __version__
from controller.office.office_config import OfficeConfig
from controller.protocol.messages import Topics

ORIGIN_NAME = "officesec"
MANUFACTURER = "officesec"
MODEL = "Office controller"
ONLINE = b"online"

Message = tuple[str, bytes]

# Value templates over the State JSON (contract §4). Binary sensors compare the
# rendered text with their payload_on/payload_off ("ON"/"OFF"); "None" = unknown.
_TPL_PANIC = "{{ 'ON' if value_json.alarm in ['active', 'acknowledged'] else 'OFF' }}"
_TPL_PANIC_ATTRS = ("{{ {'alarm': value_json.alarm, 'alarm_id': value_json.get('alarm_id'), "
                    "'test': value_json.get('alarm_test', false)} | to_json }}")
_TPL_CONTACT = "{{ {'open': 'ON', 'closed': 'OFF'}.get(value_json.contact, 'None') }}"
_TPL_STRIKE = "{{ 'ON' if value_json.door == 'released' else 'OFF' }}"
_TPL_FAULTS = "{{ 'ON' if (value_json.faults | default([]) | length) > 0 else 'OFF' }}"
_TPL_FAULT_ATTRS = "{{ {'faults': value_json.faults | default([])} | to_json }}"
_TPL_ACK = "{{ 'ON' if value_json.alarm == 'acknowledged' else 'OFF' }}"

# Event entities render `{"event_type": ..., attributes}` for the events they
# carry and nothing (ignored by Home Assistant) for every other event type, and
# for events older than EVENT_MAX_AGE_S: an outbox replay after an outage or a
# guard's `resend` of old events must not fire automations as if it were now.
EVENT_MAX_AGE_S = 120
BUTTON_EVENT_TYPES = ("panic", "panic_repeat", "release_button")
DOOR_EVENT_TYPES = ("door_forced", "door_held_open")
_FRESH = ("{%- set fresh = (now() - as_datetime(value_json.ts)).total_seconds() < "
          + str(EVENT_MAX_AGE_S) + " -%}")
_TPL_BUTTONS = (
    _FRESH + "{%- set t = value_json.type if fresh else '' -%}"
    "{%- if t in ['panic', 'panic_repeat'] -%}"
    "{{ {'event_type': t, 'alarm_id': value_json.get('alarm_id'), "
    "'presses': value_json.get('presses', 1), 'test': value_json.get('test', false), "
    "'seq': value_json.seq} | to_json }}"
    "{%- elif t == 'door_released' and value_json.get('source') == 'button' -%}"
    "{{ {'event_type': 'release_button', 'seconds': value_json.get('seconds'), "
    "'seq': value_json.seq} | to_json }}"
    "{%- endif -%}"
)
_TPL_DOOR_EVENTS = (
    _FRESH + "{%- if fresh and value_json.type in ['door_forced', 'door_held_open'] -%}"
    "{{ {'event_type': value_json.type, 'seq': value_json.seq} | to_json }}"
    "{%- endif -%}"
)


def object_id(cfg: OfficeConfig) -> str:
    """The device's discovery id; also the prefix of every unique_id."""
    return f"officesec_{cfg.office.id}"


def discovery_topic(cfg: OfficeConfig) -> str:
    """`<ha prefix>/device/officesec_<ID>/config` (contract §3)."""
    return f"{cfg.homeassistant.prefix}/device/{object_id(cfg)}/config"


def status_topic(cfg: OfficeConfig) -> str:
    """Where Home Assistant publishes its birth (`online`) and will (`offline`)."""
    return f"{cfg.homeassistant.prefix}/status"


def should_reannounce(cfg: OfficeConfig, topic: str, payload: bytes) -> bool:
    """True when a message means Home Assistant (re)started and wants discovery again."""
    return (cfg.homeassistant.discovery and topic == status_topic(cfg)
            and payload.strip() == ONLINE)


def expire_after_s(cfg: OfficeConfig) -> int:
    """State entities go unavailable after 3 missed heartbeats (as the guard's staleness)."""
    return max(10, math.ceil(3 * cfg.alarm.heartbeat_s))


def device_config(cfg: OfficeConfig, topics: Topics) -> dict[str, Any]:
    """The device discovery document (a plain dict, before JSON encoding)."""
    office = cfg.office
    oid = object_id(cfg)
    state_t = topics.state(office.id)
    event_t = topics.event(office.id)
    avail_t = topics.availability(office.id)
    expire = expire_after_s(cfg)

    def state_sensor(key: str, name: str, template: str, **extra: Any) -> dict[str, Any]:
        return {"p": "binary_sensor", "unique_id": f"{oid}_{key}", "name": name,
                "state_topic": state_t, "value_template": template,
                "availability_topic": avail_t, "expire_after": expire, **extra}

    cmps: dict[str, dict[str, Any]] = {
        "panic": state_sensor("panic", "Panic alarm", _TPL_PANIC, device_class="safety",
                              json_attributes_topic=state_t,
                              json_attributes_template=_TPL_PANIC_ATTRS),
        "strike": state_sensor("strike", "Door strike", _TPL_STRIKE, device_class="lock"),
        "faults": state_sensor("faults", "Faults", _TPL_FAULTS, device_class="problem",
                               entity_category="diagnostic", json_attributes_topic=state_t,
                               json_attributes_template=_TPL_FAULT_ATTRS),
        "connectivity": {
            # No availability here: an offline controller must read "off", not "unavailable".
            "p": "binary_sensor", "unique_id": f"{oid}_connectivity", "name": "Controller link",
            "device_class": "connectivity", "entity_category": "diagnostic",
            "state_topic": avail_t, "payload_on": "online", "payload_off": "offline",
        },
        "buttons": {
            "p": "event", "unique_id": f"{oid}_buttons", "name": "Buttons",
            "device_class": "button", "event_types": list(BUTTON_EVENT_TYPES),
            "state_topic": event_t, "value_template": _TPL_BUTTONS,
            "availability_topic": avail_t,
        },
    }
    if cfg.hardware.door_pin is not None:
        cmps["door"] = state_sensor("door", "Door", _TPL_CONTACT, device_class="door")
        cmps["door_alerts"] = {
            "p": "event", "unique_id": f"{oid}_door_alerts", "name": "Door alerts",
            "event_types": list(DOOR_EVENT_TYPES), "state_topic": event_t,
            "value_template": _TPL_DOOR_EVENTS, "availability_topic": avail_t,
        }
    if cfg.hardware.ack_led_pin is not None:
        cmps["help_acknowledged"] = state_sensor(
            "help_acknowledged", "Help acknowledged", _TPL_ACK, icon="mdi:account-check")

    device: dict[str, Any] = {"ids": [oid], "name": office.label or office.id,
                              "mf": MANUFACTURER, "mdl": MODEL, "sw": __version__}
    area = office.room or office.label
    if area:
        device["sa"] = area
    for component in cmps.values():
        component["qos"] = 1
    return {"dev": device, "o": {"name": ORIGIN_NAME, "sw": __version__}, "cmps": cmps}


def discovery_messages(cfg: OfficeConfig, topics: Topics) -> list[Message]:
    """Retained messages announcing this office (empty when discovery is off)."""
    if not cfg.homeassistant.discovery:
        return []
    body = json.dumps(device_config(cfg, topics), separators=(",", ":"), ensure_ascii=False)
    return [(discovery_topic(cfg), body.encode())]


def removal_messages(cfg: OfficeConfig) -> list[Message]:
    """Empty retained payloads that remove a previously announced device (discovery off)."""
    if cfg.homeassistant.discovery:
        return []
    return [(discovery_topic(cfg), b"")]
