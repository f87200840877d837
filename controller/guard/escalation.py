"""Escalation: an alarm nobody acknowledged in time goes further.

It is marked in the store, shown live, published on the station's
escalation topic, and POSTed to the configured webhook (pager gateway,
alarm receiving centre), with retries and backoff. Drills only reach the
webhook when `webhook_on_test` says so. Timing is measured from when the
station received the alarm, so office clock skew cannot delay it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from controller.guard.guard_config import EscalationCfg
from controller.guard.hub import Hub
from controller.guard.store import Store
from controller.protocol.messages import Escalation, Location, format_ts

log = structlog.get_logger("officesec.guard.escalation")

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


class Escalator:
    """Finds overdue alarms on each tick and drives their webhook delivery."""

    def __init__(self, cfg: EscalationCfg, store: Store, hub: Hub,
                 publish: Callable[[bytes], bool], backoff_s: tuple[float, ...] = BACKOFF_S,
                 ) -> None:
        """`publish(payload)` puts an Escalation on the station's escalation topic."""
        self.cfg = cfg
        self.store = store
        self.hub = hub
        self._publish = publish
        self.backoff_s = backoff_s
        self.tasks: set[asyncio.Task[None]] = set()
        self.webhook_failures = 0
        self.webhook_delivered = 0
        self.last_webhook_error: str | None = None

    def overdue(self, now: float) -> list[dict[str, Any]]:
        """Open, unacknowledged, not yet escalated alarms older than `after_s`."""
        rows = self.store.db.execute(
            "SELECT alarm_id FROM alarms WHERE state = 'active' AND escalated_at IS NULL"
            " AND guard_ack_by IS NULL AND received_at <= ?", (now - self.cfg.after_s,))
        out = []
        for row in rows.fetchall():
            alarm = self.store.alarm(row[0])
            if alarm is not None:
                out.append(alarm)
        return out

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Escalate every overdue alarm; returns the escalated alarms."""
        done = []
        for alarm in self.overdue(now):
            done.append(self.escalate(alarm, now))
        return done

    def escalate(self, alarm: dict[str, Any], now: float) -> dict[str, Any]:
        """Mark, publish, and start the webhook for one alarm."""
        escalated_at = datetime.fromtimestamp(now, UTC)
        webhook = self.cfg.webhook_url is not None and (not alarm["test"]
                                                        or self.cfg.webhook_on_test)
        status = "pending" if webhook else ("no webhook (drill)" if self.cfg.webhook_url
                                            else "no webhook configured")
        self.store.update_alarm(alarm["alarm_id"], escalated_at=format_ts(escalated_at),
                                escalation_status=status)
        self.store.commit()
        payload = _payload(alarm, escalated_at)
        published = self._publish(payload)
        log.warning("alarm_escalated", alarm_id=alarm["alarm_id"], office=alarm["office"],
                    test=alarm["test"], webhook=webhook, published=published)
        updated = self.store.alarm(alarm["alarm_id"]) or alarm
        self.hub.publish("escalation", {"alarm_id": alarm["alarm_id"], "office": alarm["office"],
                                        "status": status, "published": published})
        self.hub.publish("alarm", updated)
        if webhook:
            self._start_delivery(alarm["alarm_id"], payload)
        return updated

    def _start_delivery(self, alarm_id: str, payload: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(alarm_id, payload))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def resume(self) -> int:
        """After a restart: deliver again the webhooks a stop interrupted (open alarms)."""
        if self.cfg.webhook_url is None:
            return 0
        rows = self.store.db.execute(
            "SELECT alarm_id FROM alarms WHERE state != 'resolved' AND escalated_at IS NOT NULL"
            " AND (escalation_status = 'pending' OR escalation_status LIKE 'retrying%')"
        ).fetchall()
        for row in rows:
            alarm = self.store.alarm(row[0])
            if alarm is None:
                continue
            at = datetime.fromisoformat(alarm["escalated_at"])
            log.info("webhook_resumed", alarm_id=alarm["alarm_id"])
            self._start_delivery(alarm["alarm_id"], _payload(alarm, at))
        return len(rows)

    async def _deliver(self, alarm_id: str, payload: bytes) -> None:
        url = self.cfg.webhook_url
        assert url is not None  # noqa: S101 - only started with a URL
        attempts = len(self.backoff_s) + 1
        for attempt in range(1, attempts + 1):
            error = await asyncio.to_thread(_post, url, payload, self.cfg.webhook_timeout_s)
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


def _payload(alarm: dict[str, Any], escalated_at: datetime) -> bytes:
    """The Escalation message for an alarm (MQTT payload and webhook body)."""
    return Escalation(alarm_id=uuid.UUID(alarm["alarm_id"]), office=alarm["office"],
                      location=Location(**_location(alarm["location"])),
                      raised_at=datetime.fromisoformat(alarm["raised_at"]),
                      escalated_at=escalated_at, test=alarm["test"]).to_bytes()


def _location(data: dict[str, Any]) -> dict[str, str]:
    keys = ("site", "building", "floor", "room", "label")
    return {k: str(data.get(k, "")) for k in keys}


def _post(url: str, payload: bytes, timeout: float) -> str | None:
    """POST JSON; None on a 2xx answer, else the error text."""
    request = urllib.request.Request(url, data=payload, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "officesec-guard"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))[:200]
