"""Guard actions (ack, resolve, drill, lockdown, release): audit, sign, send, wait.

Each action is written to the audit trail with its outcome. The alarm shows
the command's progress ("sent", then "confirmed by the office" or why not),
and the HTTP answer waits for the office's confirmation, so a guard never
sees "done" for something the office did not do.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog

from controller.guard.commander import Outcome
from controller.protocol.messages import CommandName, format_ts, utcnow

if TYPE_CHECKING:
    from controller.guard.service import GuardService

log = structlog.get_logger("officesec.guard.actions")

Answer = tuple[int, dict[str, Any]]
STATUS_TEXT = {"confirmed": "confirmed by the office", "rejected": "rejected by the office",
               "timeout": "no confirmation from the office", "not_sent": "not sent"}
HTTP_STATUS = {"confirmed": 200, "rejected": 409, "timeout": 504, "not_sent": 503}
NO_KEY = ("commands cannot be signed: security.signing_key is not configured; "
          "the guard's action was recorded")


class Actions:
    """What the API's POST routes do; returns (HTTP status, JSON body)."""

    def __init__(self, service: GuardService) -> None:
        """Works on the service's store, hub and commander."""
        self.svc = service

    def _audit(self, user: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        self.svc.store.audit(user, action, target, outcome, detail)
        self.svc.hub.publish("audit", {"user": user, "action": action, "target": target,
                                       "outcome": outcome, "detail": detail,
                                       "at": time.time()})

    def _push_alarm(self, alarm_id: str) -> dict[str, Any] | None:
        alarm = self.svc.store.alarm(alarm_id)
        if alarm is not None:
            self.svc.hub.publish("alarm", alarm)
        return alarm

    async def alarm_command(self, alarm_id: str, action: CommandName, user: str) -> Answer:
        """Acknowledge or resolve an alarm through its office."""
        store = self.svc.store
        alarm = store.alarm(alarm_id)
        if alarm is None:
            return 404, {"error": f"alarm {alarm_id} is not known"}
        if alarm["state"] == "resolved":
            self._audit(user, f"alarm_{action}", alarm_id, "refused", "already resolved")
            return 409, {"error": "the alarm is already resolved", "alarm": alarm}
        now = format_ts(utcnow())
        if action == "ack" and alarm["guard_ack_by"] is None:
            store.update_alarm(alarm_id, guard_ack_by=user, guard_ack_at=now)
        if not self.svc.commander.can_sign:
            store.update_alarm(alarm_id, command=action, command_status="not sent (no key)",
                               command_by=user, command_at=now)
            store.commit()
            self._audit(user, f"alarm_{action}", alarm_id, "recorded", "no signing key")
            return 503, {"error": NO_KEY, "alarm": self._push_alarm(alarm_id)}
        command = self.svc.commander.build(action, alarm["office"], user, alarm_id=alarm_id)
        store.update_alarm(alarm_id, command=action, command_status="sent", command_by=user,
                           command_at=now)
        store.commit()
        self._push_alarm(alarm_id)
        outcome = await self.svc.commander.send_and_wait(command)
        text = STATUS_TEXT[outcome.status]
        if outcome.reason and outcome.status != "confirmed":
            text = f"{text}: {outcome.reason}"
        store.update_alarm(alarm_id, command_status=text[:200])
        store.commit()
        self._audit(user, f"alarm_{action}", alarm_id, outcome.status, outcome.reason)
        body: dict[str, Any] = {"command": outcome.to_dict(), "alarm": self._push_alarm(alarm_id)}
        if outcome.status != "confirmed":
            body["error"] = text
        return HTTP_STATUS[outcome.status], body

    async def resolve_for(self, alarm_id: str, office: str, by: str) -> Outcome:
        """Resolve a drill on behalf of the self-test (no HTTP answer involved)."""
        command = self.svc.commander.build("resolve", office, by, alarm_id=alarm_id)
        outcome = await self.svc.commander.send_and_wait(command)
        if self.svc.store.alarm(alarm_id) is not None:
            self.svc.store.update_alarm(alarm_id, command="resolve", command_by=by,
                                        command_at=format_ts(utcnow()),
                                        command_status=STATUS_TEXT[outcome.status])
            self.svc.store.commit()
            self._push_alarm(alarm_id)
        self._audit(by, "alarm_resolve", alarm_id, outcome.status, outcome.reason)
        return outcome

    async def office_command(self, office: str, cmd: CommandName, user: str) -> Answer:
        """Drill, lockdown, lift lockdown or remote release of one office."""
        if office not in self.svc.model.offices:
            return 404, {"error": f"office {office} is not known"}
        if not self.svc.commander.can_sign:
            self._audit(user, cmd, office, "recorded", "no signing key")
            return 503, {"error": NO_KEY}
        outcome = await self.svc.commander.send_and_wait(
            self.svc.commander.build(cmd, office, user))
        self._audit(user, cmd, office, outcome.status, outcome.reason)
        body: dict[str, Any] = {"office": office, "command": outcome.to_dict()}
        if outcome.event is not None and outcome.event.alarm_id is not None:
            body["alarm_id"] = str(outcome.event.alarm_id)
        if outcome.status != "confirmed":
            body["error"] = f"{STATUS_TEXT[outcome.status]}: {outcome.reason}".rstrip(": ")
        return HTTP_STATUS[outcome.status], body

    async def site_lockdown(self, site: str, on: bool, user: str) -> Answer:
        """Lock down (or lift) every known office of a site at once."""
        offices = sorted(v.id for v in self.svc.model.offices.values()
                         if v.location.get("site") == site)
        cmd: CommandName = "lockdown" if on else "lift_lockdown"
        if not offices:
            self._audit(user, f"site_{cmd}", site, "refused", "no office on this site")
            return 404, {"error": f"no known office has site {site!r}"}
        if not self.svc.commander.can_sign:
            self._audit(user, f"site_{cmd}", site, "recorded", "no signing key")
            return 503, {"error": NO_KEY}
        answers = await asyncio.gather(*(self.office_command(o, cmd, user) for o in offices))
        results = {o: a[1]["command"] for o, a in zip(offices, answers, strict=True)}
        failed = sorted(o for o, a in zip(offices, answers, strict=True) if a[0] != 200)
        self._audit(user, f"site_{cmd}", site, "confirmed" if not failed else "partial",
                    ",".join(failed)[:200])
        body: dict[str, Any] = {"site": site, "on": on, "results": results, "failed": failed}
        if failed:
            body["error"] = f"{len(failed)} of {len(offices)} offices did not confirm"
        return (200 if not failed else 504), body
