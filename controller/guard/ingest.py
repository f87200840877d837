"""Turns validated office messages into store rows, live-model changes and SSE pushes.

Runs on the event loop, one batch at a time: the caller commits the batch and
acks it to the broker, and only then runs the `after` callbacks (SSE pushes,
command confirmations), so nothing is shown or confirmed that is not durable.
A malformed payload is logged and dropped, never raised.

Before anything is parsed, each office passes a token bucket (alarm traffic
has its own, larger one) and an office id outside the roster is admitted only
up to a bound, so one office's flood or a stream of invented ids cannot delay
another office's panic or grow the station's memory. An alarm update must
come from the office that raised the alarm (topic office = payload office =
stored alarm's office): anything else is dropped and shown as a security event.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from controller.guard.commander import Commander
from controller.guard.hub import Hub
from controller.guard.model import LiveModel
from controller.guard.ratelimit import Throttle, TokenBucket
from controller.guard.security_log import SecurityLog
from controller.guard.store import Store
from controller.protocol.messages import (
    AVAILABILITY_VALUES,
    MAX_UPTIME_S,
    Alarm,
    Event,
    State,
    Topics,
    format_ts,
    validate_event_fields,
)
from controller.protocol.names import LOCATION_FIELDS

log = structlog.get_logger("officesec.guard.ingest")

After = list[Callable[[], None]]
TOPIC_CACHE = 100_000  # parsed office topics kept (4 per office)
ALARM_EVENTS = {"panic": "active", "panic_repeat": "active",
                "alarm_acknowledged": "acknowledged", "alarm_resolved": "resolved"}
# cheap, parse-free test for "this event may be about an alarm" (the alarm bucket)
ALARM_MARKERS = (b'"panic', b'"alarm_acknowledged', b'"alarm_resolved')


@dataclass(frozen=True)
class IngestLimits:
    """Per-office budgets (`[security]` of the guard config sets them)."""

    office_rate: float = 100.0
    office_burst: float = 1000.0
    alarm_rate: float = 20.0
    alarm_burst: float = 200.0
    max_unknown_offices: int = 1000


def _finite(text: str) -> float:
    """json.loads hook: a non-finite number (NaN, Infinity, 1e400) makes the payload invalid."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text[:20]!r}")
    return value


def _no_constants(text: str) -> float:
    raise ValueError(f"non-finite number {text!r}")


