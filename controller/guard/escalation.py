"""Escalation: an alarm nobody acknowledged in time goes further, level by level.

Level 1 comes `after_s` after the station received a panic or drill alarm
(`fault_after_s` for a fault alarm): the alarm is marked, shown live,
published on the station's escalation topic, POSTed to the webhook (with
retries) and sent to the level's Apprise URLs. Later `levels` notify
further people. A panic counts as acknowledged only once the *office*
confirmed the ack (a guard's click whose command never arrived does not stop
escalation). All timing is on the monotonic clock: stepping the wall clock
(NTP, a wrong RTC) neither delays nor hastens an escalation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from controller.guard.escalation_config import EscalationCfg
from controller.guard.hub import Hub
from controller.guard.store import Store
from controller.guard.webhook import post_json
from controller.protocol.messages import Escalation, Location, format_ts

log = structlog.get_logger("officesec.guard.escalation")

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


class Notify(Protocol):
    """What the escalator needs from the notifier (notify.Notifier)."""

    def send(self, alarm: dict[str, Any], level: int, urls: list[str]) -> None:
        """Start delivering one level's notifications for one alarm."""


class Escalator:
    """Finds overdue alarms on each tick and drives their escalation levels."""

    def __init__(self, cfg: EscalationCfg, store: Store, hub: Hub,
                 publish: Callable[[bytes], bool], *, notifier: Notify | None = None,
                 backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        """`publish(payload)` puts an Escalation on the station's escalation topic."""
        self.cfg = cfg
        self.store = store
        self.hub = hub
        self._publish = publish
        self.notifier = notifier
        self.backoff_s = backoff_s
        self.tasks: set[asyncio.Task[None]] = set()
        self.webhook_failures = 0
        self.webhook_delivered = 0
        self.escalations = 0
        self.last_webhook_error: str | None = None
        self.wall: Callable[[], float] = time.time
        self.mono: Callable[[], float] = time.monotonic
        self._seen: dict[str, float] = {}  # alarm_id -> monotonic time first received

    # ------------------------------------------------------------------ timing

    def note(self, alarm_id: str, mono: float) -> None:
        """The station received this alarm now (monotonic); the clock starts here."""
        self._seen.setdefault(alarm_id, mono)

    def _since(self, alarm: dict[str, Any], wall: float, mono: float) -> float:
        seen = self._seen.get(alarm["alarm_id"])
        if seen is None:
            # known from before a restart: the wall clock is all there is; never in the future
            seen = mono - max(0.0, wall - float(alarm["received_at"]))
            self._seen[alarm["alarm_id"]] = seen
        return seen

    def thresholds(self, alarm: dict[str, Any]) -> list[float]:
        """Seconds after receipt at which each level fires, level 1 first."""
        return self.cfg.steps(fault=alarm.get("kind") == "fault")

    def urls(self, level: int) -> list[str]:
        """The Apprise URLs of a level (1-based)."""
        return self.cfg.level_urls(level)

    @staticmethod
    def waiting(alarm: dict[str, Any]) -> bool:
        """Still needs a guard: nobody's acknowledgement reached the office (or the station)."""
        return bool(alarm["state"] == "active")

    def next_due(self, alarm: dict[str, Any], wall: float, mono: float) -> float | None:
        """Monotonic time of the alarm's next escalation level, None when there is none."""
        if not self.waiting(alarm):
            return None
        steps = self.thresholds(alarm)
        level = int(alarm.get("escalation_level") or 0)
        if level >= len(steps):
            return None
        return self._since(alarm, wall, mono) + steps[level]

    def decorate(self, alarm: dict[str, Any]) -> dict[str, Any]:
        """Add the live fields: `escalates_at`/`escalates_in_s`, `escalated`, `ack_delivered`."""
        wall, mono = self.wall(), self.mono()
        due = self.next_due(alarm, wall, mono)
        if due is None:
            alarm["escalates_at"], alarm["escalates_in_s"] = None, None
        else:
            left = due - mono
            alarm["escalates_in_s"] = round(max(0.0, left), 1)
            alarm["escalates_at"] = format_ts(datetime.fromtimestamp(wall + left, UTC))
        alarm["escalated"] = alarm.get("escalated_at") is not None
        if alarm.get("kind") == "fault":
            alarm["ack_delivered"] = alarm["acknowledged_at"] is not None or None
        elif alarm["acknowledged_at"] is not None:
            alarm["ack_delivered"] = True
        else:
            alarm["ack_delivered"] = False if alarm.get("guard_ack_by") else None
        return alarm

    # -------------------------------------------------------------------- tick

    def tick(self, wall: float, mono: float) -> list[dict[str, Any]]:
        """Escalate every alarm whose next level is due; returns the escalated alarms."""
        done = []
        active = self.store.active_brief()
        for brief in active:
            due = self.next_due(brief, wall, mono)
            if due is None or mono < due:
                continue
            alarm = self.store.alarm(brief["alarm_id"])
            if alarm is not None:
                done.append(self.escalate(alarm, int(alarm["escalation_level"] or 0) + 1, wall))
        if len(self._seen) > 2 * len(active) + 1000:  # forget alarms no longer waiting
            keep = {a["alarm_id"] for a in active}
            self._seen = {k: v for k, v in self._seen.items() if k in keep}
        return done

    def escalate(self, alarm: dict[str, Any], level: int, wall: float) -> dict[str, Any]:
        """Mark, publish, and start the webhook and notifications of one level."""
        alarm_id = alarm["alarm_id"]
        at = datetime.fromtimestamp(wall, UTC)
        drill = bool(alarm["test"])
        webhook = (level == 1 and self.cfg.webhook_url is not None
                   and (not drill or self.cfg.webhook_on_test))
        urls = self.urls(level) if (not drill or self.cfg.notify_on_test) else []
        fields: dict[str, Any] = {"escalation_level": level}
        if level == 1:
            fields["escalated_at"] = format_ts(at)
            fields["escalation_status"] = "pending" if webhook else (
                "no webhook (drill)" if self.cfg.webhook_url else "no webhook configured")
        self.store.update_alarm(alarm_id, **fields)
        # "key: value; ..." like every station detail: the console shows it translated
        detail = f"level: {level}" + (f"; notifications: {len(urls)}" if urls else "")
        self.store.log_alarm(alarm_id, format_ts(at), "escalated", None, detail)
        self.store.commit()
        self.escalations += 1
        payload = _payload(alarm, at, level)
        published = self._publish(payload)
        log.warning("alarm_escalated", alarm_id=alarm_id, office=alarm["office"],
                    kind=alarm.get("kind"), fault=alarm.get("fault"), level=level,
                    webhook=webhook, notify=len(urls), published=published)
        updated = self.store.alarm(alarm_id) or alarm
        self.hub.publish("escalation", {"alarm_id": alarm_id, "office": alarm["office"],
                                        "level": level, "published": published,
                                        "status": updated.get("escalation_status")})
        self.hub.publish("alarm", updated)
        if webhook:
            self._start(self._deliver(alarm_id, payload))
        if urls and self.notifier is not None:
            self.notifier.send(updated, level, urls)
        return updated

    def _start(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def resume(self) -> int:
        """After a restart: deliver again the webhooks a stop interrupted (open alarms)."""
        if self.cfg.webhook_url is None:
            return 0
        rows = self.store.db.execute(
            "SELECT alarm_id FROM alarms WHERE state != 'closed' AND escalated_at IS NOT NULL"
            " AND (escalation_status = 'pending' OR escalation_status LIKE 'retrying%')"
        ).fetchall()
        for row in rows:
            alarm = self.store.alarm(row[0])
            if alarm is None:
                continue
            at = datetime.fromisoformat(alarm["escalated_at"])
            log.info("webhook_resumed", alarm_id=alarm["alarm_id"])
            self._start(self._deliver(alarm["alarm_id"], _payload(alarm, at, 1)))
        return len(rows)

    async def _deliver(self, alarm_id: str, payload: bytes) -> None:
        url = self.cfg.webhook_url
        assert url is not None  # noqa: S101 - only started with a URL
        attempts = len(self.backoff_s) + 1
        for attempt in range(1, attempts + 1):
            error = await asyncio.to_thread(post_json, url, payload, self.cfg.webhook_timeout_s)
            if error is None:
                self.webhook_delivered += 1
                self._status(alarm_id, f"delivered (attempt {attempt})")
                log.info("webhook_delivered", alarm_id=alarm_id, attempt=attempt)
                return
            self.webhook_failures += 1
            self.last_webhook_error = f"{time.strftime('%H:%M:%S')} {error}"
            log.warning("webhook_failed", alarm_id=alarm_id, attempt=attempt, error=error)
            if attempt == attempts:
                self._status(alarm_id, f"failed after {attempts} attempts: {error}")
                return
            self._status(alarm_id, f"retrying (attempt {attempt} failed: {error})")
            await asyncio.sleep(self.backoff_s[attempt - 1])

    def _status(self, alarm_id: str, status: str) -> None:
        self.store.update_alarm(alarm_id, escalation_status=status[:200])
        self.store.commit()
        alarm = self.store.alarm(alarm_id)
        self.hub.publish("escalation", {"alarm_id": alarm_id,
                                        "office": alarm["office"] if alarm else None,
                                        "status": status})

    def health(self) -> dict[str, Any]:
        """Webhook counters for /healthz."""
        return {"configured": self.cfg.webhook_url is not None,
                "delivered": self.webhook_delivered, "failures": self.webhook_failures,
                "last_error": self.last_webhook_error, "in_flight": len(self.tasks)}


def _payload(alarm: dict[str, Any], escalated_at: datetime, level: int) -> bytes:
    """The Escalation message for an alarm (MQTT payload and webhook body)."""
    kind = alarm.get("kind") or ("drill" if alarm["test"] else "panic")
    return Escalation(alarm_id=uuid.UUID(alarm["alarm_id"]), office=alarm["office"],
                      location=Location(**_location(alarm["location"])),
                      raised_at=datetime.fromisoformat(alarm["raised_at"]),
                      escalated_at=escalated_at, test=alarm["test"], kind=kind,
                      fault=alarm.get("fault"), level=level).to_bytes()


def _location(data: dict[str, Any]) -> dict[str, str]:
    keys = ("site", "building", "floor", "room", "label")
    return {k: str(data.get(k, ""))[:200] for k in keys}
