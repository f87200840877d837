"""Escalation that reaches people: Apprise notifications (mail, Matrix, Teams, ntfy, SMS...).

Each URL of an escalation level is its own delivery: tried, retried with
backoff, and every attempt written to the audit trail and the incident's
timeline. A URL that still fails after its retries is a fault of the guard
station (`notify`), shown on the console like any other fault, until a later
delivery through it works. URLs may hold passwords: only their redacted form
(Apprise's privacy mode, without the query) is ever logged or stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import apprise
import structlog
from babel.support import Translations

from controller.guard.escalation_config import EscalationCfg
from controller.guard.fault_texts import fault_text, kind_text
from controller.guard.i18n import translator
from controller.guard.store import Store
from controller.protocol.messages import format_ts

log = structlog.get_logger("officesec.guard.notify")

BACKOFF_S = (2.0, 5.0, 15.0, 30.0, 60.0)
USER = "guard:notify"

def redact(url: str) -> str:
    """A notification URL without secrets (for logs, audit and the console)."""
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 - a bad URL must not break the audit line
        plugin = None
    if not plugin:
        return url.split("://", 1)[0] + "://(invalid)"
    return str(plugin.url(privacy=True)).split("?", 1)[0]  # type: ignore[no-untyped-call]


def valid(url: str) -> bool:
    """Apprise understands this URL."""
    return bool(apprise.Apprise().add(url))


def _age(seconds: float, tr: Translations) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return str(tr.ugettext("{n} s")).format(n=seconds)
    return str(tr.ugettext("{n} min")).format(n=seconds // 60)


def message(alarm: dict[str, Any], level: int, language: str, link: str | None,
            now: float, *, zone: tzinfo | None = None) -> tuple[str, str]:
    """(title, body) of one notification in `language`; times in `zone` (default: the host's)."""
    tr = translator(language)
    _ = tr.ugettext
    loc = alarm.get("location") or {}
    label = str(loc.get("label") or alarm["office"])
    kind = str(alarm.get("kind") or "panic")
    kind_words = kind_text(kind, language)
    todo = ""
    if kind == "fault":
        fault_title, todo = fault_text(str(alarm.get("fault")), loc, alarm["office"], language)
        kind_words = f"{kind_words}: {fault_title}"
    raised = datetime.fromisoformat(alarm["raised_at"])
    where = ", ".join(str(loc[k]) for k in ("site", "building", "floor", "room") if loc.get(k))
    lines = [_("Nobody has acknowledged this alarm yet.") if alarm["state"] == "active" else "",
             _("Location: {where}").format(where=where or "-"),
             _("Office: {office}").format(office=alarm["office"]),
             _("Raised: {time} ({age} ago)").format(
                 time=raised.astimezone(zone).strftime("%H:%M:%S"),
                 age=_age(now - raised.timestamp(), tr)),
             _("Escalation level: {level}").format(level=level)]
    if todo:
        lines.append(_("What to do: {todo}").format(todo=todo))
    if link:
        lines.append(_("Incident: {link}").format(link=link))
    title = _("{kind}: {label}").format(kind=kind_words, label=label)
    return title, "\n".join(line for line in lines if line)


def deliver_once(url: str, title: str, body: str, timeout: float) -> str | None:
    """One attempt through one URL (blocking, run in a thread); None or the error text."""
    ap = apprise.Apprise()
    if not ap.add(url):
        return "not a valid notification URL"
    result = ap.notify(body=body, title=title, notify_type=apprise.NotifyType.FAILURE,
                       timeout=timeout)
    if result:
        return None
    problems = [str(entry).split(" - ", 2)[-1] for item in result for entry in item.logs()]
    return ("; ".join(problems) or f"delivery failed ({result.status})")[:200]


class Notifier:
    """Starts one delivery task per URL; the failing URLs are the station's `notify` fault."""

    def __init__(self, cfg: EscalationCfg, store: Store, *, console_url: str | None,
                 on_change: Callable[[], None], push: Callable[[str], None] = lambda _id: None,
                 backoff_s: tuple[float, ...] = BACKOFF_S, language: str = "de",
                 timezone: str | None = None) -> None:
        """`on_change()`: the set of failing URLs changed; `push(alarm_id)`: show the alarm.

        `language` and `timezone` are the station's (`[guard]`), unless `[escalation]
        language` names another language for the messages.
        """
        self.cfg = cfg
        self.language = cfg.language or language
        self.zone = ZoneInfo(timezone) if timezone else None
        self.store = store
        self.console_url = console_url.rstrip("/") if console_url else None
        self.on_change = on_change
        self.push = push
        self.backoff_s = backoff_s
        self.failing: dict[str, str] = {}  # redacted URL -> last error
        self.tasks: set[asyncio.Task[None]] = set()
        self.attempts = 0
        self.delivered = 0
        self.failed = 0
        self.deliver: Callable[[str, str, str, float], str | None] = deliver_once

    def send(self, alarm: dict[str, Any], level: int, urls: list[str]) -> None:
        """Deliver one level's notifications for one alarm (in the background)."""
        link = f"{self.console_url}/?alarm={alarm['alarm_id']}" if self.console_url else None
        title, body = message(alarm, level, self.language, link, time.time(), zone=self.zone)
        for url in urls:
            self._start(self._deliver(alarm["alarm_id"], level, url, title, body))

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, alarm_id: str, level: int, url: str, title: str,
                       body: str) -> None:
        name = redact(url)
        attempts = self.cfg.notify_retries + 1
        for attempt in range(1, attempts + 1):
            self.attempts += 1
            try:
                error = await asyncio.wait_for(
                    asyncio.to_thread(self.deliver, url, title, body, self.cfg.notify_timeout_s),
                    self.cfg.notify_timeout_s + 5)
            except TimeoutError:
                error = f"no answer within {self.cfg.notify_timeout_s:g} s"
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop escalation
                error = f"notifier error: {exc!r}"[:200]
            outcome = "delivered" if error is None else "failed"
            # for the incident's timeline and the report: in the station's language
            detail = str(translator(self.language).ugettext(
                "level {level}, {url}, attempt {attempt} of {attempts}")).format(
                level=level, url=name, attempt=attempt, attempts=attempts) + (
                f": {error}" if error else "")
            self._record(alarm_id, outcome, detail)
            if error is None:
                self.delivered += 1
                log.info("notification_delivered", alarm_id=alarm_id, level=level, url=name,
                         attempt=attempt)
                if self.failing.pop(name, None) is not None:
                    self.on_change()
                return
            log.warning("notification_failed", alarm_id=alarm_id, level=level, url=name,
                        attempt=attempt, error=error)
            if attempt < attempts:
                await asyncio.sleep(self.backoff_s[min(attempt, len(self.backoff_s)) - 1])
        self.failed += 1
        self.failing[name] = str(error)
        self.on_change()

    def _record(self, alarm_id: str, outcome: str, detail: str) -> None:
        at = format_ts(datetime.now(UTC))
        self.store.log_alarm(alarm_id, at, f"notification_{outcome}", None, detail)
        self.store.audit(USER, "notify", alarm_id, outcome, detail[:500])  # commits
        self.push(alarm_id)

    def health(self) -> dict[str, Any]:
        """Counters and the failing URLs (redacted) for /healthz."""
        return {"configured": bool(self.cfg.urls() or self.cfg.levels),
                "attempts": self.attempts, "delivered": self.delivered,
                "failed": self.failed, "failing": dict(self.failing),
                "in_flight": len(self.tasks)}