class Ingest:
    """Applies one message at a time; counts what it dropped."""

    def __init__(self, topics: Topics, store: Store, model: LiveModel, hub: Hub,
                 commander: Commander, *, limits: IngestLimits | None = None) -> None:
        """Collaborators are owned by the service."""
        self.limits = limits or IngestLimits()
        self.security = SecurityLog(hub.publish)
        self.rate_limited = 0
        self._buckets: dict[tuple[str, bool], TokenBucket] = {}
        self._roster = {v.id: dict(v.location) for v in model.offices.values() if v.in_roster}
        self._unknown = {o for o in model.offices if o not in self._roster}
        self._log_throttle = Throttle(10.0)
        self.topics = topics
        self.store = store
        self.model = model
        self.hub = hub
        self.commander = commander
        self.dropped = 0
        self.duplicates = 0
        self.stored = 0
        self.event_hooks: list[Callable[[Event], None]] = []
        # the `seq` bookkeeping (gaps) is kept by one station: the leader on a shared store
        self.keeps_seq: Callable[[], bool] = lambda: True
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
        if not self._admit(office, leaf, payload, mono):
            return False
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
        held = self._log_throttle.allow(topic[:200], time.monotonic())
        if held is not None:
            log.warning("message_dropped", topic=topic[:200], reason=reason,
                        repeats_not_logged=held)
        return False

    def _admit(self, office: str, leaf: str, payload: bytes, mono: float) -> bool:
        """The budgets, checked before any parsing: bounded unknown ids, a bucket per office."""
        if office not in self._roster and office not in self._unknown:
            if len(self._unknown) < self.limits.max_unknown_offices:
                self._unknown.add(office)
            else:
                self.dropped += 1
                self.security.record("unknown_office", "*", f"office id {office!r} is not in "
                                     f"the roster and {len(self._unknown)} unknown offices are "
                                     "already tracked; dropped", claimed_office=office)
                return False
        alarmish = leaf in {"alarm", "availability"} or (
            leaf == "event" and any(m in payload for m in ALARM_MARKERS))
        bucket = self._buckets.get((office, alarmish))
        if bucket is None:
            bucket = TokenBucket(self.limits.alarm_rate if alarmish else self.limits.office_rate,
                                 self.limits.alarm_burst if alarmish else self.limits.office_burst)
            self._buckets[(office, alarmish)] = bucket
        if bucket.take(mono):
            return True
        self.dropped += 1
        self.rate_limited += 1
        self.security.record("rate_limited", office, f"more than {bucket.rate:g} messages/s "
                             f"(burst {bucket.burst:g}) on {'alarm' if alarmish else 'status'} "
                             "topics; dropped unread (lost events are asked for again)")
        return False

    def _roster_location(self, office: str) -> dict[str, Any] | None:
        """The roster's location of an office, when the roster gives one (it is authoritative)."""
        loc = self._roster.get(office)
        return loc if loc and any(loc.values()) else None

    def _merged_location(self, office: str, claimed: dict[str, Any] | None
                         ) -> dict[str, Any] | None:
        """Per field: the roster's value where it gives one, else what the office reports."""
        roster = self._roster_location(office)
        if roster is None:
            return None
        claimed = claimed or {}
        return {k: roster.get(k) or claimed.get(k, "") for k in LOCATION_FIELDS}

    def _keep_roster_location(self, office: str, state: State) -> None:
        """An office's self-reported location never overrides the roster; a mismatch is flagged.

        Fields the roster leaves empty (an installer who filled in only the site)
        are taken from the office, so the guard still sees the room.
        """
        roster = self._roster_location(office)
        if roster is None:
            return
        claimed = state.location.model_dump() if state.location is not None else None
        view = self.model.offices[office]
        view.location = self._merged_location(office, claimed) or dict(roster)
        if claimed is not None:
            differs = {k for k in LOCATION_FIELDS
                       if roster.get(k) and claimed.get(k) and claimed[k] != roster[k]}
            if differs:
                self.security.record("location_mismatch", office,
                                     f"the office reports location {claimed} but the roster "
                                     f"says {roster}; the roster is used", claimed=claimed)

    def _foreign_alarm(self, alarm_id: str, office: str, topic: str, what: str) -> bool:
        """True (and a security event) when `alarm_id` is stored for another office."""
        stored = self.store.alarm(alarm_id)
        if stored is None or stored["office"] == office:
            return False
        self.dropped += 1
        self.security.record("alarm_office_mismatch", office,
                             f"{what} on {topic[:120]} names alarm {alarm_id} of office "
                             f"{stored['office']}; dropped", alarm_id=alarm_id,
                             alarm_office=stored["office"])
        return True

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
            raw = json.loads(payload, parse_float=_finite, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            raw = None
        if isinstance(raw, dict) and not _bounded_clock(raw):
            raw = None  # out of the wire model's bounds: full validation drops it
        if isinstance(raw, dict) and self.model.heartbeat(office, raw, mono):
            return False  # only the clock fields moved: no validation, no push, no write
        state = State.model_validate_json(payload)
        if state.office != office:
            return self._drop(self.topics.state(office), "office in payload differs from topic")
        was_stale = self.model.offices.get(office) is not None and self.model.offices[office].stale
        changed = self.model.on_state(office, state, mono)
        self._keep_roster_location(office, state)
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
        if self._foreign_alarm(str(alarm.alarm_id), office, self.topics.alarm(office),
                               f"retained alarm ({alarm.state})"):
            return False
        if self.model.on_alarm(office, alarm, mono):
            self._push_office(office, mono, after)
        row, changed = self.store.upsert_alarm(
            str(alarm.alarm_id), office, state=alarm.state, at=format_ts(alarm.raised_at),
            now=wall, test=alarm.test, presses=alarm.presses,
            location=(self._merged_location(office, alarm.location.model_dump())
                      or alarm.location.model_dump()),
            by=alarm.acknowledged_by)
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
        if event.type in ALARM_EVENTS and event.alarm_id is not None and self._foreign_alarm(
                str(event.alarm_id), office, self.topics.event(office), event.type):
            return False
        self.model.get(office, mono)
        if not self.store.insert_event(event, wall):
            self.duplicates += 1
            view = self.model.offices[office]
            view.duplicates += 1
            log.info("event_duplicate", office=office, id=str(event.id), seq=event.seq)
            if self.store.shared and self.keeps_seq():
                # another station may have stored it first: advance or fill, but never take
                # a copy for the office's restart (a redelivered `controller_started` seq 1)
                self._sequence(event, wall, mono, after, duplicate=True)
            # a duplicate may still be the answer to a command sent after the first copy
            after.append(lambda: self._confirm(event))
            return True
        self.stored += 1
        if self.keeps_seq():
            self._sequence(event, wall, mono, after)
        if event.type in ALARM_EVENTS and event.alarm_id is not None:
            self._alarm_event(event, wall, after)
        data = event.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["received_at"] = wall
        log.info("event_stored", office=office, type=event.type, seq=event.seq,
                 id=str(event.id), test=event.test)
        after.append(lambda: self.hub.publish("event", data))
        after.append(lambda: self._confirm(event))
        return True

    def _sequence(self, event: Event, wall: float, mono: float, after: After, *,
                  duplicate: bool = False) -> None:
        """Advance the office's `seq`: record, fill or void gaps."""
        office = event.office
        seq = self.store.note_seq(office, event.seq, wall,
                                  started=event.type == "controller_started" and not duplicate)
        voided = False
        if event.void_from is not None and event.void_to is not None:
            voided = self.store.void_range(office, event.void_from, event.void_to)
            log.info("seq_void_range", office=office, void_from=event.void_from,
                     void_to=event.void_to)
        if seq.new_gap or seq.filled or seq.reset or voided:
            self._gap_changed(office, seq.new_gap, mono, after)

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


def _bounded_clock(raw: dict[str, Any]) -> bool:
    """The heartbeat fast path skips validation: its clock field must still be in bounds."""
    uptime = raw.get("uptime_s")
    return not isinstance(uptime, int | float) or isinstance(uptime, bool) or \
        0 <= uptime <= MAX_UPTIME_S
