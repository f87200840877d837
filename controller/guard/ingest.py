"""Turns validated office messages into store rows, live-model changes and SSE pushes.

Runs on the event loop, one batch at a time: the caller commits the batch and
acks it to the broker, and only then runs the `after` callbacks (SSE pushes,
command confirmations), so nothing is shown or confirmed that is not durable.
A malformed payload is logged and dropped, never raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import structlog
from pydantic import ValidationError

from controller.guard.commander import Commander
from controller.guard.hub import Hub
from controller.guard.model import LiveModel
from controller.guard.store import Store
from controller.protocol.messages import (
    AVAILABILITY_VALUES,
    Alarm,
    Event,
    State,
    Topics,
    format_ts,
    validate_event_fields,
)

log = structlog.get_logger("officesec.guard.ingest")

After = list[Callable[[], None]]
TOPIC_CACHE = 100_000  # parsed office topics kept (4 per office)
ALARM_EVENTS = {"panic": "active", "panic_repeat": "active",
                "alarm_acknowledged": "acknowledged", "alarm_resolved": "resolved"}


class Ingest:
    """Applies one message at a time; counts what it dropped."""

    def __init__(self, topics: Topics, store: Store, model: LiveModel, hub: Hub,
                 commander: Commander) -> None:
        """Collaborators are owned by the service."""
        self.topics = topics
        self.store = store
        self.model = model
        self.hub = hub
        self.commander = commander
        self.dropped = 0
        self.duplicates = 0
        self.stored = 0
        self.event_hooks: list[Callable[[Event], None]] = []
        self._topics_seen: dict[str, tuple[str, str]] = {}
        self.office_changed: Callable[[str], None] = lambda office: self.hub.publish(
            "office", self.model.offices[office].to_dict(0.0))

    def handle(self, topic: str, payload: bytes, wall: float, mono: float,  # noqa: PLR0911
               after: After) -> bool:
        """Apply one message; True when it wrote to the store (the batch needs a commit)."""
        parsed = self._topics_seen.get(topic)
        if parsed is None:
            parsed = self.topics.parse_office(topic)
            if parsed is not None:
                if len(self._topics_seen) >= TOPIC_CACHE:
                    self._topics_seen.clear()
                self._topics_seen[topic] = parsed
        if parsed is None:
            return self._drop(topic, "not an office topic")
        office, leaf = parsed
        try:
            if leaf == "event":
                return self._event(office, payload, wall, mono, after)
            if leaf == "state":
                return self._state(office, payload, wall, mono, after)
            if leaf == "availability":
                return self._availability(office, payload, mono, after)
            if leaf == "alarm":
                return self._alarm(office, payload, wall, mono, after)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:5])
            return self._drop(topic, problems)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return self._drop(topic, str(exc)[:200])
        return self._drop(topic, "unexpected topic")

    def _drop(self, topic: str, reason: str) -> bool:
        self.dropped += 1
        log.warning("message_dropped", topic=topic[:200], reason=reason)
        return False

    def _push_office(self, office: str, mono: float, after: After) -> None:
        self.model.get(office, mono)
        after.append(lambda: self.office_changed(office))

    # ------------------------------------------------------------------ leaves

    def _availability(self, office: str, payload: bytes, mono: float, after: After) -> bool:
        if payload not in AVAILABILITY_VALUES:
            return self._drop(self.topics.availability(office), "availability must be "
                              "online or offline")
        value = payload.decode()
        if self.model.on_availability(office, value, mono):
            log.info("office_availability", office=office, availability=value)
            self._push_office(office, mono, after)
        return False

    def _state(self, office: str, payload: bytes, wall: float, mono: float,
               after: After) -> bool:
        try:
            raw = json.loads(payload)
        except (ValueError, RecursionError):
            raw = None
        if isinstance(raw, dict) and self.model.heartbeat(office, raw, mono):
            return False  # only the clock fields moved: no validation, no push, no write
        state = State.model_validate_json(payload)
        if state.office != office:
            return self._drop(self.topics.state(office), "office in payload differs from topic")
        was_stale = self.model.offices.get(office) is not None and self.model.offices[office].stale
        changed = self.model.on_state(office, state, mono)
        self.model.offices[office].raw_state = raw if isinstance(raw, dict) else None
        if not changed:
            return False
        if was_stale:
            log.info("office_fresh_again", office=office)
        self._push_office(office, mono, after)
        self.store.set_office_info(office, {"state": self.model.offices[office].state,
                                            "location": self.model.offices[office].location},
                                   wall)
        return True

    def _alarm(self, office: str, payload: bytes, wall: float, mono: float,
               after: After) -> bool:
        if not payload:
            if self.model.on_alarm(office, None, mono):
                self._push_office(office, mono, after)
            return False
        alarm = Alarm.model_validate_json(payload)
        if alarm.office != office:
            return self._drop(self.topics.alarm(office), "office in payload differs from topic")
        if self.model.on_alarm(office, alarm, mono):
            self._push_office(office, mono, after)
        row, changed = self.store.upsert_alarm(
            str(alarm.alarm_id), office, state=alarm.state, at=format_ts(alarm.raised_at),
            now=wall, test=alarm.test, presses=alarm.presses,
            location=alarm.location.model_dump(), by=alarm.acknowledged_by)
        if changed:
            after.append(lambda: self.hub.publish("alarm", row))
        return changed

    def _event(self, office: str, payload: bytes, wall: float, mono: float,
               after: After) -> bool:
        event = Event.model_validate_json(payload)
        if event.office != office:
            return self._drop(self.topics.event(office), "office in payload differs from topic")
        problems = validate_event_fields(event)
        if problems:
            return self._drop(self.topics.event(office), "; ".join(problems))
        self.model.get(office, mono)
        if not self.store.insert_event(event, wall):
            self.duplicates += 1
            view = self.model.offices[office]
            view.duplicates += 1
            log.info("event_duplicate", office=office, id=str(event.id), seq=event.seq)
            # a duplicate may still be the answer to a command sent after the first copy
            after.append(lambda: self._confirm(event))
            return True
        self.stored += 1
        seq = self.store.note_seq(office, event.seq, wall,
                                  started=event.type == "controller_started")
        voided = False
        if event.void_from is not None and event.void_to is not None:
            voided = self.store.void_range(office, event.void_from, event.void_to)
            log.info("seq_void_range", office=office, void_from=event.void_from,
                     void_to=event.void_to)
        if seq.new_gap or seq.filled or seq.reset or voided:
            self._gap_changed(office, seq.new_gap, mono, after)
        if event.type in ALARM_EVENTS and event.alarm_id is not None:
            self._alarm_event(event, wall, after)
        data = event.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["received_at"] = wall
        log.info("event_stored", office=office, type=event.type, seq=event.seq,
                 id=str(event.id), test=event.test)
        after.append(lambda: self.hub.publish("event", data))
        after.append(lambda: self._confirm(event))
        return True

    def _confirm(self, event: Event) -> None:
        self.commander.on_event(event)
        for hook in self.event_hooks:
            hook(event)

    def _alarm_event(self, event: Event, wall: float, after: After) -> None:
        view = self.model.offices.get(event.office)
        location = view.location if view else {}
        row, changed = self.store.upsert_alarm(
            str(event.alarm_id), event.office, state=ALARM_EVENTS[event.type],
            at=format_ts(event.ts), now=wall, test=event.test, presses=event.presses,
            location=location, by=event.by)
        if changed:
            if event.type == "panic":
                log.warning("alarm_raised", office=event.office, alarm_id=str(event.alarm_id),
                            test=event.test)
            after.append(lambda: self.hub.publish("alarm", row))

    def _gap_changed(self, office: str, new_gap: tuple[int, int] | None, mono: float,
                     after: After) -> None:
        gaps = self.store.gaps(office)
        view = self.model.get(office, mono)
        view.gaps = len(gaps)
        if new_gap:
            log.warning("seq_gap", office=office, from_seq=new_gap[0], to_seq=new_gap[1])
        data: dict[str, Any] = {"office": office, "gaps": gaps,
                                "events_may_be_missing": bool(gaps)}
        after.append(lambda: self.hub.publish("gap", data))
        self._push_office(office, mono, after)
